"""Scores, signal and confidence (SPEC §9), vectorized over the monitored levels of a bar close.

Inputs are the barrier / tape / fuel feature arrays of the same levels; everything here is per
bar close (a handful of levels), so plain numpy suffices. ``ScoreSmoother`` keeps the EWMA of
``break_score_raw`` per level_id over that level's monitored bar closes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spymaster.config import ScoreConfig
from spymaster.vocab import B_ABSORPTION, B_CONSUMED, B_NEUTRAL, B_VACUUM, B_WALL, B_WEAK, S_DOWN, S_UP

EPS = 1e-9  # thresholds are inclusive with the SPEC's 1e-9 tolerance (scores are float sums)


def liquidity_scores(barrier_state: np.ndarray, cfg: ScoreConfig) -> np.ndarray:
    """S_L from the barrier state code: VACUUM 100, CONSUMED 75, WEAK 65, NEUTRAL 50, ABSORPTION 25, WALL 0."""
    table = np.zeros(6, np.float64)
    table[B_VACUUM], table[B_CONSUMED], table[B_WEAK] = cfg.score_vacuum, cfg.score_consumed, cfg.score_weak
    table[B_NEUTRAL], table[B_ABSORPTION], table[B_WALL] = cfg.score_neutral, cfg.score_absorption, cfg.score_wall
    return table[np.asarray(barrier_state, np.int64)]


def hedge_scores(gamma_exposure: np.ndarray, cfg: ScoreConfig) -> np.ndarray:
    """S_H = 50 − 50·tanh(gamma_exposure / hedge_scale)."""
    return 50.0 - 50.0 * np.tanh(np.asarray(gamma_exposure, np.float64) / cfg.hedge_scale)


def tape_scores(direction: np.ndarray, imbalance: np.ndarray, sweep_dir: np.ndarray) -> np.ndarray:
    """S_T = clip(50 + 25·d·imbalance + 25·d·sweep_sign, 0, 100); sweep_sign +1 UP / −1 DOWN / 0."""
    d = np.asarray(direction, np.float64)
    sweep = np.where(sweep_dir == S_UP, 1.0, np.where(sweep_dir == S_DOWN, -1.0, 0.0))
    return np.clip(50.0 + 25.0 * d * np.asarray(imbalance, np.float64) + 25.0 * d * sweep, 0.0, 100.0)


def break_scores(s_l: np.ndarray, s_h: np.ndarray, s_t: np.ndarray, cfg: ScoreConfig) -> np.ndarray:
    """break_score_raw = w_L·S_L + w_H·S_H + w_T·S_T (0.45 / 0.35 / 0.20)."""
    return cfg.w_liquidity * s_l + cfg.w_hedge * s_h + cfg.w_tape * s_t


def signal(smooth: float, s_l: float, s_h: float, s_t: float, cfg: ScoreConfig) -> str:
    if smooth >= cfg.break_threshold - EPS:
        return "BREAK"
    if smooth <= cfg.reject_threshold + EPS:
        return "REJECT"
    if max(s_l, s_h, s_t) >= cfg.contested_high - EPS and min(s_l, s_h, s_t) <= cfg.contested_low + EPS:
        return "CONTESTED"
    return "NEUTRAL"


def confidence(churn: float, tape_volume: float, option_volume: float, cfg: ScoreConfig) -> str:
    """c = mean(min(1, churn/2000), min(1, (buy+sell)/2000), min(1, near-level 0DTE volume/1000))."""
    c = (min(1.0, churn / cfg.confidence_churn_norm) + min(1.0, tape_volume / cfg.confidence_tape_norm)
         + min(1.0, option_volume / cfg.confidence_option_norm)) / 3.0
    if c >= cfg.confidence_high - EPS:
        return "HIGH"
    if c >= cfg.confidence_medium - EPS:
        return "MEDIUM"
    return "LOW"


@dataclass
class _Ewma:
    ts_ns: int
    value: float


class ScoreSmoother:
    """EWMA of break_score_raw per level_id: α = 1 − exp(−Δt/τ), first value initializes."""

    def __init__(self, tau_s: float) -> None:
        self.tau_ns = tau_s * 1e9
        self.state: dict[str, _Ewma] = {}

    def update(self, level_id: str, ts_ns: int, raw: float) -> float:
        prev = self.state.get(level_id)
        if prev is None:
            value = raw
        else:
            alpha = 1.0 - math.exp(-(ts_ns - prev.ts_ns) / self.tau_ns)
            value = prev.value + alpha * (raw - prev.value)
        self.state[level_id] = _Ewma(ts_ns, value)
        return value
