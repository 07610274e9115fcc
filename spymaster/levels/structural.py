"""Structural levels from completed 1-min bars: PM_HIGH/LOW, OR_HIGH/LOW, SESSION_HIGH/LOW (SPEC §5).

Updated once per bar close (never by rescanning history); values are int64 1e-9 ES points
internally and SPY-axis $ when handed out.
"""

from __future__ import annotations

from spymaster.calendar import MINUTE_NS, Session
from spymaster.events import PRICE_SCALE
from spymaster.levels.base import Level
from spymaster.state.bars import Bar


class _Range:
    __slots__ = ("high", "low")

    def __init__(self) -> None:
        self.high: int | None = None
        self.low: int | None = None

    def add(self, bar: Bar) -> None:
        self.high = bar.high_es if self.high is None else max(self.high, bar.high_es)
        self.low = bar.low_es if self.low is None else min(self.low, bar.low_es)


class StructuralLevels:
    """Pre-market, opening-range and RTH session extremes of the session's completed bars."""

    def __init__(self, session: Session, ratio: float) -> None:
        self.session = session
        self.scale = PRICE_SCALE * ratio
        self.pm = _Range()
        self.opening = _Range()
        self.rth = _Range()

    def on_bar(self, bar: Bar) -> None:
        s = self.session
        if s.premarket_ns <= bar.start_ns < s.rth_open_ns:
            self.pm.add(bar)
        if s.rth_open_ns <= bar.start_ns < s.or_end_ns:
            self.opening.add(bar)
        if s.rth_open_ns <= bar.start_ns < s.rth_close_ns:
            self.rth.add(bar)

    def rth_range(self) -> tuple[float, float] | None:
        """(low, high) of the RTH bars so far, axis $ (None before the first RTH bar)."""
        if self.rth.high is None:
            return None
        return self.rth.low / self.scale, self.rth.high / self.scale

    def values(self, bar_start_ns: int) -> list[Level]:
        """Structural levels testable on the bar starting at ``bar_start_ns``."""
        s, out = self.session, []
        if bar_start_ns >= s.rth_open_ns and self.pm.high is not None:
            out += [Level.of("PM_HIGH", self.pm.high / self.scale), Level.of("PM_LOW", self.pm.low / self.scale)]
        if bar_start_ns >= s.or_end_ns and self.opening.high is not None:
            out += [Level.of("OR_HIGH", self.opening.high / self.scale), Level.of("OR_LOW", self.opening.low / self.scale)]
        if bar_start_ns >= s.rth_open_ns + MINUTE_NS and self.rth.high is not None:
            out += [Level.of("SESSION_HIGH", self.rth.high / self.scale),
                    Level.of("SESSION_LOW", self.rth.low / self.scale)]
        return out
