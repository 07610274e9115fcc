"""The options "fuel" engine: 0DTE option flow, ES–SPY basis, IVs, dealer gamma, option levels.

SPEC §3 (basis), §5 (STRIKE / CALL_WALL / PUT_WALL / GAMMA_FLIP), §8 (fuel) and §9 (0DTE volume
near a level). One :func:`numba.njit` kernel walks the events of a batch:

* ``KIND_TRADE`` (the chosen ES contract): the last ES price on the axis,
  ``px_es = price / 1e9 / es_spy_ratio`` (SPY $).
* ``KIND_OPTION`` (:data:`spymaster.events.OPTION`), in this order: the contract's aggressor
  (``side`` if ±1; else with ``tick_rule == 1`` the tick rule per contract — uptick buy, downtick
  sell, zero tick inherits the contract's previous sign, first trade 0; else 0), cumulative volume,
  the signed customer position ``q += aggressor·size`` (contracts), the put–call-parity basis
  (:mod:`spymaster.engines.basis`, this trade included), the IV (Black–Scholes at
  S = px_es − basis, T to ``session.expiry_ns`` floored at ``min_t_seconds``; unsolvable → the
  contract's last IV, else ``default_iv``; no basis → skipped), then the contract's last price/ts.

All state lives in numpy arrays (per contract: ``_cf`` floats / ``_ci`` ints, column-major by
field; per distinct strike: ``_sf`` / ``_si``; scalars ``_fs`` / ``_is``), so any chunking of the
same stream gives identical state. Contract indices are dense per session; arrays grow (in
Python, between kernel calls) when a larger index appears.

Queries are made at a decision time ``t`` (int ns) after every applied event (ts_recv < t):
T = max(expiry − t, min_t)/year, σ_c = each contract's last IV (``default_iv`` for a contract that
never had an IV attempt), S_now = px_es − basis. Units: gamma values are dealer shares per SPY $1
(Γ(S) = −multiplier·Σ q_c·γ_c(S)); concentrations are shares per $1 (multiplier·Σ volume_c·γ_c);
volumes are contracts. Every option-derived value is absent (or 0 / NEUTRAL) while the basis is
unknown.

Choices where SPEC is silent (see spymaster/engines/FUEL.md):
* A wall needs a strictly positive concentration; a side whose every γ underflows has no wall.
* A contract that traded only before the basis existed has no IV yet; queries use ``default_iv``.
* The dealer gamma profile, the walls and the features sum over contracts with q ≠ 0 (profile,
  features) or volume > 0 (walls); the call and put parts are summed separately and the total is
  their sum, so ``fuel_call_gamma + fuel_put_gamma == gamma_exposure`` exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np

from spymaster.calendar import Session
from spymaster.config import Config
from spymaster.engines.basis import NO_TS, ewma_update, observation, parity_update
from spymaster.engines.greeks import implied_vol_from, year_fraction
from spymaster.errors import InputError, OrderingError
from spymaster.events import KIND_OPTION, KIND_TRADE, UNDEF_PRICE, EventBatch
from spymaster.vocab import F_AMPLIFY, F_DAMPEN, F_NEUTRAL, level_id

_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)
P_OFF, P_INV_SD, P_WA = range(3)  # rows of the packed per-query contract table
N_PACK = 3
_D1SQ_ZERO = 1500.0      # exp(-d1²/2) == 0.0 exactly in float64 beyond this d1² (e^-745 underflows)
PRICE_TOL = 1e-9         # SPY $ tolerance of band comparisons (SPEC §2 conventions)

# ---- per-contract columns
CF_STRIKE, CF_IV, CF_LAST_PX = range(3)
N_CF = 3
CI_IS_CALL, CI_SLOT, CI_NTRADES, CI_VOLUME, CI_Q, CI_LAST_TS, CI_LAST_SIGN = range(7)
N_CI = 7
# ---- per-strike-slot columns
SF_STRIKE, SF_CALL_PX, SF_PUT_PX = range(3)
N_SF = 3
SI_CALL_TS, SI_PUT_TS, SI_CALL_VOL, SI_PUT_VOL = range(4)
N_SI = 4
# ---- scalars
FS_ES_PX, FS_BASIS = range(2)
N_FS = 2
(IS_N_CONTRACTS, IS_N_SLOTS, IS_LAST_OBS_TS, IS_N_OBS, IS_N_OPTION, IS_N_ES, IS_IV_SOLVED,
 IS_IV_UNSOLVABLE, IS_IV_SKIPPED, IS_LAST_TS, IS_NEED) = range(11)
N_IS = 11
# ---- kernel parameters
FP_RATIO, FP_TAU, FP_RATE, FP_IV_LO, FP_IV_HI, FP_DEFAULT_IV, FP_MIN_T = range(7)
IP_WINDOW_NS, IP_MIN_STRIKES, IP_EXPIRY_NS = range(3)


# ====================================================================================== apply
@numba.njit(cache=True, nogil=True)
def _slot_for(strike, sf, si, ist):
    """The strike slot of ``strike`` (linear search; a new slot if unseen). Called once per contract."""
    n = ist[IS_N_SLOTS]
    for s in range(n):
        if sf[SF_STRIKE, s] == strike:
            return s
    sf[SF_STRIKE, n] = strike
    ist[IS_N_SLOTS] = n + 1
    return n


@numba.njit(cache=True, nogil=True)
def _apply_kernel(kind, pos, ts, lo, hi, tr_price, o_contract, o_strike, o_is_call, o_price, o_size,
                  o_side, o_tick, fp, ip, cf, ci, sf, si, fs, ist, q_val, q_slot, qs):
    """Apply events lo..hi-1; return the index reached (< hi when a contract index exceeds the
    capacity or is negative: ``ist[IS_NEED]`` holds it and Python grows the arrays and resumes)."""
    cap = cf.shape[1]
    ratio = fp[FP_RATIO]
    for i in range(lo, hi):
        k = kind[i]
        t = ts[i]
        if k == KIND_TRADE:
            p = tr_price[pos[i]]
            if p != UNDEF_PRICE:
                fs[FS_ES_PX] = p / 1e9 / ratio
                ist[IS_N_ES] += 1
        elif k == KIND_OPTION:
            j = pos[i]
            c = o_contract[j]
            if c < 0 or c >= cap:
                ist[IS_NEED] = c
                return i
            px = o_price[j]
            first = ci[CI_NTRADES, c] == 0
            if first:
                cf[CF_STRIKE, c] = o_strike[j]
                ci[CI_IS_CALL, c] = 1 if o_is_call[j] != 0 else 0
                ci[CI_SLOT, c] = _slot_for(o_strike[j], sf, si, ist)
                if c + 1 > ist[IS_N_CONTRACTS]:
                    ist[IS_N_CONTRACTS] = c + 1
            # 1. aggressor
            sd = o_side[j]
            if sd == 1 or sd == -1:
                agg = np.int64(sd)
            elif o_tick[j] == 1:
                if first:
                    agg = np.int64(0)
                elif px > cf[CF_LAST_PX, c]:
                    agg = np.int64(1)
                elif px < cf[CF_LAST_PX, c]:
                    agg = np.int64(-1)
                else:
                    agg = ci[CI_LAST_SIGN, c]
            else:
                agg = np.int64(0)
            ci[CI_LAST_SIGN, c] = agg
            # 2. volume, 3. signed customer position
            size = np.int64(o_size[j])
            ci[CI_VOLUME, c] += size
            ci[CI_Q, c] += agg * size
            slot = ci[CI_SLOT, c]
            is_call = ci[CI_IS_CALL, c] == 1
            if is_call:
                si[SI_CALL_VOL, slot] += size
                sf[SF_CALL_PX, slot] = px
                si[SI_CALL_TS, slot] = t
            else:
                si[SI_PUT_VOL, slot] += size
                sf[SF_PUT_PX, slot] = px
                si[SI_PUT_TS, slot] = t
            # 4. basis (this trade's leg included)
            nq = parity_update(t, slot, ip[IP_WINDOW_NS], sf[SF_STRIKE], sf[SF_CALL_PX], si[SI_CALL_TS],
                               sf[SF_PUT_PX], si[SI_PUT_TS], q_val, q_slot, qs)
            es_px = fs[FS_ES_PX]
            obs = observation(es_px, q_val, nq, ip[IP_MIN_STRIKES])
            if obs == obs:
                fs[FS_BASIS] = ewma_update(fs[FS_BASIS], ist[IS_LAST_OBS_TS], obs, t, fp[FP_TAU])
                ist[IS_LAST_OBS_TS] = t
                ist[IS_N_OBS] += 1
            # 5. IV at S = px_es - basis
            basis = fs[FS_BASIS]
            if basis == basis:
                S = es_px - basis
                T = year_fraction(ip[IP_EXPIRY_NS], t, fp[FP_MIN_T])
                iv = implied_vol_from(px, S, cf[CF_STRIKE, c], T, fp[FP_RATE], is_call, fp[FP_IV_LO], fp[FP_IV_HI],
                                      cf[CF_IV, c])
                if iv == iv:
                    cf[CF_IV, c] = iv
                    ist[IS_IV_SOLVED] += 1
                else:
                    if cf[CF_IV, c] != cf[CF_IV, c]:
                        cf[CF_IV, c] = fp[FP_DEFAULT_IV]
                    ist[IS_IV_UNSOLVABLE] += 1
            else:
                ist[IS_IV_SKIPPED] += 1
            # 6. last price / ts
            cf[CF_LAST_PX, c] = px
            ci[CI_LAST_TS, c] = t
            ci[CI_NTRADES, c] += 1
            ist[IS_N_OPTION] += 1
        ist[IS_LAST_TS] = t
    return hi


# ====================================================================================== queries
@numba.njit(cache=True, nogil=True)
def _prep(cf, ci, n, T, r, default_iv, use_q):
    """Pack the contracts that matter (traded, weight != 0; weight = q if ``use_q`` else volume),
    calls first: returns (n_call, m, pack, slot) with pack rows

    * ``P_OFF``    = (r + σ²/2)·T − ln K, so d1 = (ln S + off) · inv_sd,
    * ``P_INV_SD`` = 1 / (σ√T),
    * ``P_WA``     = weight · inv_sd / √(2π), so weight·γ(S) = wa · exp(−d1²/2) / S.
    """
    m = 0
    n_call = 0
    for c in range(n):
        w = ci[CI_Q, c] if use_q else ci[CI_VOLUME, c]
        if ci[CI_NTRADES, c] > 0 and w != 0:
            m += 1
            if ci[CI_IS_CALL, c] == 1:
                n_call += 1
    pack = np.empty((N_PACK, m))
    slot = np.empty(m, np.int64)
    sqt = math.sqrt(T)
    jc = 0
    jp = n_call
    for c in range(n):
        w = ci[CI_Q, c] if use_q else ci[CI_VOLUME, c]
        if ci[CI_NTRADES, c] > 0 and w != 0:
            if ci[CI_IS_CALL, c] == 1:
                j = jc
                jc += 1
            else:
                j = jp
                jp += 1
            sig = cf[CF_IV, c]
            if sig != sig:
                sig = default_iv
            inv_sd = 1.0 / (sig * sqt)
            pack[P_OFF, j] = (r + 0.5 * sig * sig) * T - math.log(cf[CF_STRIKE, c])
            pack[P_INV_SD, j] = inv_sd
            pack[P_WA, j] = w * inv_sd * _INV_SQRT2PI
            slot[j] = ci[CI_SLOT, c]
    return n_call, m, pack, slot


@numba.njit(cache=True, nogil=True)
def _phi_term(lnS, pack, j):
    """wa_j · exp(−d1²/2) (= weight·γ·S); exactly 0 when the exponential underflows."""
    d1 = (lnS + pack[P_OFF, j]) * pack[P_INV_SD, j]
    d1sq = d1 * d1
    if d1sq > _D1SQ_ZERO:
        return 0.0
    return pack[P_WA, j] * math.exp(-0.5 * d1sq)


@numba.njit(cache=True, nogil=True)
def _dealer_parts(S, n_call, m, pack, mult):
    """(call part, put part) of Γ(S) = −mult·Σ q·γ(S) (dealer shares per SPY $1); 0 for S <= 0."""
    if not S > 0.0:
        return 0.0, 0.0
    lnS = math.log(S)
    cs = 0.0
    for j in range(n_call):
        cs += _phi_term(lnS, pack, j)
    ps = 0.0
    for j in range(n_call, m):
        ps += _phi_term(lnS, pack, j)
    return -mult * (cs / S), -mult * (ps / S)


@numba.njit(cache=True, nogil=True)
def _profile_kernel(S_arr, cf, ci, n, T, r, default_iv, mult, out_call, out_put, out_total):
    n_call, m, pack, slot = _prep(cf, ci, n, T, r, default_iv, True)
    for i in range(S_arr.shape[0]):
        a, b = _dealer_parts(S_arr[i], n_call, m, pack, mult)
        out_call[i] = a
        out_put[i] = b
        out_total[i] = a + b


@numba.njit(cache=True, nogil=True)
def _features_kernel(levels, basis, cf, ci, n, T, r, default_iv, mult, threshold,
                     out_call, out_put, out_total, out_effect):
    n_call, m, pack, slot = _prep(cf, ci, n, T, r, default_iv, True)
    for i in range(levels.shape[0]):
        a, b = _dealer_parts(levels[i] - basis, n_call, m, pack, mult)
        g = a + b
        out_call[i] = a
        out_put[i] = b
        out_total[i] = g
        if g < -threshold:
            out_effect[i] = F_AMPLIFY
        elif g > threshold:
            out_effect[i] = F_DAMPEN
        else:
            out_effect[i] = F_NEUTRAL


@numba.njit(cache=True, nogil=True)
def argmax_lowest(values, keys, mask) -> int:
    """Index of the largest strictly positive ``values[i]`` with ``mask[i]``, the lowest ``keys[i]``
    on ties; −1 if none."""
    best = -1
    for i in range(values.shape[0]):
        if not mask[i] or not values[i] > 0.0:
            continue
        if best < 0 or values[i] > values[best] or (values[i] == values[best] and keys[i] < keys[best]):
            best = i
    return best


@numba.njit(cache=True, nogil=True)
def _concentrations(S, cf, ci, n, n_slots, T, r, default_iv, mult):
    """Per strike slot: (call, put) gamma concentration mult·Σ volume·γ(S) (shares per $1)."""
    n_call, m, pack, slot = _prep(cf, ci, n, T, r, default_iv, False)
    cc = np.zeros(n_slots)
    pc = np.zeros(n_slots)
    if S > 0.0:
        lnS = math.log(S)
        for j in range(m):
            if j < n_call:
                cc[slot[j]] += _phi_term(lnS, pack, j)
            else:
                pc[slot[j]] += _phi_term(lnS, pack, j)
        for s in range(n_slots):
            cc[s] = mult * (cc[s] / S)
            pc[s] = mult * (pc[s] / S)
    return cc, pc


@numba.njit(cache=True, nogil=True)
def _prof_at(i, k_lo, step, prof, known, n_call, m, pack, mult):
    if not known[i]:
        a, b = _dealer_parts((k_lo + i) * step, n_call, m, pack, mult)
        prof[i] = a + b
        known[i] = True
    return prof[i]


@numba.njit(cache=True, nogil=True)
def _interp(i, j, k_lo, step, gi, gj):
    """Linear root between grid points i < j with values gi, gj of opposite signs."""
    xi = (k_lo + i) * step
    xj = (k_lo + j) * step
    return xi + (xj - xi) * gi / (gi - gj)


FLIP_BLOCKS = np.array([32, 8], np.int64)   # grid-point blocks the GAMMA_FLIP search tries to skip, largest first
_SIGN_MARGIN = 1e-6     # relative margin of a sign proof (float rounding of Γ is ~1e-13 relative)


@numba.njit(cache=True, nogil=True)
def block_sign(p, q, k_lo, step, m, pack, mult) -> int:
    """+1 / −1 if Γ is provably > 0 / < 0 — so nonzero, with that float sign — at every grid point
    p..q (x = (k_lo + i)·step); 0 if not proven.

    Each contract's term wa·exp(−d1²/2) has the sign of its weight (wa) and, as d1 is increasing
    in ln S, its magnitude over [x_p, x_q] lies between its values at the two ends (the larger
    end, or exp(0) = 1 when d1 = 0 falls inside). So with P / N the sums of the positive / negative
    terms, P ≥ P_min and N ≤ N_max on the whole block, and Γ = −mult·(P − N)/S. The proof demands
    a relative margin far above the float rounding of P − N (and of the bounds themselves), plus an
    absolute one above what subnormal terms can contribute, so the computed Γ has the proven sign."""
    x0 = (k_lo + p) * step
    x1 = (k_lo + q) * step
    if not (x0 > 0.0 and mult > 0.0 and m > 0):
        return 0
    l0 = math.log(x0)
    l1 = math.log(x1)
    p_min = 0.0
    p_max = 0.0
    n_min = 0.0
    n_max = 0.0
    w_abs = 0.0
    for j in range(m):
        inv_sd = pack[P_INV_SD, j]
        d0 = (l0 + pack[P_OFF, j]) * inv_sd
        d1 = (l1 + pack[P_OFF, j]) * inv_sd
        e0 = math.exp(-0.5 * d0 * d0)
        e1 = math.exp(-0.5 * d1 * d1)
        lo = min(e0, e1)
        hi = 1.0 if d0 <= 0.0 <= d1 else max(e0, e1)
        wa = pack[P_WA, j]
        if wa > 0.0:
            p_min += wa * lo
            p_max += wa * hi
            w_abs += wa
        else:
            n_min -= wa * lo
            n_max -= wa * hi
            w_abs -= wa
    margin = _SIGN_MARGIN * (p_max + n_max) + 1e-300 * w_abs
    if p_min - n_max > margin:
        return -1          # P > N everywhere: Γ < 0
    if n_min - p_max > margin:
        return 1
    return 0


@numba.njit(cache=True, nogil=True)
def _skip(i, direction, n, k_lo, step, prof, known, n_call, m, pack, mult, blocks) -> int:
    """From a known nonzero point i, the farthest point reachable in ``direction`` (+1 / −1) over a
    block proven to have Γ of prof[i]'s sign at every point (so no root inside), evaluated; i itself
    when no block is proven."""
    sgn = -1 if prof[i] < 0.0 else 1
    for b in blocks:
        if direction > 0:
            lo, hi = i + 1, min(i + b, n - 1)
        else:
            lo, hi = max(i - b, 0), i - 1
        if hi - lo < 1:
            continue
        if block_sign(lo, hi, k_lo, step, m, pack, mult) == sgn:
            j = hi if direction > 0 else lo
            _prof_at(j, k_lo, step, prof, known, n_call, m, pack, mult)
            return j
    return i


@numba.njit(cache=True, nogil=True)
def flip_search(k_lo, n, step, s_now, prof, known, n_call, m, pack, mult, blocks) -> float:
    """GAMMA_FLIP on the grid x_i = (k_lo + i)·step, i < n: drop points where Γ == 0, a root is a
    sign change between consecutive remaining points (linear interpolation), return the root
    nearest ``s_now`` (the lower on ties) or NaN. Γ is evaluated lazily (``known`` / ``prof``
    cache; pre-filled entries are used as given), searching outwards from ``s_now`` and stopping
    once no farther root can be nearer; runs of points that :func:`block_sign` proves to share the
    current point's sign (so hold no root) are stepped over without evaluating them (``blocks``
    = int64 array of the block lengths to try; empty = evaluate every point). The result is the
    same either way."""
    if n <= 1:
        return np.nan
    c = int(math.floor(s_now / step)) - k_lo
    if c > n - 1:
        c = n - 1
    if c < -1:
        c = -1
    while c + 1 < n and (k_lo + c + 1) * step <= s_now:
        c += 1
    while c >= 0 and (k_lo + c) * step > s_now:
        c -= 1
    a = c
    while a >= 0 and _prof_at(a, k_lo, step, prof, known, n_call, m, pack, mult) == 0.0:
        a -= 1
    b = c + 1
    while b < n and _prof_at(b, k_lo, step, prof, known, n_call, m, pack, mult) == 0.0:
        b += 1
    best = np.inf
    root = np.nan
    if a >= 0 and b < n and (prof[a] < 0.0) != (prof[b] < 0.0):
        root = _interp(a, b, k_lo, step, prof[a], prof[b])
        best = abs(root - s_now)
    # upwards: a tie loses against the lower root already found
    if b < n:
        i = b
        while (k_lo + i) * step - s_now < best:
            k = _skip(i, 1, n, k_lo, step, prof, known, n_call, m, pack, mult, blocks)
            if k != i:
                i = k
                continue
            j = i + 1
            while j < n and _prof_at(j, k_lo, step, prof, known, n_call, m, pack, mult) == 0.0:
                j += 1
            if j >= n:
                break
            if (prof[i] < 0.0) != (prof[j] < 0.0):
                r_ = _interp(i, j, k_lo, step, prof[i], prof[j])
                d = r_ - s_now
                if d < best:
                    best = d
                    root = r_
                break
            i = j
    # downwards: a tie wins (the lower root)
    if a >= 0:
        i = a
        while s_now - (k_lo + i) * step <= best:
            k = _skip(i, -1, n, k_lo, step, prof, known, n_call, m, pack, mult, blocks)
            if k != i:
                i = k
                continue
            j = i - 1
            while j >= 0 and _prof_at(j, k_lo, step, prof, known, n_call, m, pack, mult) == 0.0:
                j -= 1
            if j < 0:
                break
            if (prof[j] < 0.0) != (prof[i] < 0.0):
                r_ = _interp(j, i, k_lo, step, prof[j], prof[i])
                d = s_now - r_
                if d < best or (d == best and r_ < root):
                    best = d
                    root = r_
                break
            i = j
    return root


@numba.njit(cache=True, nogil=True)
def _levels_kernel(S_now, cf, ci, n, sf, si, n_slots, T, r, default_iv, mult, wall_min_volume, k_lo, n_grid, step):
    """(call wall slot or −1, put wall slot or −1, GAMMA_FLIP SPY $ or NaN) at spot ``S_now``."""
    cc, pc = _concentrations(S_now, cf, ci, n, n_slots, T, r, default_iv, mult)
    call_vol = 0
    put_vol = 0
    for s in range(n_slots):
        call_vol += si[SI_CALL_VOL, s]
        put_vol += si[SI_PUT_VOL, s]
    strikes = sf[SF_STRIKE, :n_slots]
    cw = -1
    pw = -1
    if call_vol >= wall_min_volume:
        cw = argmax_lowest(cc, strikes, si[SI_CALL_VOL, :n_slots] > 0)
    if put_vol >= wall_min_volume:
        pw = argmax_lowest(pc, strikes, si[SI_PUT_VOL, :n_slots] > 0)
    flip = np.nan
    n_call, m, pack, slot = _prep(cf, ci, n, T, r, default_iv, True)
    if m > 0 and n_grid > 1:
        prof = np.zeros(n_grid)
        known = np.zeros(n_grid, np.bool_)
        flip = flip_search(k_lo, n_grid, step, S_now, prof, known, n_call, m, pack, mult, FLIP_BLOCKS)
    return cw, pw, flip


@numba.njit(cache=True, nogil=True)
def _volume_near_kernel(levels, basis, band, sf, si, n_slots, out):
    for i in range(levels.shape[0]):
        tot = 0
        for s in range(n_slots):
            if abs(sf[SF_STRIKE, s] + basis - levels[i]) <= band + PRICE_TOL:
                tot += si[SI_CALL_VOL, s] + si[SI_PUT_VOL, s]
        out[i] = tot


# ====================================================================================== Python
@dataclass(frozen=True)
class OptionLevels:
    """Option-derived level values at ``t_ns`` (SPY $ keys and axis prices = SPY + basis).

    Everything is empty / None while the basis is unknown."""

    t_ns: int
    basis: float | None = None
    spot: float | None = None                 # SPY spot S_now = px_es − basis
    strikes: np.ndarray = field(default_factory=lambda: np.zeros(0))        # STRIKE keys, ascending
    strike_prices: np.ndarray = field(default_factory=lambda: np.zeros(0))  # axis prices
    call_wall: float | None = None            # SPY strike
    call_wall_price: float | None = None      # axis
    put_wall: float | None = None
    put_wall_price: float | None = None
    gamma_flip: float | None = None           # SPY price of the flip
    gamma_flip_price: float | None = None     # axis

    def items(self) -> list[tuple[str, str, float, float]]:
        """``(level_kind, level_id, key SPY $, level_price axis $)`` of every active option level."""
        out = [("STRIKE", level_id("STRIKE", float(k)), float(k), float(p))
               for k, p in zip(self.strikes, self.strike_prices)]
        if self.call_wall is not None:
            out.append(("CALL_WALL", level_id("CALL_WALL"), self.call_wall, self.call_wall_price))
        if self.put_wall is not None:
            out.append(("PUT_WALL", level_id("PUT_WALL"), self.put_wall, self.put_wall_price))
        if self.gamma_flip is not None:
            out.append(("GAMMA_FLIP", level_id("GAMMA_FLIP"), self.gamma_flip, self.gamma_flip_price))
        return out


class FuelEngine:
    """Stateful 0DTE options engine (see the module docstring). ``apply`` follows the engine
    contract; the queries take the decision time ``t`` (int ns, after every applied event)."""

    _INITIAL_CAPACITY = 64

    def __init__(self, config: Config, session: Session) -> None:
        self.cfg = config
        self.session = session
        fu, bs, ins = config.fuel, config.basis, config.instrument
        self._fp = np.array([ins.es_spy_ratio, bs.basis_tau_s, fu.rate, fu.iv_min, fu.iv_max, fu.default_iv,
                             fu.min_t_seconds], dtype=np.float64)
        self._ip = np.array([int(round(bs.parity_window_s * 1e9)), bs.parity_min_strikes, session.expiry_ns],
                            dtype=np.int64)
        self._mult = float(ins.option_multiplier)
        self._fs = np.full(N_FS, np.nan)
        self._is = np.zeros(N_IS, dtype=np.int64)
        self._is[IS_LAST_OBS_TS] = NO_TS
        self._is[IS_LAST_TS] = NO_TS
        self._cap = 0
        self._cf = np.zeros((N_CF, 0))
        self._ci = np.zeros((N_CI, 0), dtype=np.int64)
        self._sf = np.zeros((N_SF, 0))
        self._si = np.zeros((N_SI, 0), dtype=np.int64)
        self._q_val = np.zeros(0)
        self._q_slot = np.zeros(0, dtype=np.int64)
        self._qs = np.array([0, NO_TS], dtype=np.int64)   # qualifying-list count, oldest-leg bound
        self._grow(self._INITIAL_CAPACITY)

    # ------------------------------------------------------------------ state arrays
    def _grow(self, need: int) -> None:
        cap = max(need, 2 * self._cap, self._INITIAL_CAPACITY)
        old = self._cap

        def extend(arr: np.ndarray, fill) -> np.ndarray:
            new = np.empty((arr.shape[0], cap), dtype=arr.dtype)
            new[:, :old] = arr[:, :old]
            new[:, old:] = fill
            return new

        self._cf = extend(self._cf, np.nan)
        self._ci = extend(self._ci, 0)
        self._sf = extend(self._sf, np.nan)
        si = extend(self._si, 0)
        si[SI_CALL_TS, old:] = NO_TS
        si[SI_PUT_TS, old:] = NO_TS
        self._si = si
        q_val, q_slot = np.zeros(cap), np.zeros(cap, dtype=np.int64)
        q_val[:old], q_slot[:old] = self._q_val[:old], self._q_slot[:old]
        self._q_val, self._q_slot = q_val, q_slot
        self._cap = cap

    # ------------------------------------------------------------------ engine contract
    def apply(self, batch: EventBatch, lo: int, hi: int) -> None:
        """Apply events ``lo..hi-1`` of ``batch`` (ES trades and option trades; others ignored)."""
        if hi <= lo:
            return
        o = batch.options
        args = (batch.trades["price"], o["contract"], o["strike"], o["is_call"], o["price"], o["size"],
                o["side"], o["tick_rule"])
        i = lo
        while i < hi:
            i = _apply_kernel(batch.kind, batch.pos, batch.ts, i, hi, *args, self._fp, self._ip,
                              self._cf, self._ci, self._sf, self._si, self._fs, self._is, self._q_val, self._q_slot, self._qs)
            if i < hi:
                need = int(self._is[IS_NEED])
                if need < 0:
                    raise InputError(f"option trade with a negative contract index {need} "
                                     f"(event {i}, ts_recv {int(batch.ts[i])})")
                self._grow(need + 1)

    # ------------------------------------------------------------------ scalars
    @property
    def basis(self) -> float | None:
        """The ES–SPY basis (SPY $), None until the first observation."""
        b = float(self._fs[FS_BASIS])
        return None if b != b else b

    @property
    def es_price(self) -> float | None:
        """Last ES trade price on the axis (SPY $), None before the first trade."""
        p = float(self._fs[FS_ES_PX])
        return None if p != p else p

    @property
    def spot(self) -> float | None:
        """SPY spot = px_es − basis (SPY $), None while the basis is unknown."""
        b, p = self.basis, self.es_price
        return None if b is None or p is None else p - b

    def _T(self, t: int) -> float:
        last = int(self._is[IS_LAST_TS])
        if t <= last:
            raise OrderingError(f"fuel query at t={t} ns, but an event with ts_recv={last} >= t was already "
                                "applied (queries must come strictly after every applied event)")
        return year_fraction(self.session.expiry_ns, int(t), self.cfg.fuel.min_t_seconds)

    # ------------------------------------------------------------------ queries
    def levels(self, t: int) -> OptionLevels:
        """Option-derived levels at ``t``: STRIKE, CALL_WALL, PUT_WALL, GAMMA_FLIP (SPEC §5, §8)."""
        T = self._T(t)
        basis, S_now = self.basis, self.spot
        if basis is None or S_now is None:
            return OptionLevels(int(t))
        fu, lv = self.cfg.fuel, self.cfg.levels
        n, ns = int(self._is[IS_N_CONTRACTS]), int(self._is[IS_N_SLOTS])
        strikes = self._sf[SF_STRIKE, :ns]
        svol = self._si[SI_CALL_VOL, :ns] + self._si[SI_PUT_VOL, :ns]
        ks = np.sort(strikes[svol >= lv.strike_min_volume])

        k_lo, n_grid = self._grid(S_now)
        cwi, pwi, flip = _levels_kernel(S_now, self._cf, self._ci, n, self._sf, self._si, ns, T, fu.rate, fu.default_iv,
                                        self._mult, lv.wall_min_volume, k_lo, n_grid, lv.gamma_flip_step)
        cw = None if cwi < 0 else float(strikes[cwi])
        pw = None if pwi < 0 else float(strikes[pwi])
        flip = float(flip)
        gf = None if flip != flip else flip
        return OptionLevels(
            int(t), basis, S_now, ks, ks + basis,
            cw, None if cw is None else cw + basis,
            pw, None if pw is None else pw + basis,
            gf, None if gf is None else gf + basis,
        )

    def _grid(self, S_now: float) -> tuple[int, int]:
        """(k_lo, n): the GAMMA_FLIP grid is k·step for k in [k_lo, k_lo + n) within ±band of S_now."""
        lv = self.cfg.levels
        step, half = lv.gamma_flip_step, lv.gamma_flip_band * S_now
        k_lo = math.ceil((S_now - half - PRICE_TOL) / step)
        k_hi = math.floor((S_now + half + PRICE_TOL) / step)
        return k_lo, max(0, k_hi - k_lo + 1)

    def flip_grid(self, t: int) -> np.ndarray:
        """The SPY prices of the GAMMA_FLIP grid at ``t`` (empty while the basis is unknown)."""
        self._T(t)
        S_now = self.spot
        if S_now is None:
            return np.zeros(0)
        k_lo, n = self._grid(S_now)
        return (k_lo + np.arange(n)) * self.cfg.levels.gamma_flip_step

    def gamma_profile(self, spy_prices, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Dealer gamma (call part, put part, total) at SPY prices ``spy_prices`` and time ``t``
        (shares per SPY $1; zeros while the basis is unknown)."""
        T = self._T(t)
        S = np.ascontiguousarray(spy_prices, dtype=np.float64).ravel()
        oc, op, ot = np.zeros(S.shape[0]), np.zeros(S.shape[0]), np.zeros(S.shape[0])
        if self.basis is not None:
            fu = self.cfg.fuel
            _profile_kernel(S, self._cf, self._ci, int(self._is[IS_N_CONTRACTS]), T, fu.rate, fu.default_iv,
                            self._mult, oc, op, ot)
        return oc, op, ot

    def features(self, levels_axis, t: int) -> dict[str, np.ndarray]:
        """Fuel features of levels at axis prices ``levels_axis`` (SPY $) at ``t`` (SPEC §8):
        ``gamma_exposure`` (= ``fuel_net_dealer_gamma``), ``fuel_call_gamma``, ``fuel_put_gamma``
        (shares per SPY $1) and ``fuel_effect`` (vocab FUEL_EFFECTS codes, int8)."""
        T = self._T(t)
        L = np.ascontiguousarray(levels_axis, dtype=np.float64).ravel()
        n = L.shape[0]
        oc, op, ot = np.zeros(n), np.zeros(n), np.zeros(n)
        eff = np.full(n, F_NEUTRAL, dtype=np.int8)
        basis = self.basis
        if basis is not None:
            fu = self.cfg.fuel
            _features_kernel(L, basis, self._cf, self._ci, int(self._is[IS_N_CONTRACTS]), T, fu.rate, fu.default_iv,
                             self._mult, fu.gamma_threshold, oc, op, ot, eff)
        return {"gamma_exposure": ot, "fuel_net_dealer_gamma": ot.copy(), "fuel_call_gamma": oc,
                "fuel_put_gamma": op, "fuel_effect": eff}

    def volume_near(self, levels_axis, band: float) -> np.ndarray:
        """Session 0DTE volume (calls + puts, contracts) at strikes with |K + basis − L| ≤ band
        (+1e-9) for each axis level L (SPEC §9 confidence); zeros while the basis is unknown."""
        L = np.ascontiguousarray(levels_axis, dtype=np.float64).ravel()
        out = np.zeros(L.shape[0], dtype=np.int64)
        basis = self.basis
        if basis is not None:
            _volume_near_kernel(L, basis, float(band), self._sf, self._si, int(self._is[IS_N_SLOTS]), out)
        return out

    def strike_table(self, t: int) -> dict[str, np.ndarray]:
        """Per traded strike (ascending): volumes and gamma concentrations (shares per $1) at ``t``."""
        T = self._T(t)
        n, ns = int(self._is[IS_N_CONTRACTS]), int(self._is[IS_N_SLOTS])
        S_now = self.spot
        fu = self.cfg.fuel
        if S_now is None:
            cc, pc = np.zeros(ns), np.zeros(ns)
        else:
            cc, pc = _concentrations(S_now, self._cf, self._ci, n, ns, T, fu.rate, fu.default_iv, self._mult)
        order = np.argsort(self._sf[SF_STRIKE, :ns], kind="stable")
        return {"strike": self._sf[SF_STRIKE, :ns][order], "call_volume": self._si[SI_CALL_VOL, :ns][order],
                "put_volume": self._si[SI_PUT_VOL, :ns][order], "call_concentration": cc[order],
                "put_concentration": pc[order]}

    # ------------------------------------------------------------------ introspection
    def state(self) -> dict[str, object]:
        """A copy of the whole state (scalars and per-contract / per-strike arrays), for the
        debugger and for invariance tests. Arrays cover contract indices < ``n_contracts`` and
        strike slots in order of first trade."""
        n, ns = int(self._is[IS_N_CONTRACTS]), int(self._is[IS_N_SLOTS])
        ist = self._is
        return {
            "es_price": self.es_price, "basis": self.basis, "n_basis_obs": int(ist[IS_N_OBS]),
            "last_basis_obs_ns": None if ist[IS_N_OBS] == 0 else int(ist[IS_LAST_OBS_TS]),
            "n_option_trades": int(ist[IS_N_OPTION]), "n_es_trades": int(ist[IS_N_ES]),
            "iv_solved": int(ist[IS_IV_SOLVED]), "iv_unsolvable": int(ist[IS_IV_UNSOLVABLE]),
            "iv_skipped": int(ist[IS_IV_SKIPPED]), "n_contracts": n, "n_strikes": ns,
            "contract_strike": self._cf[CF_STRIKE, :n].copy(), "contract_iv": self._cf[CF_IV, :n].copy(),
            "contract_last_price": self._cf[CF_LAST_PX, :n].copy(),
            "contract_is_call": self._ci[CI_IS_CALL, :n].copy(), "contract_trades": self._ci[CI_NTRADES, :n].copy(),
            "contract_volume": self._ci[CI_VOLUME, :n].copy(), "contract_q": self._ci[CI_Q, :n].copy(),
            "contract_last_ts": self._ci[CI_LAST_TS, :n].copy(), "contract_last_sign": self._ci[CI_LAST_SIGN, :n].copy(),
            "strike": self._sf[SF_STRIKE, :ns].copy(), "strike_call_price": self._sf[SF_CALL_PX, :ns].copy(),
            "strike_put_price": self._sf[SF_PUT_PX, :ns].copy(), "strike_call_ts": self._si[SI_CALL_TS, :ns].copy(),
            "strike_put_ts": self._si[SI_PUT_TS, :ns].copy(), "strike_call_volume": self._si[SI_CALL_VOL, :ns].copy(),
            "strike_put_volume": self._si[SI_PUT_VOL, :ns].copy(),
        }

    def table(self) -> list[dict[str, object]]:
        """One row per traded contract (by strike, calls first): the debugger's ``fuel`` view."""
        n = int(self._is[IS_N_CONTRACTS])
        rows = []
        for c in range(n):
            if self._ci[CI_NTRADES, c] == 0:
                continue
            iv = float(self._cf[CF_IV, c])
            rows.append({"contract": c, "strike": float(self._cf[CF_STRIKE, c]),
                         "right": "C" if self._ci[CI_IS_CALL, c] == 1 else "P",
                         "trades": int(self._ci[CI_NTRADES, c]), "volume": int(self._ci[CI_VOLUME, c]),
                         "q": int(self._ci[CI_Q, c]), "iv": None if iv != iv else iv,
                         "last_price": float(self._cf[CF_LAST_PX, c]), "last_ts": int(self._ci[CI_LAST_TS, c])})
        rows.sort(key=lambda r: (r["strike"], r["right"] != "C", r["contract"]))
        return rows

    def describe(self) -> dict[str, object]:
        """Scalars for a one-screen summary (basis, spot, counts)."""
        s = self.state()
        return {k: s[k] for k in ("es_price", "basis", "n_basis_obs", "n_option_trades", "n_es_trades",
                                  "iv_solved", "iv_unsolvable", "iv_skipped", "n_contracts", "n_strikes")} | {
            "spot": self.spot}
