"""``BarrierEngine``: the order-book barrier features of SPEC §7, vectorized over levels.

Inputs are a :class:`~spymaster.state.book.BookState` (committed MBP-10 states and their change
entries), the levels' ES prices ``levels_es`` (int64 1e-9 ES points, ``round(L × es_spy_ratio ×
1e9)``, see :func:`level_es_units`), the test directions (+1 UP → the ask defends, −1 DOWN → the
bid defends) and the decision time ``t`` (ns). One numba call computes, per level:

* zone = ``[L_es − z, L_es + z]`` with ``z = barrier_zone_ticks × es_tick_size`` (exact integer
  comparison in 1e-9 ES units, inclusive);
* over the change entries of the pairs whose later state has ``ts ∈ [t − barrier_window_s, t)``
  on the defending side inside the zone: ``barrier_added``, ``barrier_canceled``,
  ``barrier_filled`` (int64 contracts; the per-entry split is done by ``BookState``);
  ``barrier_delta_liq = added − canceled − filled``; ``barrier_replenishment_ratio = added /
  max(1, canceled + filled)``; ``churn = added + canceled + filled`` (delta_liq and churn are
  returned as float64 holding exact integers, as the Gold schema types them);
* ``depth_in_zone`` (int64) = defending size inside the zone in the last committed state before
  t; ``wall_ratio`` = the largest single defending level size inside the zone (same state) ÷
  baseline, where baseline = the time-weighted mean over ``[t − baseline_window_s, t)`` — over the
  part of the window covered by committed states — of (Σ the 10 defending level sizes)/10
  (empty levels 0); computed as ``10 · max_level / mean_sum`` with the time integral in exact
  int64 (float64 only if it would overflow); baseline 0 → wall_ratio 0;
* ``barrier_state`` (:data:`spymaster.vocab.BARRIER_STATES` code), first match of SPEC §7 with all
  thresholds from ``cfg.barrier``.

Choice where SPEC is silent: before the first committed state (no book state before t) every
number is 0 and the state is WEAK (``depth_in_zone == 0``), whatever the thresholds.
"""

from __future__ import annotations

import numba
import numpy as np

from spymaster.config import Config
from spymaster.events import PRICE_SCALE
from spymaster.state.book import NLEV, BookState
from spymaster.vocab import B_ABSORPTION, B_CONSUMED, B_NEUTRAL, B_VACUUM, B_WALL, B_WEAK

NS = 1_000_000_000
_INT64_MAX = np.iinfo(np.int64).max
_UNDEF = np.int64(2**63 - 1)

FEATURES = ("barrier_state", "barrier_delta_liq", "barrier_replenishment_ratio", "barrier_added",
            "barrier_canceled", "barrier_filled", "wall_ratio", "depth_in_zone", "churn")


def level_es_units(levels_axis: np.ndarray, es_spy_ratio: float) -> np.ndarray:
    """Axis prices (SPY $) → ES prices in int64 1e-9 ES points: ``round(L × ratio × 1e9)``."""
    return np.round(np.asarray(levels_axis, dtype=np.float64) * es_spy_ratio * PRICE_SCALE).astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _mean_sums(c_ts, c_bsum, c_asum, c_cumb, c_cuma, k_first, k_last, a, t, max_sum):
    """Time-weighted means over [max(a, first state), t) of the bid and ask Σ10 sizes.

    States k_first..k_last, each in effect until the next one (the last until t). When the
    window integral cannot reach 2^63 (``max_sum × covered ns``), it is the exact difference of
    the running integrals (uint64 modulo 2^64) plus the two partial pieces — O(1); otherwise a
    float64 scan of the states.
    """
    start0 = c_ts[k_first] if c_ts[k_first] > a else a
    covered = t - start0
    if covered <= 0:
        return 0.0, 0.0
    fc = float(covered)
    if max_sum <= _INT64_MAX // covered:
        d1 = np.uint64(t - c_ts[k_last])
        d0 = np.uint64(start0 - c_ts[k_first])
        ib = np.int64((c_cumb[k_last] + np.uint64(c_bsum[k_last]) * d1)
                      - (c_cumb[k_first] + np.uint64(c_bsum[k_first]) * d0))
        ia = np.int64((c_cuma[k_last] + np.uint64(c_asum[k_last]) * d1)
                      - (c_cuma[k_first] + np.uint64(c_asum[k_first]) * d0))
        qb = ib // covered
        qa = ia // covered
        return float(qb) + float(ib - qb * covered) / fc, float(qa) + float(ia - qa * covered) / fc
    fb = 0.0
    fa = 0.0
    s0 = start0
    for k in range(k_first, k_last + 1):
        s1 = c_ts[k + 1] if k < k_last else t
        d = float(s1 - s0)
        fb += float(c_bsum[k]) * d
        fa += float(c_asum[k]) * d
        s0 = s1
    return fb / fc, fa / fc


_HIST_MAX_TICKS = 1 << 16


@numba.njit(cache=True, nogil=True)
def _zone_flows(levels_es, direction, zone, tick, j0, j1, e_side, e_px, e_add, e_can, e_fill, use_hist,
                o_add, o_can, o_fill):
    """Σ added / canceled / filled of entries j0..j1-1 on each level's defending side in its zone.

    Entry prices are on the ES tick grid, so the sums are read from per-tick prefix sums
    (O(entries + ticks + levels)); off-grid prices or an absurd price range fall back to a direct
    scan (O(entries × levels)). Both give identical integers.
    """
    nlev = levels_es.shape[0]
    n = j1 - j0
    if use_hist and n > 0 and tick > 0:
        pmin = e_px[j0]
        pmax = e_px[j0]
        for j in range(j0, j1):
            if e_px[j] < pmin:
                pmin = e_px[j]
            if e_px[j] > pmax:
                pmax = e_px[j]
        nb = (pmax - pmin) // tick + 1
        if nb <= _HIST_MAX_TICKS:
            # prefix sums per side (0 bid, 1 ask) and metric (0 added, 1 canceled, 2 filled);
            # tick index by a float product checked exactly (no integer division per entry)
            h = np.zeros((2, 3, nb + 1), np.int64)
            inv = 1.0 / float(tick)
            on_grid = True
            for j in range(j0, j1):
                off = e_px[j] - pmin
                b = np.int64(np.floor(float(off) * inv + 0.5))
                if b * tick != off:
                    on_grid = False
                    break
                sd = 1 if e_side[j] > 0 else 0
                h[sd, 0, b + 1] += e_add[j]
                h[sd, 1, b + 1] += e_can[j]
                h[sd, 2, b + 1] += e_fill[j]
        else:
            on_grid = False
        if on_grid:
            for sd in range(2):
                for m in range(3):
                    for b in range(1, nb + 1):
                        h[sd, m, b] += h[sd, m, b - 1]
            for i in range(nlev):
                sd = 1 if direction[i] > 0 else 0
                lo = -((pmin - (levels_es[i] - zone)) // tick)  # first tick index >= zone low
                hi = (levels_es[i] + zone - pmin) // tick       # last tick index <= zone high
                if lo < 0:
                    lo = 0
                if hi > nb - 1:
                    hi = nb - 1
                if hi < lo:
                    o_add[i] = 0
                    o_can[i] = 0
                    o_fill[i] = 0
                else:
                    o_add[i] = h[sd, 0, hi + 1] - h[sd, 0, lo]
                    o_can[i] = h[sd, 1, hi + 1] - h[sd, 1, lo]
                    o_fill[i] = h[sd, 2, hi + 1] - h[sd, 2, lo]
            return
    for i in range(nlev):
        lz = levels_es[i] - zone
        hz = levels_es[i] + zone
        side = 1 if direction[i] > 0 else -1
        added = np.int64(0)
        canceled = np.int64(0)
        filled = np.int64(0)
        for j in range(j0, j1):
            if e_side[j] == side:
                px = e_px[j]
                if px >= lz and px <= hz:
                    added += e_add[j]
                    canceled += e_can[j]
                    filled += e_fill[j]
        o_add[i] = added
        o_can[i] = canceled
        o_fill[i] = filled


@numba.njit(cache=True, nogil=True)
def _barrier_kernel(levels_es, direction, t, zone, tick, win_ns, base_ns, max_sum, use_hist,
                    c_ts, c_bsum, c_asum, c_cumb, c_cuma, c_bpx, c_apx, c_bsz, c_asz,
                    e_ts, e_side, e_px, e_add, e_can, e_fill,
                    flow, vac_rep, wall_rep, wr_wall, wr_weak,
                    o_state, o_delta, o_rep, o_add, o_can, o_fill, o_wall, o_depth, o_churn):
    nlev = levels_es.shape[0]
    k_last = np.searchsorted(c_ts, t, side="left") - 1  # last committed state before t
    if k_last < 0:
        for i in range(nlev):
            o_state[i] = B_WEAK
            o_delta[i] = 0.0
            o_rep[i] = 0.0
            o_add[i] = 0
            o_can[i] = 0
            o_fill[i] = 0
            o_wall[i] = 0.0
            o_depth[i] = 0
            o_churn[i] = 0.0
        return
    # time-weighted baselines of both sides (independent of the level)
    a = t - base_ns
    k_first = np.searchsorted(c_ts, a, side="right") - 1  # the state in effect at the window start
    if k_first < 0:
        k_first = 0
    mean_bid, mean_ask = _mean_sums(c_ts, c_bsum, c_asum, c_cumb, c_cuma, k_first, k_last, a, t, max_sum)
    j0 = np.searchsorted(e_ts, t - win_ns, side="left")
    j1 = np.searchsorted(e_ts, t, side="left")
    _zone_flows(levels_es, direction, zone, tick, j0, j1, e_side, e_px, e_add, e_can, e_fill, use_hist,
                o_add, o_can, o_fill)
    for i in range(nlev):
        lz = levels_es[i] - zone
        hz = levels_es[i] + zone
        d = direction[i]
        # last state: depth in zone and the largest single level
        depth = np.int64(0)
        mx = np.int64(0)
        for j in range(NLEV):
            if d > 0:
                px = c_apx[k_last, j]
                sz = c_asz[k_last, j]
            else:
                px = c_bpx[k_last, j]
                sz = c_bsz[k_last, j]
            if px != _UNDEF and px >= lz and px <= hz:
                depth += sz
                if sz > mx:
                    mx = sz
        mean = mean_ask if d > 0 else mean_bid
        wall = (10.0 * float(mx)) / mean if mean > 0.0 else 0.0
        added = o_add[i]
        canceled = o_can[i]
        filled = o_fill[i]
        delta = added - canceled - filled
        denom = canceled + filled
        if denom < 1:
            denom = 1
        rep = float(added) / float(denom)
        fd = float(delta)
        if fd <= -flow and canceled >= filled and rep < vac_rep:
            state = B_VACUUM
        elif fd <= -flow and filled > canceled:
            state = B_CONSUMED
        elif (fd >= flow and rep > wall_rep) or wall >= wr_wall:
            state = B_WALL
        elif float(filled) >= flow and delta >= 0:
            state = B_ABSORPTION
        elif wall < wr_weak or depth == 0:
            state = B_WEAK
        else:
            state = B_NEUTRAL
        o_state[i] = state
        o_delta[i] = fd
        o_rep[i] = rep
        o_wall[i] = wall
        o_depth[i] = depth
        o_churn[i] = float(added + canceled + filled)


class BarrierEngine:
    """Barrier features at a decision time (SPEC §7); stateless apart from its config."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        b = cfg.barrier
        self.zone = int(round(b.barrier_zone_ticks * cfg.instrument.es_tick_size * PRICE_SCALE))
        self.win_ns = int(round(b.barrier_window_s * NS))
        self.base_ns = int(round(b.baseline_window_s * NS))
        self.tick = int(round(cfg.instrument.es_tick_size * PRICE_SCALE))
        self.use_hist = True  # False forces the direct scan (tests compare both)

    def features(self, book: BookState, levels_es: np.ndarray, direction: np.ndarray, t: int) -> dict[str, np.ndarray]:
        """Barrier features of each level at ``t`` (ns); arrays aligned with ``levels_es``.

        Uses only committed states and entries with ts < t, so events at or after t never
        change the result. Raises :class:`~spymaster.state.ringbuffer.RetentionError` if the
        windows reach before what the book's buffers still guarantee.
        """
        t = int(t)
        levels_es = np.ascontiguousarray(levels_es, dtype=np.int64)
        direction = np.ascontiguousarray(direction, dtype=np.int8)
        if levels_es.shape != direction.shape:
            raise ValueError("levels_es and direction must have the same shape")
        n = levels_es.shape[0]
        book.commits.check_from(t - self.base_ns)
        book.entries.check_from(t - self.win_ns)
        c = book.commits.live()
        e = book.entries.live()
        b = self.cfg.barrier
        out = {
            "barrier_state": np.empty(n, np.int8),
            "barrier_delta_liq": np.empty(n, np.float64),
            "barrier_replenishment_ratio": np.empty(n, np.float64),
            "barrier_added": np.empty(n, np.int64),
            "barrier_canceled": np.empty(n, np.int64),
            "barrier_filled": np.empty(n, np.int64),
            "wall_ratio": np.empty(n, np.float64),
            "depth_in_zone": np.empty(n, np.int64),
            "churn": np.empty(n, np.float64),
        }
        _barrier_kernel(levels_es, direction, t, self.zone, self.tick, self.win_ns, self.base_ns,
                        book.max_level_sum, self.use_hist,
                        c["ts"], c["bid_sum"], c["ask_sum"], c["cum_bid"], c["cum_ask"], c["bid_px"], c["ask_px"], c["bid_sz"], c["ask_sz"],
                        e["ts"], e["side"], e["price"], e["added"], e["canceled"], e["filled"],
                        float(b.barrier_flow_threshold), float(b.vacuum_max_replenishment),
                        float(b.wall_min_replenishment), float(b.wall_ratio_wall), float(b.wall_ratio_weak),
                        out["barrier_state"], out["barrier_delta_liq"], out["barrier_replenishment_ratio"],
                        out["barrier_added"], out["barrier_canceled"], out["barrier_filled"],
                        out["wall_ratio"], out["depth_in_zone"], out["churn"])
        return out
