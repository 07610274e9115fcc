"""Runway (SPEC §9): room to the next strong level in the expected direction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spymaster.config import RunwayConfig
from spymaster.levels.base import LevelSet
from spymaster.vocab import UP

EPS = 1e-9


@dataclass(frozen=True)
class Runway:
    direction: str                 # "UP" / "DOWN"
    next_level_price: float | None
    distance: float | None
    quality: str                   # "CLEAR" / "OBSTRUCTED"


def runway(level_price: float, touch_direction: int, signal: str, testable: LevelSet, cfg: RunwayConfig) -> Runway:
    """The touch direction if the signal is BREAK / NEUTRAL / CONTESTED, the opposite if REJECT;
    the nearest testable strong level at least ``runway_min_beyond`` beyond L that way; OBSTRUCTED if a
    testable STRIKE lies strictly between L and it or it is closer than ``runway_obstructed_distance``."""
    d = -touch_direction if signal == "REJECT" else touch_direction
    prices = testable.prices
    beyond = prices[testable.strong & (d * (prices - level_price) >= cfg.runway_min_beyond - EPS)]
    name = "UP" if d == UP else "DOWN"
    if beyond.size == 0:
        return Runway(name, None, None, "CLEAR")
    gaps = np.abs(beyond - level_price)
    nxt = float(beyond[np.lexsort((beyond, gaps))[0]])   # nearest; the lower price on ties
    dist = abs(nxt - level_price)
    lo, hi = min(level_price, nxt), max(level_price, nxt)
    strikes = prices[testable.strike]
    blocked = bool(np.any((strikes > lo + EPS) & (strikes < hi - EPS)))
    quality = "OBSTRUCTED" if blocked or dist < cfg.runway_obstructed_distance - EPS else "CLEAR"
    return Runway(name, nxt, dist, quality)
