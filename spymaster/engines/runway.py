"""Runway (SPEC §9): room to the next strong level in the expected direction."""

from __future__ import annotations

from dataclasses import dataclass

from spymaster.config import RunwayConfig
from spymaster.levels.base import LevelSet
from spymaster.vocab import UP, WEAK_RUNWAY_KINDS

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
    beyond = [lv.price for lv in testable.levels if lv.kind not in WEAK_RUNWAY_KINDS
              and d * (lv.price - level_price) >= cfg.runway_min_beyond - EPS]
    name = "UP" if d == UP else "DOWN"
    if not beyond:
        return Runway(name, None, None, "CLEAR")
    nxt = min(beyond, key=lambda p: (abs(p - level_price), p))
    dist = abs(nxt - level_price)
    lo, hi = min(level_price, nxt), max(level_price, nxt)
    blocked = any(lv.kind == "STRIKE" and lo + EPS < lv.price < hi - EPS for lv in testable.levels)
    quality = "OBSTRUCTED" if blocked or dist < cfg.runway_obstructed_distance - EPS else "CLEAR"
    return Runway(name, nxt, dist, quality)
