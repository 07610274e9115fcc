"""The causal ES–SPY basis tracker (SPEC §3), as numba helpers the fuel kernel calls per option trade.

``basis = px_es − S_spy`` in SPY $ (px_es = ES price / es_spy_ratio, the price axis). At each 0DTE
option trade, every strike whose call *and* put both traded within the last ``parity_window_s``
(window [ts − W, ts] on ts_recv, the trade being applied included — its leg is recorded before the
estimate) gives a put–call parity spot ``S_K = C_last − P_last + K``. With at least
``parity_min_strikes`` such strikes, one observation is ``px_es − median(S_K)`` (px_es = the last ES
trade with ts_recv ≤ the option trade; none yet → no observation). The basis is the EWMA of the
observations, ``α = 1 − exp(−Δt/τ)`` with ``τ = basis_tau_s`` and Δt the seconds since the previous
observation; the first observation initializes it. Until then the basis is unknown (NaN here).
The median of an even count is the mean of the two middle values (numpy's convention).

Note: SPEC's S_K is undiscounted (C − P + K, not C − P + K·e^{−rT}); with BS prices it exceeds the
spot by K·(1 − e^{−rT}) (≈ $0.02 at the RTH open of a 0DTE expiry), so the tracked basis is that
much below the true carry. Implemented exactly as specified.

Per-strike state (one slot per distinct strike, in order of first trade): the last call and put
trade price (SPY $ per share) and ts_recv (int ns; :data:`NO_TS` when the leg never traded). The
qualifying strikes are kept incrementally as a list sorted by S_K (``q_val`` / ``q_slot``, ``nq``
entries): a trade at one strike can only change that strike's S_K, and other strikes leave the
set only by ageing out of the window, so each trade costs O(nq) and the median is read directly.
The median is a function of the set of values only, so this is exactly a fresh computation.
"""

from __future__ import annotations

import math

import numba
import numpy as np

NO_TS = np.int64(-(2**62))  # "never traded": far enough below any ts that ts − W cannot reach it


@numba.njit(cache=True, nogil=True)
def parity_update(ts: int, slot: int, window_ns: int, s_strike, s_call_px, s_call_ts, s_put_px, s_put_ts,
                  q_val, q_slot, qs) -> int:
    """Bring the sorted qualifying list up to date after a trade at strike ``slot`` at ``ts`` (its
    leg already recorded): drop strikes with a leg older than ``ts − window_ns`` and the traded
    strike's old entry, then insert the traded strike's new S_K if both its legs are in the window.

    ``qs`` = int64 [count, oldest-leg bound]: the bound is ≤ every entry's older leg ts, so while
    it is inside the window no entry can have aged out and the full expiry pass is skipped (it is
    recomputed exactly by each full pass). Returns the new count (also stored in ``qs[0]``)."""
    lo = ts - window_ns
    nq = qs[0]
    if qs[1] < lo:
        # full pass: expire, drop the traded strike, recompute the bound
        k = 0
        bound = ts
        for i in range(nq):
            s = q_slot[i]
            if s != slot and s_call_ts[s] >= lo and s_put_ts[s] >= lo:
                q_val[k] = q_val[i]
                q_slot[k] = s
                k += 1
                m = min(s_call_ts[s], s_put_ts[s])
                if m < bound:
                    bound = m
        qs[1] = bound
    else:
        # nothing aged out: only remove the traded strike's old entry, if any
        k = nq
        for i in range(nq):
            if q_slot[i] == slot:
                for j in range(i, nq - 1):
                    q_val[j] = q_val[j + 1]
                    q_slot[j] = q_slot[j + 1]
                k = nq - 1
                break
    if s_call_ts[slot] >= lo and s_put_ts[slot] >= lo:
        v = s_call_px[slot] - s_put_px[slot] + s_strike[slot]
        i = k
        while i > 0 and q_val[i - 1] > v:
            q_val[i] = q_val[i - 1]
            q_slot[i] = q_slot[i - 1]
            i -= 1
        q_val[i] = v
        q_slot[i] = slot
        k += 1
        m = min(s_call_ts[slot], s_put_ts[slot])
        qs[1] = m if k == 1 else min(m, qs[1])
    qs[0] = k
    return k


@numba.njit(cache=True, nogil=True)
def median_sorted(vals, n: int) -> float:
    """Median of the ascending ``vals[:n]`` (mean of the two middle values for even n); NaN if n == 0."""
    if n <= 0:
        return np.nan
    h = n // 2
    if n % 2 == 1:
        return vals[h]
    return 0.5 * (vals[h - 1] + vals[h])


@numba.njit(cache=True, nogil=True)
def ewma_update(basis: float, last_obs_ts: int, obs: float, ts: int, tau_s: float) -> float:
    """New basis after observation ``obs`` at ``ts`` (NaN ``basis`` = no observation yet → ``obs``)."""
    if basis != basis:
        return obs
    dt_s = (ts - last_obs_ts) / 1e9
    alpha = 1.0 - math.exp(-dt_s / tau_s)
    return basis + alpha * (obs - basis)


@numba.njit(cache=True, nogil=True)
def observation(px_es: float, q_val, nq: int, min_strikes: int) -> float:
    """One basis observation ``px_es − median(S_K)``, or NaN if fewer than ``min_strikes`` strikes
    qualify (or none) or ``px_es`` is unknown (NaN)."""
    if px_es != px_es or nq < min_strikes or nq == 0:
        return np.nan
    return px_es - median_sorted(q_val, nq)
