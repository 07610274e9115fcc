"""One simulated limit order book per contract, as a numba kernel (the synthetic ES market).

Model (all prices are integer ticks ``idx`` of the contract's grid; ES points = (base + idx) ·
tick; sizes are contracts):

* Ambient events arrive as a Poisson process whose rate is piecewise constant per minute
  (``lam``: events per second, the U-shaped intraday profile). Each event is a *market order*
  (probability ``pmkt``, higher when the book lags the latent fair price), a *limit add* (placed
  around the fair price, geometric in depth, improving a wide spread first) or a *cancel*
  (levels weighted by size, stale quotes on the wrong side of fair preferred; the cancel/add
  balance is steered by the visible depth against ``dtgt`` so depth is stationary). Rare
  *liquidity pulls* (40–90 % of the top 1–3 levels of one side at once) and *iceberg* orders
  (a displayed clip that refills from a hidden reserve when it is fully hit) add texture.
* A market order walks the opposite side level by level: for each price it emits one trade
  (aggressor side 'B' buy / 'A' sell), one MBP-10 ``T`` record (book unchanged) and one ``C``
  record (the fill decrease), plus an ``A`` record when an iceberg refills; every record of the
  event shares ts_event / ts_recv and the last one carries ``F_LAST``. Limit adds never cross
  (bids stay below the best ask and vice versa), so the book is never crossed.
* Changes deeper than the 10th visible level produce no MBP-10 record (like the real MBP-10
  schema); levels far from the touch are dropped silently (stale orders).
* A *script* (scenario hooks, :mod:`spymaster.synth.scenarios`) injects exact adds, cancels,
  market orders, icebergs and sweeps at given times and can suppress ambient activity on one
  side of a price zone, so a scenario's barrier pattern is exactly what it was designed to be.

* Liquidity just beyond the 10th visible level is kept stocked silently, so levels scroll into
  view as the price moves; level sizes are set by the caller from the event rate.

Records are written straight in the DBN byte layouts (``MBP10Msg`` = 46 and ``TradeMsg`` = 6
little-endian int64 words per record), so a chunk is a zero-copy ``events.BOOK`` / ``TRADE`` view.
All state (book arrays, pending event, RNG) lives in numpy arrays owned by :class:`BookSim`;
the kernel stops when the next event's ts_recv reaches ``stop`` or an output buffer is full and
resumes identically, so the records never depend on how a run is sliced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np
from numba import types as nt

from spymaster.events import BOOK, TRADE, UNDEF_PRICE
from spymaster.synth.rng import exponential, geometric, normal, randint, uniform

BID = 0
ASK = 1
CH_A = 65  # 'A' add / ask side / sell aggressor
CH_B = 66  # 'B' bid side / buy aggressor
CH_C = 67  # 'C' cancel
CH_T = 84  # 'T' trade
F_LAST = 128
T_INF = np.int64(2**62)
MIN_NS = 60_000_000_000
UNDEF = np.int64(UNDEF_PRICE)

# ---- state vector indices (int64 ST)
S_BB, S_BA, S_LTE, S_LTR, S_SEQ, S_NEXT, S_NLAT, S_SI, S_SUP, S_SUPLO, S_SUPHI, S_NEV, S_GC, S_LO, S_HI = range(15)
N_STATE = 16
# ---- integer parameters (int64 P)
P_T0, P_TEND, P_NMIN, P_N, P_BASE, P_TICK, P_SEQ0, P_W0M, P_W0T = range(9)
N_PARAM = 10
# ---- float parameters (float64 PF)
PF_PULL, PF_ICE, PF_KAPPA, PF_LARGE, PF_TICKPTS = range(5)
N_FPARAM = 6
# ---- iceberg table columns
I_ACT, I_SIDE, I_IDX, I_DISP, I_RES, I_EXP, I_SCR = range(7)
N_ICE = 16
# ---- script columns and action types
SC_TS, SC_TYPE, SC_SIDE, SC_IDX, SC_SIZE, SC_P2, SC_P3 = range(7)
A_SETUP, A_ADD, A_CANCEL, A_MARKET, A_ICEBERG, A_HIT_ICE, A_SWEEP_PREP, A_SWEEP, A_RELEASE = range(1, 10)
# ---- script log columns: ts_event, ts_recv, size applied, trades, first idx, last idx
L_TE, L_TR, L_SIZE, L_NTR, L_FIRST, L_LAST = range(6)
MAX_RECORDS_PER_EVENT = 400
MASK32 = np.int64(0xFFFFFFFF)
BOOK_WORDS = 46    # 368-byte MBP10Msg
TRADE_WORDS = 6    # 48-byte TradeMsg
MAX_TRADES_PER_EVENT = 40


# Explicit signatures: no literal-argument specializations (compile once, ~10 s, then cached).
I8 = nt.int64
B1 = nt.boolean
A1 = nt.int64[::1]
A2 = nt.int64[:, ::1]
F1 = nt.float64[::1]
U1 = nt.uint64[::1]

# ============================================================================ helpers

@nb.njit(I8(A2, I8, I8, I8), cache=True)
def _scan_best(sz, side, start, n):
    """Best non-empty level of ``side`` at or beyond ``start`` going outward (-1 if none)."""
    i = start
    if side == BID:
        if i >= n:
            i = n - 1
        while i >= 0:
            if sz[BID, i] > 0:
                return i
            i -= 1
    else:
        if i < 0:
            i = 0
        while i < n:
            if sz[ASK, i] > 0:
                return i
            i += 1
    return -1


@nb.njit(I8(A2, I8, I8, I8, A1), cache=True)
def _top(sz, side, best, n, out):
    """Indices of the (up to) 10 best non-empty levels of ``side`` into ``out``; returns count."""
    if best < 0:
        return 0
    k = 0
    i = best
    step = -1 if side == BID else 1
    scanned = 0
    while k < 10 and 0 <= i < n and scanned < 800:
        if sz[side, i] > 0:
            out[k] = i
            k += 1
        i += step
        scanned += 1
    return k


@nb.njit(B1(A2, I8, I8, I8, I8, A1), cache=True)
def _visible(sz, side, best, n, idx, tmp):
    """True if price ``idx`` of ``side`` is no deeper than the 10th visible level."""
    k = _top(sz, side, best, n, tmp)
    if k < 10:
        return True
    if side == BID:
        return idx >= tmp[9]
    return idx <= tmp[9]


@nb.njit(nt.none(A1, A1, A2, A2, A2, A1, A2, I8, I8, I8, I8, I8, I8, I8), cache=True)
def _emit(ST, P, sz, ct, rec, cnt, tmp, te, tr, idx, size, action, sidec, side_of_idx):
    """Append one MBP-10 record (the change and the full top-10 book after it), written directly
    in the DBN ``MBP10Msg`` byte layout as 46 little-endian int64 words."""
    n = P[P_N]
    base = P[P_BASE]
    tick = P[P_TICK]
    k = cnt[0]
    if k >= rec.shape[0]:
        return  # cannot happen with MAX_RECORDS_PER_EVENT headroom; never write out of bounds
    nb_ = _top(sz, BID, ST[S_BB], n, tmp[0])
    na = _top(sz, ASK, ST[S_BA], n, tmp[1])
    depth = 0
    if side_of_idx >= 0:
        m = nb_ if side_of_idx == BID else na
        for j in range(m):
            v = tmp[side_of_idx, j]
            if (side_of_idx == BID and v > idx) or (side_of_idx == ASK and v < idx):
                depth += 1
        if depth > 9:
            depth = 9
    rec[k, 0] = P[P_W0M]
    rec[k, 1] = te
    rec[k, 2] = (base + idx) * tick
    rec[k, 3] = (size & MASK32) | (action << 32) | (sidec << 40) | (depth << 56)
    rec[k, 4] = tr
    rec[k, 5] = ((14_000 + (tr - te) % 4000) & MASK32) | ((P[P_SEQ0] + ST[S_SEQ]) << 32)
    for j in range(10):
        w = 6 + 4 * j
        if j < nb_:
            i = tmp[0, j]
            rec[k, w] = (base + i) * tick
            bsz = sz[BID, i]
            bct = ct[BID, i]
        else:
            rec[k, w] = UNDEF
            bsz = 0
            bct = 0
        if j < na:
            i = tmp[1, j]
            rec[k, w + 1] = (base + i) * tick
            asz = sz[ASK, i]
            act_ = ct[ASK, i]
        else:
            rec[k, w + 1] = UNDEF
            asz = 0
            act_ = 0
        rec[k, w + 2] = (bsz & MASK32) | (asz << 32)
        rec[k, w + 3] = (bct & MASK32) | (act_ << 32)
    cnt[0] = k + 1


@nb.njit(nt.none(A1, A1, A2, A2, I8, I8, I8), cache=True)
def _add(ST, P, sz, ct, side, idx, q):
    """Add ``q`` at ``idx``: sizes, order count, best and extents."""
    sz[side, idx] += q
    ct[side, idx] += 1
    if side == BID:
        if ST[S_BB] < 0 or idx > ST[S_BB]:
            ST[S_BB] = idx
    else:
        if ST[S_BA] < 0 or idx < ST[S_BA]:
            ST[S_BA] = idx
    if idx < ST[S_LO]:
        ST[S_LO] = idx
    if idx > ST[S_HI]:
        ST[S_HI] = idx


@nb.njit(nt.none(A1, A1, A2, A2, A2, I8, I8, I8, B1), cache=True)
def _remove(ST, P, sz, ct, res, side, idx, q, whole_orders):
    """Remove ``q`` from ``idx`` (cancel or fill); keeps reserved <= size and the best valid."""
    old = sz[side, idx]
    new = old - q
    sz[side, idx] = new
    if res[side, idx] > new:
        res[side, idx] = new
    if new <= 0:
        ct[side, idx] = 0
    elif whole_orders:
        ct[side, idx] = max(1, ct[side, idx] - 1)
    else:
        ct[side, idx] = max(1, (ct[side, idx] * new + old - 1) // old)
    if new <= 0:
        n = P[P_N]
        if side == BID and idx == ST[S_BB]:
            ST[S_BB] = _scan_best(sz, BID, idx - 1, n)
        elif side == ASK and idx == ST[S_BA]:
            ST[S_BA] = _scan_best(sz, ASK, idx + 1, n)


@nb.njit(I8(A2, I8, I8), cache=True)
def _ice_find(ice, side, idx):
    for k in range(ice.shape[0]):
        if ice[k, I_ACT] == 1 and ice[k, I_SIDE] == side and ice[k, I_IDX] == idx:
            return k
    return -1


@nb.njit(nt.UniTuple(I8, 4)(A1, A1, A2, A2, A2, A2, A2, A2, A1, A2, I8, I8, I8, I8, I8, I8), cache=True)
def _walk(ST, P, sz, ct, res, ice, rec, trd, cnt, tmp, te, tr, side_hit, size, limit, maxwalk):
    """A market order of ``size`` hitting ``side_hit`` (ASK = buy aggressor), walking levels.

    Stops when filled, at ``limit`` (an idx not to walk beyond; -1 none), after ``maxwalk``
    exhausted prices, or when the side is empty. Returns (filled, trades, first idx, last idx).
    """
    aggr = CH_B if side_hit == ASK else CH_A
    bookc = CH_A if side_hit == ASK else CH_B
    remaining = size
    filled = 0
    ntr = 0
    nlev = 0
    first = -1
    last = -1
    while remaining > 0:
        best = ST[S_BA] if side_hit == ASK else ST[S_BB]
        if best < 0:
            break
        if limit >= 0:
            if side_hit == ASK and best > limit:
                break
            if side_hit == BID and best < limit:
                break
        avail = sz[side_hit, best]
        q = remaining if remaining < avail else avail
        t = cnt[1]
        if t >= trd.shape[0] or cnt[0] + 3 >= rec.shape[0]:
            break
        trd[t, 0] = P[P_W0T]
        trd[t, 1] = te
        trd[t, 2] = (P[P_BASE] + best) * P[P_TICK]
        trd[t, 3] = (q & MASK32) | (CH_T << 32) | (aggr << 40)
        trd[t, 4] = tr
        trd[t, 5] = ((14_000 + (tr - te) % 4000) & MASK32) | ((P[P_SEQ0] + ST[S_SEQ]) << 32)
        cnt[1] = t + 1
        _emit(ST, P, sz, ct, rec, cnt, tmp, te, tr, best, q, CH_T, aggr, side_hit)
        _remove(ST, P, sz, ct, res, side_hit, best, q, False)
        _emit(ST, P, sz, ct, rec, cnt, tmp, te, tr, best, q, CH_C, bookc, side_hit)
        remaining -= q
        filled += q
        ntr += 1
        if first < 0:
            first = best
        last = best
        k = _ice_find(ice, side_hit, best)
        if k >= 0 and res[side_hit, best] == 0:
            if ice[k, I_RES] > 0:
                r = ice[k, I_DISP] if ice[k, I_DISP] < ice[k, I_RES] else ice[k, I_RES]
                ice[k, I_RES] -= r
                _add(ST, P, sz, ct, side_hit, best, r)
                res[side_hit, best] += r
                _emit(ST, P, sz, ct, rec, cnt, tmp, te, tr, best, r, CH_A, bookc, side_hit)
                if cnt[1] >= trd.shape[0] - 2 or cnt[0] >= rec.shape[0] - 4:
                    break
                continue
            ice[k, I_ACT] = 0
        if sz[side_hit, best] == 0:
            nlev += 1
            if nlev >= maxwalk:
                break
        if cnt[1] >= trd.shape[0] - 2 or cnt[0] >= rec.shape[0] - 4:
            break
    return filled, ntr, first, last


@nb.njit(nt.float64(A1, F1, F1, I8), cache=True)
def _fair_idx(P, PF, fair, te):
    """The latent fair price at ``te`` as a fractional tick index (linear between seconds)."""
    sec = (te - P[P_T0]) / 1e9
    if sec < 0.0:
        sec = 0.0
    i = int(sec)
    if i >= fair.shape[0] - 1:
        fp = fair[fair.shape[0] - 1]
    else:
        fr = sec - i
        fp = fair[i] * (1.0 - fr) + fair[i + 1] * fr
    return fp / PF[PF_TICKPTS] - P[P_BASE]


@nb.njit(B1(A1, I8, I8), cache=True)
def _suppressed(ST, side, idx):
    return ST[S_SUP] == side and ST[S_SUPLO] <= idx <= ST[S_SUPHI]


@nb.njit(I8(I8, I8, F1, I8, I8, U1), cache=True)
def next_time(t, t0, lam, nmin, tend, rng):
    """Next arrival after ``t`` of the Poisson process with per-minute rates ``lam`` (1/s)."""
    e = exponential(rng)
    cur = t
    while True:
        m = (cur - t0) // MIN_NS
        if m >= nmin or cur >= tend:
            return T_INF
        if m < 0:
            cur = t0
            continue
        rate = lam[m] * 1e-9
        mend = t0 + (m + 1) * MIN_NS
        if rate > 0.0:
            need = e / rate
            if cur + need < mend:
                out = cur + max(1, int(need))
                return out if out < tend else T_INF
            e -= (mend - cur) * rate
        cur = mend


@nb.njit(nt.none(A1, A1, A2, A2, A2, nt.float64, A2, U1), cache=True)
def _deep_fill(ST, P, sz, ct, res, mean, tmp, rng):
    """Keep resting liquidity just beyond the 10th visible level (silent: no MBP-10 record), so
    levels scroll into view as the price moves instead of the book running dry."""
    n = P[P_N]
    for side in range(2):
        best = ST[S_BB] if side == BID else ST[S_BA]
        if best < 0:
            continue
        k = _top(sz, side, best, n, tmp[2])
        if k < 10:
            continue
        step = -1 if side == BID else 1
        i = tmp[2, 9] + step
        for j in range(6):
            if i <= 0 or i >= n - 1:
                break
            if sz[side, i] == 0 and not _suppressed(ST, side, i):
                q = geometric(rng, mean)
                _add(ST, P, sz, ct, side, i, q)
            i += step


# ============================================================================ ambient events

@nb.njit(I8(A1, A1, F1, I8, F1, F1, F1, F1, F1, A2, A2, A2, A2, A2, A2, A1, A2, U1, I8, I8), cache=True)
def _ambient(ST, P, PF, m, addm, dtgt, trdm, pmkt, fair, sz, ct, res, ice, rec, trd, cnt, tmp, rng, te, tr):
    n = P[P_N]
    f = _fair_idx(P, PF, fair, te)
    bb = ST[S_BB]
    ba = ST[S_BA]
    # expire ambient icebergs
    for k in range(ice.shape[0]):
        if ice[k, I_ACT] == 1 and ice[k, I_SCR] == 0 and te > ice[k, I_EXP]:
            ice[k, I_ACT] = 0
            res[ice[k, I_SIDE], ice[k, I_IDX]] = 0
    # garbage-collect stale far levels (silent: deeper than the visible book)
    ST[S_GC] += 1
    if ST[S_GC] >= 512:
        ST[S_GC] = 0
        if bb >= 0:
            i = bb - 60
            while i >= ST[S_LO] and i >= 0:
                if res[BID, i] == 0:
                    sz[BID, i] = 0
                    ct[BID, i] = 0
                i -= 1
            ST[S_LO] = max(0, bb - 60)
        if ba >= 0:
            i = ba + 60
            while i <= ST[S_HI] and i < n:
                if res[ASK, i] == 0:
                    sz[ASK, i] = 0
                    ct[ASK, i] = 0
                i += 1
            ST[S_HI] = min(n - 1, ba + 60)

    kind = 0  # 1 market, 2 add, 3 cancel, 4 pull, 5 iceberg
    add_side = -1
    if bb < 0 or ba < 0:
        kind = 2
        add_side = BID if bb < 0 else ASK
    else:
        u = uniform(rng)
        gap = ba - bb
        if gap > 1 and uniform(rng) < (0.7 if gap > 2 else 0.45):
            kind = 2  # a gapped book is refilled first
        elif u < PF[PF_PULL]:
            kind = 4
        elif u < PF[PF_PULL] + PF[PF_ICE]:
            kind = 5
        else:
            edge = max(f - ba, bb - f)  # > 0: the fair price is outside the spread
            pm = pmkt[m]
            if edge > 0.0:
                pm *= 1.0 + 0.3 * min(edge, 4.0)
            if pm > 0.85:
                pm = 0.85
            if uniform(rng) < pm:
                kind = 1
            else:
                kb = _top(sz, BID, bb, n, tmp[0])
                ka = _top(sz, ASK, ba, n, tmp[1])
                depth = 0
                for j in range(kb):
                    depth += sz[BID, tmp[0, j]]
                for j in range(ka):
                    depth += sz[ASK, tmp[1, j]]
                pc = depth / (depth + dtgt[m])
                kind = 3 if uniform(rng) < pc else 2

    start = cnt[0]
    if kind == 1:
        if f > ba:
            x = f - ba + 0.5
        elif f < bb:
            x = f - bb - 0.5
        else:
            x = (f - 0.5 * (bb + ba)) / max(1.0, 0.5 * (ba - bb))
        pbuy = 1.0 / (1.0 + math.exp(-PF[PF_KAPPA] * x))
        side_hit = ASK if uniform(rng) < pbuy else BID
        size = geometric(rng, trdm[m])
        if uniform(rng) < PF[PF_LARGE]:
            size = 5 + int(addm[m] * math.exp(math.log(3.0) + 0.5 * normal(rng)))
        if ST[S_SUP] != side_hit:
            _walk(ST, P, sz, ct, res, ice, rec, trd, cnt, tmp, te, tr, side_hit, size, -1, 12)
    elif kind == 2:
        side = add_side
        if side < 0:
            # liquidity providers lean toward the side that is thin near the fair price
            lo = int(math.floor(f))
            db = 0
            da = 0
            for j in range(6):
                if 0 <= lo - j < n:
                    db += sz[BID, lo - j]
                if 0 <= lo + 1 + j < n:
                    da += sz[ASK, lo + 1 + j]
            pb = (da + 10.0) / (da + db + 20.0)
            side = BID if uniform(rng) < pb else ASK
        anchor_b = int(math.floor(f))
        if bb >= 0 and ba >= 0 and ba - bb > 1 and uniform(rng) < 0.85:
            # a wide spread is closed toward the fair price first
            if side == BID:
                idx = max(bb + 1, anchor_b - randint(rng, 2))
            else:
                idx = min(ba - 1, anchor_b + 1 + randint(rng, 2))
        else:
            if uniform(rng) < 0.7:
                d = geometric(rng, 2.5) - 1
            else:
                d = randint(rng, 15)
            idx = anchor_b - d if side == BID else anchor_b + 1 + d
        best_s = ST[S_BB] if side == BID else ST[S_BA]
        tight = bb >= 0 and ba >= 0 and ba - bb == 1
        if best_s >= 0 and tight and uniform(rng) < 0.45:
            # stock the back of the book: the first empty price within 12 ticks of the touch
            step = -1 if side == BID else 1
            i = best_s + step
            for j in range(12):
                if 0 < i < n - 1 and sz[side, i] == 0:
                    idx = i
                    break
                i += step
        if side == BID and ba >= 0 and idx >= ba:
            idx = ba - 1
        if side == ASK and bb >= 0 and idx <= bb:
            idx = bb + 1
        q = geometric(rng, addm[m])
        if uniform(rng) < 0.04:
            q *= 3 + randint(rng, 6)
        if 1 <= idx < n - 1 and not _suppressed(ST, side, idx):
            _add(ST, P, sz, ct, side, idx, q)
            best = ST[S_BB] if side == BID else ST[S_BA]
            if _visible(sz, side, best, n, idx, tmp[2]):
                _emit(ST, P, sz, ct, rec, cnt, tmp, te, tr, idx, q, CH_A, CH_B if side == BID else CH_A, side)
    elif kind == 3:
        # cancels come mostly from the better-stocked side
        kb = _top(sz, BID, bb, n, tmp[0])
        ka = _top(sz, ASK, ba, n, tmp[1])
        db = 0
        da = 0
        for j in range(kb):
            db += sz[BID, tmp[0, j]]
        for j in range(ka):
            da += sz[ASK, tmp[1, j]]
        side = BID if uniform(rng) < (db + 1.0) / (db + da + 2.0) else ASK
        best = bb if side == BID else ba
        kk = _top(sz, side, best, n, tmp[2])
        wsum = 0.0
        for j in range(kk):
            i = tmp[2, j]
            c = sz[side, i] - res[side, i]
            if c < 0 or _suppressed(ST, side, i):
                c = 0
            w = float(c) * math.exp(-0.3 * j)
            if (side == BID and i > f + 0.5) or (side == ASK and i < f - 0.5):
                w *= 20.0
            wsum += w
        if wsum > 0.0:
            x = uniform(rng) * wsum
            pick = -1
            for j in range(kk):
                i = tmp[2, j]
                c = sz[side, i] - res[side, i]
                if c < 0 or _suppressed(ST, side, i):
                    c = 0
                w = float(c) * math.exp(-0.3 * j)
                if (side == BID and i > f + 0.5) or (side == ASK and i < f - 0.5):
                    w *= 20.0
                if w > 0.0:
                    pick = i
                    x -= w
                    if x < 0.0:
                        break
            c = sz[side, pick] - res[side, pick]
            if (side == BID and pick > f + 0.5) or (side == ASK and pick < f - 0.5):
                q = c  # a quote the fair price has moved through is pulled entirely
            elif uniform(rng) < 0.7:
                q = geometric(rng, addm[m])
                if q > c:
                    q = c
            else:
                q = max(1, int(c * uniform(rng)))
            _remove(ST, P, sz, ct, res, side, pick, q, True)
            _emit(ST, P, sz, ct, rec, cnt, tmp, te, tr, pick, q, CH_C, CH_B if side == BID else CH_A, side)
    elif kind == 4:
        side = BID if uniform(rng) < 0.5 else ASK
        if ST[S_SUP] != side:
            best = bb if side == BID else ba
            kk = _top(sz, side, best, n, tmp[2])
            nl = 1 + randint(rng, 3)
            for j in range(min(nl, kk)):
                i = tmp[2, j]
                c = sz[side, i] - res[side, i]
                q = int(c * (0.4 + 0.5 * uniform(rng)))
                if q > 0:
                    _remove(ST, P, sz, ct, res, side, i, q, False)
                    _emit(ST, P, sz, ct, rec, cnt, tmp, te, tr, i, q, CH_C, CH_B if side == BID else CH_A, side)
    elif kind == 5:
        side = BID if uniform(rng) < 0.5 else ASK
        best = bb if side == BID else ba
        slot = -1
        for k in range(ice.shape[0]):
            if ice[k, I_ACT] == 0:
                slot = k
                break
        if ST[S_SUP] != side and slot >= 0 and _ice_find(ice, side, best) < 0 and res[side, best] == 0:
            disp = geometric(rng, addm[m] * 1.5) + 2
            reserve = disp * (3 + randint(rng, 8))
            _add(ST, P, sz, ct, side, best, disp)
            res[side, best] += disp
            ice[slot, I_ACT] = 1
            ice[slot, I_SIDE] = side
            ice[slot, I_IDX] = best
            ice[slot, I_DISP] = disp
            ice[slot, I_RES] = reserve
            ice[slot, I_EXP] = te + (60 + randint(rng, 540)) * 1_000_000_000
            ice[slot, I_SCR] = 0
            _emit(ST, P, sz, ct, rec, cnt, tmp, te, tr, best, disp, CH_A, CH_B if side == BID else CH_A, side)
    _deep_fill(ST, P, sz, ct, res, addm[m], tmp, rng)
    return cnt[0] - start


# ============================================================================ scripted events

@nb.njit(nt.float64(A2, I8, I8, I8, A1), cache=True)
def _mean_visible(sz, side, best, n, tmp):
    k = _top(sz, side, best, n, tmp)
    if k == 0:
        return 0.0
    s = 0
    for j in range(k):
        s += sz[side, tmp[j]]
    return s / k


@nb.njit(I8(A1, A1, A2, I8, A2, A2, A2, A2, A2, A2, A2, A1, A2, I8, I8), cache=True)
def _script(ST, P, sc, si, slog, sz, ct, res, ice, rec, trd, cnt, tmp, te, tr):
    n = P[P_N]
    typ = sc[si, SC_TYPE]
    side = sc[si, SC_SIDE]
    idx = sc[si, SC_IDX]
    size = sc[si, SC_SIZE]
    p2 = sc[si, SC_P2]
    p3 = sc[si, SC_P3]
    sidec = CH_B if side == BID else CH_A
    start = cnt[0]
    applied = 0
    ntr = 0
    first = -1
    last = -1
    if typ == A_SETUP:
        # defending side ``side``: nothing better than ``idx``; the other side strictly behind it;
        # icebergs / reservations in the zone released; oversized zone levels trimmed; then the
        # zone [p2, p3] of ``side`` is closed to ambient activity until A_RELEASE.
        other = ASK if side == BID else BID
        otherc = CH_A if side == BID else CH_B
        for k in range(ice.shape[0]):
            if ice[k, I_ACT] == 1 and ice[k, I_SIDE] == side and p2 <= ice[k, I_IDX] <= p3:
                ice[k, I_ACT] = 0
        for i in range(max(0, p2 - 40), min(n, p3 + 41)):
            res[side, i] = 0
        for _guard in range(120):
            best = ST[S_BA] if side == ASK else ST[S_BB]
            if best < 0 or (side == ASK and best >= idx) or (side == BID and best <= idx):
                break
            q = sz[side, best]
            _remove(ST, P, sz, ct, res, side, best, q, False)
            _emit(ST, P, sz, ct, rec, cnt, tmp, te, tr, best, q, CH_C, sidec, side)
            applied += q
        for _guard in range(120):
            ob = ST[S_BB] if other == BID else ST[S_BA]
            if ob < 0 or (other == BID and ob < idx) or (other == ASK and ob > idx):
                break
            q = sz[other, ob]
            res[other, ob] = 0
            _remove(ST, P, sz, ct, res, other, ob, q, False)
            _emit(ST, P, sz, ct, rec, cnt, tmp, te, tr, ob, q, CH_C, otherc, other)
        best = ST[S_BA] if side == ASK else ST[S_BB]
        mean = _mean_visible(sz, side, best, n, tmp[2])
        if size == 1 and sz[side, idx] > 0:
            q = sz[side, idx]
            _remove(ST, P, sz, ct, res, side, idx, q, False)
            _emit(ST, P, sz, ct, rec, cnt, tmp, te, tr, idx, q, CH_C, sidec, side)
        elif size == 0 and sz[side, idx] == 0:
            q = max(5, int(mean))
            _add(ST, P, sz, ct, side, idx, q)
            _emit(ST, P, sz, ct, rec, cnt, tmp, te, tr, idx, q, CH_A, sidec, side)
        cap = max(5, int(1.5 * mean))
        for i in range(p2, p3 + 1):
            if 0 <= i < n and sz[side, i] > cap:
                q = sz[side, i] - cap
                _remove(ST, P, sz, ct, res, side, i, q, False)
                _emit(ST, P, sz, ct, rec, cnt, tmp, te, tr, i, q, CH_C, sidec, side)
        ST[S_SUP] = side
        ST[S_SUPLO] = p2
        ST[S_SUPHI] = p3
    elif typ == A_ADD:
        _add(ST, P, sz, ct, side, idx, size)
        res[side, idx] += size
        applied = size
        first = idx
        last = idx
        _emit(ST, P, sz, ct, rec, cnt, tmp, te, tr, idx, size, CH_A, sidec, side)
    elif typ == A_CANCEL:
        q = min(size, res[side, idx], sz[side, idx])
        if q > 0:
            res[side, idx] -= q
            _remove(ST, P, sz, ct, res, side, idx, q, True)
            _emit(ST, P, sz, ct, rec, cnt, tmp, te, tr, idx, q, CH_C, sidec, side)
        applied = q
        first = idx
        last = idx
    elif typ == A_MARKET:
        applied, ntr, first, last = _walk(ST, P, sz, ct, res, ice, rec, trd, cnt, tmp, te, tr, side, size, idx, 40)
    elif typ == A_ICEBERG:
        slot = -1
        for k in range(ice.shape[0]):
            if ice[k, I_ACT] == 0:
                slot = k
                break
        if slot < 0:
            slot = 0
        disp = size
        if disp <= 0:  # auto: 1.5x the mean visible defending level
            best = ST[S_BA] if side == ASK else ST[S_BB]
            disp = max(5, int(1.5 * _mean_visible(sz, side, best, n, tmp[2])))
        reserve = p2
        if reserve < 0:  # auto: enough full-display hits to fill p3 contracts
            reserve = ((p3 + disp - 1) // disp) * disp
        _add(ST, P, sz, ct, side, idx, disp)
        res[side, idx] += disp
        ice[slot, I_ACT] = 1
        ice[slot, I_SIDE] = side
        ice[slot, I_IDX] = idx
        ice[slot, I_DISP] = disp
        ice[slot, I_RES] = reserve
        ice[slot, I_EXP] = T_INF
        ice[slot, I_SCR] = 1
        size = disp
        applied = disp + reserve
        first = idx
        last = idx
        _emit(ST, P, sz, ct, rec, cnt, tmp, te, tr, idx, size, CH_A, sidec, side)
    elif typ == A_HIT_ICE:
        k = _ice_find(ice, side, idx)
        if k >= 0 and ice[k, I_RES] >= ice[k, I_DISP]:
            best = ST[S_BA] if side == ASK else ST[S_BB]
            if best == idx:
                applied, ntr, first, last = _walk(ST, P, sz, ct, res, ice, rec, trd, cnt, tmp, te, tr,
                                                  side, sz[side, idx], idx, 1)
    elif typ == A_SWEEP_PREP:
        if idx >= 0:
            # the walk must start at ``idx``: clear better prices, make sure ``idx`` rests
            for _guard in range(120):
                best = ST[S_BA] if side == ASK else ST[S_BB]
                if best < 0 or (side == ASK and best >= idx) or (side == BID and best <= idx):
                    break
                q = sz[side, best]
                res[side, best] = 0
                _remove(ST, P, sz, ct, res, side, best, q, False)
                _emit(ST, P, sz, ct, rec, cnt, tmp, te, tr, best, q, CH_C, sidec, side)
            other = ASK if side == BID else BID
            for _guard in range(120):
                ob = ST[S_BB] if other == BID else ST[S_BA]
                if ob < 0 or (other == BID and ob < idx) or (other == ASK and ob > idx):
                    break
                q = sz[other, ob]
                res[other, ob] = 0
                _remove(ST, P, sz, ct, res, other, ob, q, False)
                _emit(ST, P, sz, ct, rec, cnt, tmp, te, tr, ob, q, CH_C, CH_A if other == ASK else CH_B, other)
            if sz[side, idx] == 0:
                mean0 = _mean_visible(sz, side, ST[S_BA] if side == ASK else ST[S_BB], n, tmp[2])
                q = max(5, int(mean0))
                _add(ST, P, sz, ct, side, idx, q)
                _emit(ST, P, sz, ct, rec, cnt, tmp, te, tr, idx, q, CH_A, sidec, side)
            # keep ambient flow off the walked side until the sweep (an A_RELEASE follows it)
            ST[S_SUP] = side
            ST[S_SUPLO] = idx - 12
            ST[S_SUPHI] = idx + 12
        best = ST[S_BA] if side == ASK else ST[S_BB]
        if idx < 0 and best >= 0:
            ST[S_SUP] = side
            ST[S_SUPLO] = best - 12
            ST[S_SUPHI] = best + 12
        if best >= 0:
            step = 1 if side == ASK else -1
            mean = _mean_visible(sz, side, best, n, tmp[2])
            total = 0
            for j in range(size):
                i = best + step * j
                if sz[side, i] == 0:
                    q = max(5, int(mean))
                    _add(ST, P, sz, ct, side, i, q)
                    _emit(ST, P, sz, ct, rec, cnt, tmp, te, tr, i, q, CH_A, sidec, side)
                    applied += q
                total += sz[side, i]
            if total < p2 + 1:
                i = best + step * (size - 1)
                q = p2 + 1 - total
                _add(ST, P, sz, ct, side, i, q)
                _emit(ST, P, sz, ct, rec, cnt, tmp, te, tr, i, q, CH_A, sidec, side)
                applied += q
    elif typ == A_SWEEP:
        best = ST[S_BA] if side == ASK else ST[S_BB]
        kk = _top(sz, side, best, n, tmp[2])
        s = 0
        for j in range(min(size - 1, kk)):
            s += sz[side, tmp[2, j]]
        q = max(p2, s + 1)
        applied, ntr, first, last = _walk(ST, P, sz, ct, res, ice, rec, trd, cnt, tmp, te, tr, side, q, -1,
                                          size + 8)
    elif typ == A_RELEASE:
        for i in range(max(0, p2), min(n, p3 + 1)):
            res[side, i] = 0
        for k in range(ice.shape[0]):
            if ice[k, I_ACT] == 1 and ice[k, I_SCR] == 1 and ice[k, I_SIDE] == side and p2 <= ice[k, I_IDX] <= p3:
                ice[k, I_ACT] = 0
        ST[S_SUP] = -1
    slog[si, L_TE] = te
    slog[si, L_TR] = tr
    slog[si, L_SIZE] = applied
    slog[si, L_NTR] = ntr
    slog[si, L_FIRST] = first
    slog[si, L_LAST] = last
    return cnt[0] - start


# ============================================================================ driver kernel

@nb.njit(I8(A1, A1, F1, F1, F1, F1, F1, F1, F1, A2, A2, A2, A2, A2, A2, A2, A2, A1, A2, U1, I8), cache=True)
def run_kernel(ST, P, PF, lam, pmkt, addm, dtgt, trdm, fair, sz, ct, res, ice, sc, slog, rec, trd, cnt, tmp,
               rng, stop):
    """Process events until the next one's ts_recv >= ``stop`` (0), a buffer is full (1) or the
    ambient process and the script are exhausted (2)."""
    cap_m = rec.shape[0]
    cap_t = trd.shape[0]
    nsc = sc.shape[0]
    nmin = P[P_NMIN]
    while True:
        if cnt[0] + MAX_RECORDS_PER_EVENT > cap_m or cnt[1] + MAX_TRADES_PER_EVENT > cap_t:
            return 1
        si = ST[S_SI]
        nxt = ST[S_NEXT]
        if si < nsc and sc[si, SC_TS] <= nxt:
            te = max(sc[si, SC_TS], ST[S_LTE] + 1)
            tr = max(te + 240_000 + (si % 50) * 1000, ST[S_LTR] + 1)
            if tr >= stop:
                return 0
            start = cnt[0]
            _script(ST, P, sc, si, slog, sz, ct, res, ice, rec, trd, cnt, tmp, te, tr)
            ST[S_SI] = si + 1
        else:
            if nxt >= T_INF:
                return 2
            te = max(nxt, ST[S_LTE] + 1)
            tr = max(te + ST[S_NLAT], ST[S_LTR] + 1)
            if tr >= stop:
                return 0
            m = (nxt - P[P_T0]) // MIN_NS
            if m >= nmin:
                m = nmin - 1
            start = cnt[0]
            _ambient(ST, P, PF, m, addm, dtgt, trdm, pmkt, fair, sz, ct, res, ice, rec, trd, cnt, tmp, rng, te, tr)
            ST[S_NEXT] = next_time(nxt, P[P_T0], lam, nmin, P[P_TEND], rng)
            ST[S_NLAT] = 180_000 + int(exponential(rng) * 70_000)
        if cnt[0] > start:
            rec[cnt[0] - 1, 3] |= F_LAST << 48
            ST[S_LTE] = te
            ST[S_LTR] = tr
            ST[S_SEQ] += 1
        ST[S_NEV] += 1


# ============================================================================ Python wrapper

@dataclass
class MinuteProfile:
    """Per-minute inputs of one contract's simulation (index = minute since the data start).

    ``lam`` events/s; ``pmkt`` probability an event is a market order; ``addm`` mean limit-add
    size (contracts); ``dtgt`` visible depth (both sides, 10 levels each) the cancel rate steers
    to; ``trdm`` mean market-order size.
    """

    lam: np.ndarray
    pmkt: np.ndarray
    addm: np.ndarray
    dtgt: np.ndarray
    trdm: np.ndarray


class BookSim:
    """The simulated book of one contract over one session's data window."""

    def __init__(self, *, instrument_id: int, tick_points: float, t0_ns: int, tend_ns: int, profile: MinuteProfile,
                 fair_points: np.ndarray, script: np.ndarray, rng_state: np.ndarray, seq_base: int,
                 init_level_size: float, p_pull: float = 0.003, p_ice: float = 0.0015, kappa: float = 1.3,
                 p_large: float = 0.012, n_ticks: int = 16384, cap_records: int = 131_072) -> None:
        self.instrument_id = int(instrument_id)
        self.tick_ns = int(round(tick_points * 1e9))
        self.tick_points = float(tick_points)
        self.n = int(n_ticks)
        self.base = self.base_for(float(fair_points[0]), tick_points, self.n)
        self.P = np.zeros(N_PARAM, np.int64)
        self.P[P_T0] = t0_ns
        self.P[P_TEND] = tend_ns
        self.P[P_NMIN] = profile.lam.shape[0]
        self.P[P_N] = self.n
        self.P[P_BASE] = self.base
        self.P[P_TICK] = self.tick_ns
        self.P[P_SEQ0] = seq_base
        self.PF = np.zeros(N_FPARAM, np.float64)
        self.PF[PF_PULL] = p_pull
        self.PF[PF_ICE] = p_ice
        self.PF[PF_KAPPA] = kappa
        self.PF[PF_LARGE] = p_large
        self.PF[PF_TICKPTS] = tick_points
        self.profile = profile
        self.fair = np.ascontiguousarray(fair_points, dtype=np.float64)
        self.sz = np.zeros((2, self.n), np.int64)
        self.ct = np.zeros((2, self.n), np.int64)
        self.res = np.zeros((2, self.n), np.int64)
        self.ice = np.zeros((N_ICE, 7), np.int64)
        self.rng = rng_state.copy()
        self.script = np.ascontiguousarray(script, dtype=np.int64).reshape(-1, 7)
        self.slog = np.zeros((self.script.shape[0], 6), np.int64)
        self.ST = np.zeros(N_STATE, np.int64)
        self.ST[S_SUP] = -1
        self.cap = int(cap_records)
        self.rec = np.zeros((self.cap, BOOK_WORDS), np.int64)
        self.trd = np.zeros((self.cap // 2, TRADE_WORDS), np.int64)
        iid = self.instrument_id
        self.P[P_W0M] = (BOOK.itemsize // 4) | (10 << 8) | (1 << 16) | (iid << 32)
        self.P[P_W0T] = (TRADE.itemsize // 4) | (0 << 8) | (1 << 16) | (iid << 32)
        self.cnt = np.zeros(2, np.int64)
        self.tmp = np.zeros((3, 10), np.int64)
        self._init_book(init_level_size)
        self.ST[S_NEXT] = next_time(np.int64(t0_ns), np.int64(t0_ns), profile.lam, np.int64(profile.lam.shape[0]),
                                    np.int64(tend_ns), self.rng)
        self.ST[S_NLAT] = 180_000 + int(exponential(self.rng) * 70_000)
        self.done = False

    @staticmethod
    def base_for(fair0: float, tick_points: float, n_ticks: int = 16384) -> int:
        """Tick offset of the book grid: idx = round(price / tick) − base (grid centred on fair0)."""
        return int(round(fair0 / tick_points)) - n_ticks // 2

    def _init_book(self, level_size: float) -> None:
        f = float(self.fair[0]) / self.tick_points - self.base
        bid0 = int(math.floor(f))
        for j in range(25):
            for side, idx in ((BID, bid0 - j), (ASK, bid0 + 1 + j)):
                q = 1 + int(geometric(self.rng, max(1.0, level_size)))
                self.sz[side, idx] = q
                self.ct[side, idx] = max(1, q // 4)
        self.ST[S_BB] = bid0
        self.ST[S_BA] = bid0 + 1
        self.ST[S_LO] = bid0 - 24
        self.ST[S_HI] = bid0 + 25

    def run_until(self, stop_ns: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Simulate every event with ts_recv < ``stop_ns``; returns (MBP-10 chunks, trade chunks)."""
        books: list[np.ndarray] = []
        trades: list[np.ndarray] = []
        while not self.done:
            self.cnt[:] = 0
            code = run_kernel(self.ST, self.P, self.PF, self.profile.lam, self.profile.pmkt, self.profile.addm,
                              self.profile.dtgt, self.profile.trdm, self.fair, self.sz, self.ct, self.res, self.ice,
                              self.script, self.slog, self.rec, self.trd, self.cnt, self.tmp, self.rng,
                              np.int64(stop_ns))
            if self.cnt[0]:
                books.append(self._books(int(self.cnt[0])))
            if self.cnt[1]:
                trades.append(self._trades(int(self.cnt[1])))
            if code == 2:
                self.done = True
            if code != 1:
                break
        return books, trades

    def _books(self, n: int) -> np.ndarray:
        return self.rec[:n].copy().view(BOOK).reshape(n)

    def _trades(self, n: int) -> np.ndarray:
        return self.trd[:n].copy().view(TRADE).reshape(n)

    def script_log(self) -> np.ndarray:
        return self.slog.copy()

    def price_points(self, idx: int) -> float:
        return (self.base + idx) * self.tick_points

    def idx_of(self, price_points: float) -> int:
        return int(round(price_points / self.tick_points)) - self.base
