"""The level universe: every tracker, and the snapshot of levels testable on a bar (SPEC §5).

All level values are taken as of the bar's start B (state after every event with ts_recv < B):
the engine calls :meth:`LevelUniverse.snapshot` on entering each minute, before the minute's
first event is applied, and the bar starting at B (if a trade makes one) is tested against it.
"""

from __future__ import annotations

from typing import Callable

from spymaster.calendar import Session
from spymaster.config import Config
from spymaster.levels.base import LevelSet
from spymaster.levels.options import OptionLevelSource, option_levels
from spymaster.levels.round import round_levels
from spymaster.levels.structural import StructuralLevels
from spymaster.levels.technical import SmaLevels, VwapTracker
from spymaster.state.bars import Bar


class LevelUniverse:
    """Structural, technical, round and option-derived levels; snapshots per bar start."""

    def __init__(self, config: Config, session: Session, vwap: VwapTracker, option_source: OptionLevelSource,
                 wanted: Callable[[int], bool] = lambda _start: True) -> None:
        ratio = config.instrument.es_spy_ratio
        self.cfg = config
        self.structural = StructuralLevels(session, ratio)
        self.sma = SmaLevels(ratio)
        self.vwap = vwap
        self.option_source = option_source
        self.wanted = wanted
        self.prev_close: float | None = None   # close of the last completed 1-min bar (axis $)
        self._snap: LevelSet | None = None

    def on_bar1(self, bar: Bar) -> None:
        self.structural.on_bar(bar)
        self.prev_close = bar.close

    def on_bar2(self, bar: Bar) -> None:
        self.sma.on_bar(bar)

    def current(self, at_ns: int) -> LevelSet:
        """Every level as if a bar started at ``at_ns`` now (also used by the debugger)."""
        lv = self.cfg.levels
        levels = (self.structural.values(at_ns) + self.sma.values() + self.vwap.levels(at_ns)
                  + round_levels(self.prev_close, lv.round_step, lv.round_band) + option_levels(self.option_source, at_ns))
        return LevelSet(at_ns, levels)

    def snapshot(self, minute_ns: int) -> None:
        """Record the levels testable on a bar starting at ``minute_ns`` (only where touches are detected)."""
        self._snap = self.current(minute_ns) if self.wanted(minute_ns) else None

    def testable_on(self, bar_start_ns: int) -> LevelSet | None:
        s = self._snap
        return s if s is not None and s.at_ns == bar_start_ns else None
