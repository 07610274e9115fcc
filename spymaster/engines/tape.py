"""``TapeEngine``: the ES tape features of SPEC §7, vectorized over levels.

Inputs: a :class:`~spymaster.state.trades.TradeTape`, the levels on the price axis
(``levels_axis``, float64 SPY $) and the decision time ``t`` (ns). One numba call computes, per
level, with ``px = price_es / es_spy_ratio``:

* band: ``|px − L| ≤ tape_band + 1e-9`` (inclusive); window ``[t − tape_window_s, t)``;
* ``tape_buy_vol`` / ``tape_sell_vol`` (int64 contracts): aggressive volume in band and window
  (side ``N`` ignored); ``tape_imbalance = (buy − sell)/(buy + sell)``, 0 when both are 0;
* ``tape_velocity`` = number of trades (all prices) in ``[t − velocity_window_s, t)`` ÷
  velocity_window_s (trades per second; the same for every level);
* sweeps, over the in-band trades with a known aggressor in ts_recv order: a run is a maximal
  sequence of same-side trades each at most ``sweep_max_gap_ms`` after the previous one (a gap
  of exactly the limit continues the run); it qualifies if it touches ≥ 2 distinct prices, its
  notional ``Σ price_es · size · es_multiplier ≥ sweep_min_notional`` ($), and its last trade is
  in the tape window. Its whole notional counts, tracing back at most ``sweep_lookback_s``
  before the window start (older trades are not part of any run). ``tape_sweep_detected``
  (bool), ``tape_sweep_direction`` (:data:`spymaster.vocab.SWEEP_DIRECTIONS` code: UP buy run,
  DOWN sell run, NONE) and ``tape_sweep_notional`` ($, float64) describe the largest qualifying
  run (the earliest on ties; 0 / NONE if none).

The notional is summed exactly in int64 (``Σ price·size`` in 1e-9 ES point-contracts) and scaled
once, so an exact-boundary run compares exactly.
"""

from __future__ import annotations

import numba
import numpy as np

from spymaster.config import Config
from spymaster.events import PRICE_SCALE
from spymaster.state.trades import TradeTape
from spymaster.vocab import S_DOWN, S_NONE, S_UP

NS = 1_000_000_000
PRICE_TOL = 1e-9  # SPY $ (SPEC §2 conventions)

FEATURES = ("tape_imbalance", "tape_buy_vol", "tape_sell_vol", "tape_velocity", "tape_sweep_detected",
            "tape_sweep_direction", "tape_sweep_notional")


@numba.njit(cache=True, nogil=True)
def _tape_kernel(ts, price, size, side, levels, t, win_ns, vel_ns, vel_s, look_ns, gap_ns,
                 band, ratio, min_notional, mult,
                 o_imb, o_buy, o_sell, o_vel, o_det, o_dir, o_not):
    i_t = np.searchsorted(ts, t, side="left")
    i_w = np.searchsorted(ts, t - win_ns, side="left")
    i_v = np.searchsorted(ts, t - vel_ns, side="left")
    i_lb = np.searchsorted(ts, t - win_ns - look_ns, side="left")
    velocity = float(i_t - i_v) / vel_s
    scale = 1.0 / (float(PRICE_SCALE) * ratio)
    lim = band + PRICE_TOL
    unit = float(PRICE_SCALE)
    for li in range(levels.shape[0]):
        lv = levels[li]
        buy = np.int64(0)
        sell = np.int64(0)
        best = 0.0
        best_dir = S_NONE
        found = False
        # current run
        r_side = 0
        r_last = np.int64(0)
        r_sum = np.int64(0)
        r_min = np.int64(0)
        r_max = np.int64(0)
        started = False
        for j in range(i_w, i_t):
            s = side[j]
            if abs(float(price[j]) * scale - lv) > lim:
                continue
            if s > 0:
                buy += size[j]
            elif s < 0:
                sell += size[j]
            else:
                continue
            if not started:
                # the first in-band trade of the window: trace its run back before the window
                started = True
                r_side = s
                r_last = ts[j]
                r_sum = price[j] * size[j]
                r_min = price[j]
                r_max = price[j]
                cur = ts[j]
                k = i_w - 1
                while k >= i_lb:
                    if ts[k] < cur - gap_ns:
                        break
                    sk = side[k]
                    if sk != 0 and abs(float(price[k]) * scale - lv) <= lim:
                        if sk != s:
                            break
                        r_sum += price[k] * size[k]
                        if price[k] < r_min:
                            r_min = price[k]
                        if price[k] > r_max:
                            r_max = price[k]
                        cur = ts[k]
                    k -= 1
                continue
            if s == r_side and ts[j] - r_last <= gap_ns:
                r_sum += price[j] * size[j]
                if price[j] < r_min:
                    r_min = price[j]
                if price[j] > r_max:
                    r_max = price[j]
                r_last = ts[j]
                continue
            # the run ends: its last trade is in the window
            if r_max != r_min:
                notional = (float(r_sum) / unit) * mult
                if notional >= min_notional and notional > best:
                    best = notional
                    best_dir = S_UP if r_side > 0 else S_DOWN
                    found = True
            r_side = s
            r_last = ts[j]
            r_sum = price[j] * size[j]
            r_min = price[j]
            r_max = price[j]
        if started and r_max != r_min:
            notional = (float(r_sum) / unit) * mult
            if notional >= min_notional and notional > best:
                best = notional
                best_dir = S_UP if r_side > 0 else S_DOWN
                found = True
        tot = buy + sell
        o_buy[li] = buy
        o_sell[li] = sell
        o_imb[li] = float(buy - sell) / float(tot) if tot > 0 else 0.0
        o_vel[li] = velocity
        o_det[li] = found
        o_dir[li] = best_dir
        o_not[li] = best if found else 0.0


class TapeEngine:
    """Tape features at a decision time (SPEC §7); stateless apart from its config."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        tp = cfg.tape
        self.win_ns = int(round(tp.tape_window_s * NS))
        self.vel_ns = int(round(tp.velocity_window_s * NS))
        self.look_ns = int(round(tp.sweep_lookback_s * NS))
        self.gap_ns = int(round(tp.sweep_max_gap_ms * 1_000_000))

    def features(self, tape: TradeTape, levels_axis: np.ndarray, t: int) -> dict[str, np.ndarray]:
        """Tape features of each level (SPY $) at ``t`` (ns); arrays aligned with ``levels_axis``.

        Reads only trades with ts_recv < t. Raises
        :class:`~spymaster.state.ringbuffer.RetentionError` if the sweep lookback reaches before
        what the tape still guarantees.
        """
        t = int(t)
        levels = np.ascontiguousarray(levels_axis, dtype=np.float64)
        n = levels.shape[0]
        tape.buf.check_from(t - self.win_ns - self.look_ns)
        tape.buf.check_from(t - self.vel_ns)
        r = tape.live()
        tp = self.cfg.tape
        out = {
            "tape_imbalance": np.empty(n, np.float64),
            "tape_buy_vol": np.empty(n, np.int64),
            "tape_sell_vol": np.empty(n, np.int64),
            "tape_velocity": np.empty(n, np.float64),
            "tape_sweep_detected": np.empty(n, np.bool_),
            "tape_sweep_direction": np.empty(n, np.int8),
            "tape_sweep_notional": np.empty(n, np.float64),
        }
        _tape_kernel(r["ts"], r["price"], r["size"], r["side"], levels, t, self.win_ns, self.vel_ns,
                     float(tp.velocity_window_s), self.look_ns, self.gap_ns, float(tp.tape_band),
                     float(self.cfg.instrument.es_spy_ratio), float(tp.sweep_min_notional),
                     float(self.cfg.instrument.es_multiplier),
                     out["tape_imbalance"], out["tape_buy_vol"], out["tape_sell_vol"], out["tape_velocity"],
                     out["tape_sweep_detected"], out["tape_sweep_direction"], out["tape_sweep_notional"])
        return out
