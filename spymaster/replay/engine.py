"""The replay engine: merged event batches in → bar closes, touches and labels out.

One code path for historical replay, live feeds and the debugger: they differ only in how
batches are produced. :meth:`ReplayEngine.feed` splits a batch at *stops* — the first event at
or after the next whole minute (bar closes, level snapshots) and the first event after the
earliest pending label horizon — and hands each run of events between stops to every
component's numba kernel. All stop work happens *before* the event that triggers it is
applied, so at a decision time t every applied event has ``ts_recv < t``. Because stops
depend only on event timestamps, the output is identical whatever the batch size.

Stop work, at the first event with ts_recv = T:
1. bars: 2-min bars ending at the 1-min bar's end, then the 1-min bar [t − 60 s, t) (touch
   detection at t, features for the monitored levels, scores, new touch rows with pending
   labels), then 2-min bars ending later but ≤ T;
2. labels whose horizon ended before T resolve (complete);
3. on entering a new minute B = floor(T): snapshot the levels testable on a bar starting at B.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from spymaster.calendar import MINUTE_NS, Session
from spymaster.config import Config
from spymaster.engines.barrier import BarrierEngine
from spymaster.engines.fuel import FuelEngine
from spymaster.engines.tape import TapeEngine
from spymaster.events import KIND_NAMES, EventBatch
from spymaster.levels.options import OptionLevelSource
from spymaster.levels.universe import LevelUniverse
from spymaster.logs import get_logger
from spymaster.state.bars import Bar
from spymaster.state.market import MarketState
from spymaster.levels.technical import VwapTracker
from spymaster.touches.detect import TouchDetector
from spymaster.touches.features import FeatureBuilder
from spymaster.touches.labels import Label, LabelBook

log = get_logger("replay.engine")


@dataclass
class EngineStats:
    events: dict[str, int] = field(default_factory=dict)
    bars: int = 0
    touches: int = 0
    labels_complete: int = 0
    labels_incomplete: int = 0
    first_ts: int | None = None
    last_ts: int | None = None


class ReplayEngine:
    """State, levels, engines and touches of one session, fed by :class:`EventBatch` es.

    ``on_row`` (optional) receives each touch row (a dict keyed by Gold column) once its label
    has resolved — the live sink; rows are also kept in :attr:`rows` unless ``keep_rows=False``.
    ``on_bar`` / ``on_touch`` are hooks for the debugger (called with the bar / the pending row).
    """

    def __init__(self, config: Config, session: Session, *, on_row: Callable[[dict], None] | None = None,
                 keep_rows: bool = True, on_bar: Callable[[Bar], None] | None = None,
                 on_touch: Callable[[dict], None] | None = None) -> None:
        self.cfg = config
        self.session = session
        ratio = config.instrument.es_spy_ratio
        self.market = MarketState(config)
        self.tape, self.book = self.market.tape, self.market.book
        self.bars1, self.bars2 = self.market.bars1, self.market.bars2
        self.fuel = FuelEngine(config, session)
        self.vwap = VwapTracker(session, ratio)
        self.labels = LabelBook(config.labels.label_horizon_s, config.labels.label_threshold, ratio)
        self.components = (*self.market.components, self.fuel, self.vwap, self.labels)
        self.detector = TouchDetector(config, session)
        self.option_levels = OptionLevelSource(self.fuel)
        self.levels = LevelUniverse(config, session, self.vwap, self.option_levels, wanted=self.detector.in_window)
        self.features = FeatureBuilder(config, session, self.tape, self.book, self.fuel, self.vwap, self.levels,
                                       BarrierEngine(config), TapeEngine(config), self.option_levels)
        self.on_row, self.keep_rows, self.on_bar, self.on_touch = on_row, keep_rows, on_bar, on_touch
        self.rows: list[dict] = []
        self._pending: dict[int, dict] = {}
        self._next_key = 0
        self.next_boundary: int | None = None
        self.stats = EngineStats()
        self._counts = np.zeros(8, np.int64)
        self.finished = False

    # ------------------------------------------------------------------ feeding
    def feed(self, batch: EventBatch) -> None:
        """Apply a batch of merged events (any size, ts_recv non-decreasing across calls)."""
        n = len(batch)
        if n == 0:
            return
        if self.finished:
            raise RuntimeError("engine already finished")
        ts = batch.ts
        self._counts += np.bincount(batch.kind, minlength=8)[:8]
        if self.stats.first_ts is None:
            self.stats.first_ts = int(ts[0])
        i = 0
        while i < n:
            j = n
            if self.next_boundary is None:
                j = i
            else:
                j = i + int(np.searchsorted(ts[i:], self.next_boundary, side="left"))
                deadline = self.labels.next_deadline()
                if deadline is not None:
                    j = min(j, i + int(np.searchsorted(ts[i:], deadline, side="right")))
            if j > i:
                for c in self.components:
                    c.apply(batch, i, j)
                self.option_levels.invalidate()
                i = j
            if i < n:
                # after a stop the next boundary lies beyond ts[i] and every remaining label
                # horizon is >= ts[i], so the next round applies at least event i
                self._stop(int(ts[i]))
        self.stats.last_ts = int(ts[-1])

    def settle(self, ts_ns: int) -> None:
        """Do now the stop work (bar closes, label resolutions, level snapshot) that the next event
        will do before it is applied, knowing that event has ``ts_recv >= ts_ns``.

        The debugger's "event time has reached ``ts_ns``": afterwards every applied event has
        ts_recv < ts_ns and the bars ending at or before ``ts_ns`` are closed. Only call it when
        such an event exists (the data continues): feeding that event afterwards then gives the
        same state and rows as feeding it without this call. Replay never calls it.
        """
        if self.finished:
            raise RuntimeError("engine already finished")
        if self.next_boundary is None:
            return  # nothing applied yet: the first event does the first stop
        deadline = self.labels.next_deadline()
        if ts_ns >= self.next_boundary or (deadline is not None and ts_ns > deadline):
            self._stop(int(ts_ns))

    def advance_clock(self, ts_ns: int) -> None:
        """Live mode: a heartbeat or timer says event time has reached ``ts_ns`` (no data)."""
        self.feed(EventBatch.clock(ts_ns))

    def finish(self) -> list[dict]:
        """End of data: close the last open bar, resolve remaining labels incomplete; return all rows."""
        if self.finished:
            return self.rows
        for bar2 in self.bars2.close_through(self.next_boundary or 0):
            self.levels.on_bar2(bar2)
        for bar in self.bars1.flush():
            self._bar_close(bar)
        for bar2 in self.bars2.flush():
            self.levels.on_bar2(bar2)
        self._resolve(self.labels.resolve(None))
        self.finished = True
        self.stats.events = {KIND_NAMES[k]: int(v) for k, v in enumerate(self._counts.tolist()) if k in KIND_NAMES and v}
        return self.rows

    # ------------------------------------------------------------------ stops
    def _stop(self, t_next: int) -> None:
        if self.next_boundary is None or t_next >= self.next_boundary:
            if self.next_boundary is not None:
                self._close_bars(t_next)
            minute = t_next - t_next % MINUTE_NS
            self.levels.snapshot(minute)
            self.next_boundary = minute + MINUTE_NS
        self._resolve(self.labels.resolve(t_next))

    def _close_bars(self, t_next: int) -> None:
        bar_end = self.next_boundary
        for bar2 in self.bars2.close_through(bar_end):
            self.levels.on_bar2(bar2)
        for bar in self.bars1.close_through(bar_end):
            self._bar_close(bar)
        for bar2 in self.bars2.close_through(t_next):
            self.levels.on_bar2(bar2)

    def _bar_close(self, bar: Bar) -> None:
        self.stats.bars += 1
        snapshot = self.levels.testable_on(bar.start_ns)
        self.levels.on_bar1(bar)
        if self.on_bar is not None:
            self.on_bar(bar)
        if snapshot is None or not self.detector.in_window(bar.start_ns):
            self.detector.skip(bar)
            return
        watches = self.detector.detect(bar, snapshot)
        rows = self.features.rows(bar, snapshot, watches)
        for row in rows:
            key = self._next_key
            self._next_key += 1
            self._pending[key] = row
            self.labels.add(key, row["ts_event_ns"], row["level_price"], 1 if row["direction"] == "UP" else -1, row["spot"])
            self.stats.touches += 1
            if self.on_touch is not None:
                self.on_touch(row)

    def _resolve(self, labels: list[Label]) -> None:
        for lab in labels:
            row = self._pending.pop(lab.key)
            row["outcome"] = lab.outcome
            row["future_price_5min"] = lab.future_price_5min
            row["excursion_max"] = lab.excursion_max
            row["excursion_min"] = lab.excursion_min
            row["label_complete"] = lab.label_complete
            if lab.label_complete:
                self.stats.labels_complete += 1
            else:
                self.stats.labels_incomplete += 1
            if self.keep_rows:
                self.rows.append(row)
            if self.on_row is not None:
                self.on_row(row)

    @property
    def pending_rows(self) -> list[dict]:
        """Touch rows whose labels have not resolved yet (debugger / live introspection)."""
        return list(self._pending.values())
