"""Touch detection at each 1-min bar close (SPEC §6) and the monitored set (SPEC §9).

For the bar just closed and every level testable on it (value L as of the bar's start):
touched iff ``low − touch_band ≤ L ≤ high + touch_band``; direction UP if the bar opened below
L, DOWN if above; if it opened at L, the previous existing bar's close decides (equal again, or
no previous bar → no touch). Re-arm ``entry``: a level_id emits only if it was not touched on
the previous bar of the detection window. The monitored set adds every testable level within
``monitor_band`` of the close (direction UP if the close is below L, DOWN if above).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spymaster.calendar import Session
from spymaster.config import Config
from spymaster.levels.base import Level, LevelSet
from spymaster.state.bars import Bar
from spymaster.vocab import DOWN, UP

EPS = 1e-9


@dataclass(frozen=True)
class Watch:
    """A level looked at on this bar: its direction, and whether it is an emitted touch."""

    level: Level
    direction: int
    touched: bool
    emit: bool


class TouchDetector:
    """Stateful across bars: previous bar close (direction rule) and previous touched set (re-arm)."""

    def __init__(self, config: Config, session: Session) -> None:
        self.cfg = config.touch
        self.session = session
        self.window = config.session.detection_window
        self.prev_close: float | None = None
        self.prev_touched: set[str] | None = None  # None: no previous bar in the window yet

    def in_window(self, bar_start_ns: int) -> bool:
        if self.window == "session":
            return True
        return self.session.rth_open_ns <= bar_start_ns < self.session.rth_close_ns

    def skip(self, bar: Bar) -> None:
        """A bar outside the detection window (or without testable levels): remember its close."""
        self.prev_close = bar.close

    def detect(self, bar: Bar, levels: LevelSet) -> list[Watch]:
        """Touched and monitored levels of this bar, ordered by level_id."""
        band = self.cfg.touch_band
        prices = levels.prices
        o, lo, hi, c = bar.open, bar.low, bar.high, bar.close
        touched = (prices >= lo - band - EPS) & (prices <= hi + band + EPS)
        gap = np.abs(prices - c)
        near = (gap <= self.cfg.monitor_band + EPS) & (gap > EPS)
        out: list[Watch] = []
        now_touched: set[str] = set()
        for k in np.flatnonzero(touched | near).tolist():
            lv = levels.levels[k]
            d = 0
            if touched[k]:
                now_touched.add(lv.level_id)
                d = self._direction(o, lv.price)
            if d != 0:
                emit = (self.cfg.touch_rearm == "every_bar" or self.prev_touched is None
                        or lv.level_id not in self.prev_touched)
                out.append(Watch(lv, d, True, emit))
            elif near[k]:
                out.append(Watch(lv, UP if c < lv.price else DOWN, False, False))
        self.prev_touched = now_touched
        self.prev_close = c
        return out

    def _direction(self, bar_open: float, level: float) -> int:
        if bar_open < level - EPS:
            return UP
        if bar_open > level + EPS:
            return DOWN
        pc = self.prev_close
        if pc is None or abs(pc - level) <= EPS:
            return 0
        return UP if pc < level else DOWN


def monitored_arrays(watches: list[Watch]) -> tuple[np.ndarray, np.ndarray]:
    """(level prices $, directions ±1) of the watched levels, for the feature kernels."""
    return (np.array([w.level.price for w in watches], np.float64),
            np.array([w.direction for w in watches], np.int8))
