"""Scores, signal, confidence (SPEC §9)."""

from __future__ import annotations

import math

import numpy as np

from spymaster.config import Config
from spymaster.engines import score as sc
from spymaster.vocab import BARRIER_STATES, S_DOWN, S_NONE, S_UP

CFG = Config().score


def test_liquidity_score_per_barrier_state():
    codes = np.arange(len(BARRIER_STATES))
    got = dict(zip(BARRIER_STATES, sc.liquidity_scores(codes, CFG).tolist()))
    assert got == {"VACUUM": 100, "CONSUMED": 75, "WALL": 0, "ABSORPTION": 25, "WEAK": 65, "NEUTRAL": 50}


def test_hedge_score_is_50_minus_50_tanh_gamma_over_10000():
    g = np.array([0.0, 10_000.0, -20_000.0])
    assert np.allclose(sc.hedge_scores(g, CFG), 50 - 50 * np.tanh(g / 10_000))


def test_tape_score_clipped_and_signed_by_direction():
    s = sc.tape_scores(np.array([1, -1, 1]), np.array([1.0, 1.0, 0.2]), np.array([S_UP, S_UP, S_NONE]))
    assert s.tolist() == [100.0, 0.0, 55.0]
    assert sc.tape_scores(np.array([-1]), np.array([-0.4]), np.array([S_DOWN])).tolist() == [85.0]


def test_break_score_raw_weights():
    assert sc.break_scores(np.array([100.0]), np.array([50.0]), np.array([0.0]), CFG).tolist() == [0.45 * 100 + 0.35 * 50]


def test_signal_rules():
    assert sc.signal(65.0, 50, 50, 50, CFG) == "BREAK"
    assert sc.signal(35.0, 50, 50, 50, CFG) == "REJECT"
    assert sc.signal(50.0, 75, 50, 25, CFG) == "CONTESTED"
    assert sc.signal(50.0, 74.9, 50, 25, CFG) == "NEUTRAL"


def test_confidence_levels():
    assert sc.confidence(2000, 2000, 1000, CFG) == "HIGH"
    assert sc.confidence(2000, 400, 0, CFG) == "MEDIUM"      # (1 + 0.2 + 0)/3 = 0.4
    assert sc.confidence(0, 0, 1199, CFG) == "LOW"


def test_ewma_per_level_id_with_time_constant():
    sm = sc.ScoreSmoother(180.0)
    assert sm.update("A", 0, 80.0) == 80.0
    v = sm.update("A", 60 * 10**9, 20.0)
    alpha = 1 - math.exp(-60 / 180)
    assert abs(v - (80 + alpha * (20 - 80))) < 1e-12
    assert sm.update("B", 60 * 10**9, 10.0) == 10.0
