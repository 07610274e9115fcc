"""Features of the watched levels at a bar close, and the Gold rows of the emitted touches.

At decision time t (the bar's end) every applied event has ts_recv < t. The barrier, tape and
fuel engines are queried once per bar close, vectorized over the watched levels (touched or
monitored); scores and their EWMA are updated for every watched level; rows are built for the
emitted touches only (SPEC §6–§9, §11). Labels are filled in later by the label queue.
"""

from __future__ import annotations

import numpy as np

from spymaster.calendar import Session
from spymaster.config import Config
from spymaster.engines import score as sc
from spymaster.engines.runway import runway
from spymaster.levels.base import LevelSet
from spymaster.levels.options import option_levels_now
from spymaster.state.bars import Bar
from spymaster.state.market import PriceAxis
from spymaster.touches.detect import Watch, monitored_arrays
from spymaster.vocab import BARRIER_STATES, FUEL_EFFECTS, S_NONE, SWEEP_DIRECTIONS, UP


class FeatureBuilder:
    """Queries the engines for the watched levels of a bar close and assembles touch rows."""

    def __init__(self, config: Config, session: Session, tape, book, fuel, vwap, levels, barrier_engine,
                 tape_engine, option_source) -> None:
        self.cfg = config
        self.session = session
        self.tape, self.book, self.fuel, self.vwap, self.levels = tape, book, fuel, vwap, levels
        self.barrier_engine, self.tape_engine = barrier_engine, tape_engine
        self.option_source = option_source
        self.smoother = sc.ScoreSmoother(config.score.score_tau_s)
        self.axis = PriceAxis(config.instrument.es_spy_ratio)
        self.date = session.iso
        self.symbol = config.instrument.option_root

    def rows(self, bar: Bar, snapshot: LevelSet, watches: list[Watch]) -> list[dict]:
        if not watches:
            return []
        t = bar.end_ns
        prices, dirs = monitored_arrays(watches)
        levels_es = self.axis.to_es_nanos(prices)
        bf = self.barrier_engine.features(self.book, levels_es, dirs, t)
        tf = self.tape_engine.features(self.tape, prices, t)
        ff = self.fuel.features(prices, t)
        vol_near = self.fuel.volume_near(prices, self.cfg.score.confidence_strike_band)
        scfg = self.cfg.score
        s_l = sc.liquidity_scores(bf["barrier_state"], scfg)
        s_h = sc.hedge_scores(ff["gamma_exposure"], scfg)
        s_t = sc.tape_scores(dirs, tf["tape_imbalance"], tf["tape_sweep_direction"])
        raw = sc.break_scores(s_l, s_h, s_t, scfg)
        smooth = np.array([self.smoother.update(w.level.level_id, t, float(raw[k])) for k, w in enumerate(watches)])
        emitted = [k for k, w in enumerate(watches) if w.emit]
        if not emitted:
            return []
        ctx = self._context(bar, t)
        walls = option_levels_now(self.option_source, t)
        out = []
        for k in emitted:
            w = watches[k]
            lv = w.level
            sig = sc.signal(float(smooth[k]), float(s_l[k]), float(s_h[k]), float(s_t[k]), scfg)
            rw = runway(lv.price, w.direction, sig, snapshot, self.cfg.runway)
            sweep = int(tf["tape_sweep_direction"][k])
            row = {
                "event_id": f"{self.date}_{lv.level_id}_{t}", "ts_event_ns": t, "date": self.date,
                "symbol": self.symbol,
                "level_price": lv.price, "level_kind": lv.kind, "level_id": lv.level_id,
                "direction": "UP" if w.direction == UP else "DOWN", "distance": abs(bar.close - lv.price),
                **ctx,
                "barrier_state": BARRIER_STATES[int(bf["barrier_state"][k])],
                "barrier_delta_liq": float(bf["barrier_delta_liq"][k]),
                "barrier_replenishment_ratio": float(bf["barrier_replenishment_ratio"][k]),
                "barrier_added": int(bf["barrier_added"][k]), "barrier_canceled": int(bf["barrier_canceled"][k]),
                "barrier_filled": int(bf["barrier_filled"][k]), "wall_ratio": float(bf["wall_ratio"][k]),
                "depth_in_zone": int(bf["depth_in_zone"][k]), "churn": float(bf["churn"][k]),
                "tape_imbalance": float(tf["tape_imbalance"][k]), "tape_buy_vol": int(tf["tape_buy_vol"][k]),
                "tape_sell_vol": int(tf["tape_sell_vol"][k]), "tape_velocity": float(tf["tape_velocity"][k]),
                "tape_sweep_detected": bool(sweep != S_NONE), "tape_sweep_direction": SWEEP_DIRECTIONS[sweep],
                "tape_sweep_notional": float(tf["tape_sweep_notional"][k]),
                "gamma_exposure": float(ff["gamma_exposure"][k]), "fuel_effect": FUEL_EFFECTS[int(ff["fuel_effect"][k])],
                "fuel_net_dealer_gamma": float(ff["gamma_exposure"][k]),
                "fuel_call_wall": walls.get("CALL_WALL"), "fuel_put_wall": walls.get("PUT_WALL"),
                "fuel_hvl": walls.get("GAMMA_FLIP"),
                "fuel_call_gamma": float(ff["fuel_call_gamma"][k]), "fuel_put_gamma": float(ff["fuel_put_gamma"][k]),
                "break_score_raw": float(raw[k]), "break_score_smooth": float(smooth[k]),
                "liquidity_score": float(s_l[k]), "hedge_score": float(s_h[k]), "tape_score": float(s_t[k]),
                "signal": sig,
                "confidence": sc.confidence(float(bf["churn"][k]),
                                            float(tf["tape_buy_vol"][k] + tf["tape_sell_vol"][k]),
                                            float(vol_near[k]), scfg),
                "runway_direction": rw.direction, "runway_next_level_price": rw.next_level_price,
                "runway_distance": rw.distance, "runway_quality": rw.quality,
                "outcome": None, "future_price_5min": None, "excursion_max": None, "excursion_min": None,
                "label_complete": None,
            }
            out.append(row)
        return out

    def _context(self, bar: Bar, t: int) -> dict:
        s = self.session
        spot = bar.close
        sma200 = self.levels.sma.value(200)
        sma400 = self.levels.sma.value(400)
        vwap = self.vwap.value()
        rng = self.levels.structural.rth_range() or (bar.low, bar.high)
        lo, hi = rng
        basis = self.fuel.basis
        return {
            "spot": spot,
            "basis": None if basis is None else float(basis),
            "is_first_15m": s.rth_open_ns <= bar.start_ns < s.first_end_ns,
            "is_opening_range": s.rth_open_ns <= bar.start_ns < s.or_end_ns,
            "dist_to_sma_200": None if sma200 is None else spot - sma200,
            "dist_to_sma_400": None if sma400 is None else spot - sma400,
            "dist_to_vwap": None if vwap is None else spot - vwap,
            "session_position": 0.5 if hi - lo <= 0 else (spot - lo) / (hi - lo),
        }
