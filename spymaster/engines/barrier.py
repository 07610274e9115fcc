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


@numba.njit(cache=True)
def _mean_sum(c_ts, sums, k_first, k_last, a, t):
    """Time-weighted mean over [max(a, first state), t) of ``sums`` (states k_first..k_last)."""
    start0 = c_ts[k_first] if c_ts[k_first] > a else a
    covered = t - start0
    num = np.int64(0)
    numf = 0.0
    overflow = False
    for k in range(k_first, k_last + 1):
        s0 = c_ts[k] if c_ts[k] > a else a
        s1 = c_ts[k + 1] if k < k_last else t
        d = s1 - s0
        s = sums[k]
        numf += float(s) * float(d)
        if not overflow and s > 0 and d > 0:
            if d > (_INT64_MAX - num) // s:
                overflow = True
            else:
                num += s * d
    if covered <= 0:
        return 0.0
    if overflow:
        return numf / float(covered)
    q = num // covered
    r = num - q * covered
    return float(q) + float(r) / float(covered)


@numba.njit(cache=True)
def _barrier_kernel(levels_es, direction, t, zone, win_ns, base_ns,
                    c_ts, c_bsum, c_asum, c_bpx, c_apx, c_bsz, c_asz,
                    e_ts, e_side, e_px, e_add, e_can, e_fill,
                    flow, vac_rep, wall_rep, wr_wall, wr_weak,
                    o_state, o_delta, o_rep, o_add, o_can, o_fill, o_wall, o_depth, o_churn):
    nlev = levels_es.shape[0]
    nc = c_ts.shape[0]
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
    mean_bid = _mean_sum(c_ts, c_bsum, k_first, k_last, a, t)
    mean_ask = _mean_sum(c_ts, c_asum, k_first, k_last, a, t)
    j0 = np.searchsorted(e_ts, t - win_ns, side="left")
    j1 = np.searchsorted(e_ts, t, side="left")
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
        added = np.int64(0)
        canceled = np.int64(0)
        filled = np.int64(0)
        side = 1 if d > 0 else -1
        for j in range(j0, j1):
            if e_side[j] == side:
                px = e_px[j]
                if px >= lz and px <= hz:
                    added += e_add[j]
                    canceled += e_can[j]
                    filled += e_fill[j]
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
        o_add[i] = added
        o_can[i] = canceled
        o_fill[i] = filled
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
        _barrier_kernel(levels_es, direction, t, self.zone, self.win_ns, self.base_ns,
                        c["ts"], c["bid_sum"], c["ask_sum"], c["bid_px"], c["ask_px"], c["bid_sz"], c["ask_sz"],
                        e["ts"], e["side"], e["price"], e["added"], e["canceled"], e["filled"],
                        float(b.barrier_flow_threshold), float(b.vacuum_max_replenishment),
                        float(b.wall_min_replenishment), float(b.wall_ratio_wall), float(b.wall_ratio_weak),
                        out["barrier_state"], out["barrier_delta_liq"], out["barrier_replenishment_ratio"],
                        out["barrier_added"], out["barrier_canceled"], out["barrier_filled"],
                        out["wall_ratio"], out["depth_in_zone"], out["churn"])
        return out
