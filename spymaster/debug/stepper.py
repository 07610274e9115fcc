"""The step-through controller: the replay engine driven one event, one slice or one stop at a time.

:class:`Stepper` owns a :class:`~spymaster.replay.engine.ReplayEngine` and a cursor over the
merged event stream of a date (the same :meth:`Pipeline.batches` replay uses). It only ever
*feeds* the engine slices of that stream — the engine's output does not depend on how the stream
is cut — and, to stop "at a time" T, calls :meth:`ReplayEngine.settle(T) <spymaster.replay.engine.ReplayEngine.settle>`,
which does the bar-close / label / snapshot work the next event (ts_recv ≥ T) would do before
being applied. So stepping never changes results: whatever the commands, :meth:`finish` gives
the table replay gives.

Moves
-----
* :meth:`step` ``n`` — apply exactly ``n`` events (breakpoints are not checked: it is a count).
* :meth:`until` ``t`` — run until event time reaches ``t`` (every event with ts_recv < t applied,
  bars ending at or before t closed), or an earlier breakpoint.
* :meth:`cont` — run to the next breakpoint or to the end of data.
* :meth:`next_touch` ``[kind]`` — run to the next bar close that emits a touch (of that level
  kind), or an earlier breakpoint.
* :meth:`finish` — run to the end ignoring breakpoints; the Gold table.

At the end of data the engine is finished as in replay (the last bar closes, pending labels
resolve with ``label_complete = false``).

Breakpoints (:meth:`add_break`): a time ``HH:MM[:SS[.fff]]`` (ET, see :func:`parse_et_time`), a
level kind (``ROUND``, ``PM_HIGH`` …: touches of that kind), a level_id (``ROUND@680.00``,
``STRIKE@681``: touches of that level) or ``touch`` (any touch). Touches can only be emitted at
1-min bar closes, which happen at the first event with ts_recv ≥ the next whole minute, so while
a touch breakpoint is set the stepper feeds one minute of events at a time and settles at the
minute boundary; otherwise it feeds whole batches up to the next time breakpoint.

Time ("now"): after a move that ends by applying an event with ts_recv L, the state is that of
decision time L + 1 ns (queries need every applied event strictly earlier); after a move that
stops at a time T (until, a time breakpoint, a bar close) it is T.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa

from spymaster.calendar import ET, MINUTE_NS, NS, Session, to_ns
from spymaster.config import Config
from spymaster.errors import SpymasterError
from spymaster.events import KIND_BOOK, KIND_OPTION, KIND_TRADE, EventBatch
from spymaster.levels.base import LevelSet
from spymaster.replay.engine import ReplayEngine
from spymaster.state.bars import Bar
from spymaster.touches.schema import table_from_rows
from spymaster.vocab import LEVEL_KINDS, PRICE_KEYED_KINDS, level_id


class DebugError(SpymasterError):
    """A debugger command that cannot be carried out (bad argument, moving past the end …)."""

    exit_code = 2


# ------------------------------------------------------------------------------------ time specs
_TIME_RE = re.compile(r"^(?:(\d{4}-\d{2}-\d{2})[ T])?(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$")
SESSION_END_HHMM = (17, 0)


def parse_et_time(text: str, session: Session) -> int:
    """``[YYYY-MM-DD ]HH:MM[:SS[.fffffffff]]`` (America/New_York) → int ns.

    Without a date, a time after 17:00:00 belongs to the calendar day before the session's date
    (the evening part of the Globex session, which opens 18:00 ET the day before), any other time
    to the session's date. The instant must lie in the session window (start, end].
    """
    m = _TIME_RE.match(text.strip())
    if not m:
        raise DebugError(f"not a time (want HH:MM[:SS[.fff]] ET, optionally after YYYY-MM-DD): {text!r}")
    day_s, hh, mm, ss, frac = m.groups()
    h, mi, s = int(hh), int(mm), int(ss or 0)
    if h > 23 or mi > 59 or s > 59:
        raise DebugError(f"not a time of day: {text!r}")
    sub_ns = int((frac or "0").ljust(9, "0"))
    if day_s is not None:
        try:
            day = dt.date.fromisoformat(day_s)
        except ValueError:
            raise DebugError(f"not a date: {day_s!r}") from None
    elif (h, mi, s, sub_ns) > (*SESSION_END_HHMM, 0, 0):
        day = session.date - dt.timedelta(days=1)
    else:
        day = session.date
    t = to_ns(dt.datetime(day.year, day.month, day.day, h, mi, s, tzinfo=ET)) + sub_ns
    if not session.contains(t):
        raise DebugError(f"{text!r} = {fmt_clock(t, session)} is outside the session of {session.iso} "
                         f"({fmt_clock(session.start_ns, session)}, {fmt_clock(session.end_ns, session)}]")
    return t


def fmt_clock(ts_ns: int, session: Session | None = None, *, digits: int = 9) -> str:
    """``HH:MM:SS.fffffffff ET`` (ns digits; fewer if asked), prefixed by the date when it is not the
    session's date."""
    sec, sub = divmod(int(ts_ns), NS)
    t = dt.datetime.fromtimestamp(sec, tz=dt.timezone.utc).astimezone(ET)
    s = t.strftime("%H:%M:%S")
    if digits > 0:
        s += "." + f"{sub:09d}"[:digits]
    if session is None or t.date() != session.date:
        s = t.strftime("%Y-%m-%d ") + s
    return s + " ET"


# ------------------------------------------------------------------------------------ breakpoints
@dataclass
class Breakpoint:
    """A stop condition. ``what``: ``time`` (``value`` = ts ns), ``kind`` (a level kind), ``level``
    (a level_id) or ``touch`` (any touch)."""

    number: int
    what: str
    value: object
    hits: int = 0

    def matches(self, row: dict) -> bool:
        if self.what == "touch":
            return True
        if self.what == "kind":
            return row["level_kind"] == self.value
        if self.what == "level":
            return row["level_id"] == self.value
        return False

    def describe(self, session: Session) -> str:
        if self.what == "time":
            return f"time {fmt_clock(int(self.value), session, digits=0)}"
        if self.what == "touch":
            return "any touch"
        return f"touch of {'kind' if self.what == 'kind' else 'level'} {self.value}"


def parse_break(spec: str, session: Session) -> tuple[str, object]:
    """``HH:MM[:SS]`` → time; a level kind → kind; ``KIND@PRICE`` → level_id; ``touch`` / ``any`` → any touch."""
    s = spec.strip()
    if not s:
        raise DebugError("break needs an argument: KIND | LEVEL_ID | HH:MM[:SS] | touch")
    if s.lower() in ("touch", "any"):
        return "touch", ""
    if ":" in s:
        return "time", parse_et_time(s, session)
    up = s.upper()
    if up in LEVEL_KINDS:
        return "kind", up
    if "@" in up:
        kind, _, price = up.partition("@")
        if kind not in PRICE_KEYED_KINDS:
            raise DebugError(f"{s!r}: only {', '.join(PRICE_KEYED_KINDS)} levels have a price in their id")
        try:
            return "level", level_id(kind, float(price))
        except ValueError:
            raise DebugError(f"{s!r}: not a price after '@'") from None
    raise DebugError(f"unknown breakpoint {s!r}: want a level kind ({', '.join(LEVEL_KINDS)}), "
                     "a level_id like ROUND@680.00, a time HH:MM[:SS] ET, or 'touch'")


# ------------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class EventView:
    """One event of the day's stream: its index (from 0), kind, ts_recv (ns) and, via :attr:`record`,
    its record (TRADE / BOOK / OPTION; None for a clock tick)."""

    index: int
    kind: int
    ts_ns: int
    batch: EventBatch = field(repr=False, compare=False)
    k: int = field(repr=False, compare=False)

    @property
    def record(self) -> np.void | None:
        p = int(self.batch.pos[self.k])
        if self.kind == KIND_TRADE:
            return self.batch.trades[p]
        if self.kind == KIND_BOOK:
            return self.batch.books[p]
        if self.kind == KIND_OPTION:
            return self.batch.options[p]
        return None


@dataclass
class Stop:
    """What a move did and why it stopped.

    ``reason``: ``step`` (the count was applied), ``time`` (until's time reached), ``breakpoint``,
    ``touch`` (next touch found), ``interrupted`` (:attr:`Stepper.interrupted` was set while
    running) or ``end`` (end of data; the engine is finished).
    """

    reason: str
    applied: int = 0
    bars: list[Bar] = field(default_factory=list)
    touches: list[dict] = field(default_factory=list)       # every touch emitted by the move
    matched: list[dict] = field(default_factory=list)       # the touches the move stopped at
    hit: list[Breakpoint] = field(default_factory=list)
    events: list[EventView] = field(default_factory=list)   # applied events (short steps only)
    at_end: bool = False


# ------------------------------------------------------------------------------------ stepper
class Stepper:
    """The debugger's controller over one session (see the module docstring).

    ``batches``: the merged stream (any chunking). ``contracts`` (optional): raw OCC symbols by
    dense contract index, for describing option events.
    """

    LIST_EVENTS_MAX = 50

    def __init__(self, config: Config, session: Session, batches: Iterable[EventBatch], *,
                 contracts: list[str] | None = None, es_symbol: str | None = None) -> None:
        self.cfg = config
        self.session = session
        self.contracts = contracts or []
        self.es_symbol = es_symbol
        self.engine = ReplayEngine(config, session, on_bar=self._on_bar, on_touch=self._on_touch)
        self._source: Iterator[EventBatch] = iter(batches)
        self._batch: EventBatch | None = None
        self._i = 0
        self._exhausted = False
        self.applied = 0                       # events applied so far
        self.last_ts: int | None = None        # ts_recv of the last applied event (ns)
        self.settled: int | None = None        # the latest time the engine was settled at (ns)
        self.last_event: EventView | None = None
        self.touches: list[dict] = []          # every emitted touch row (labels fill in when resolved)
        self.last_bar: Bar | None = None       # the last closed 1-min bar
        self.focus: dict | None = None         # the touch the last move stopped at (if it did)
        self.breakpoints: list[Breakpoint] = []
        self._bp_number = 0
        self._move_bars: list[Bar] = []
        self._move_touches: list[dict] = []
        self.table: pa.Table | None = None     # the Gold table, once finished
        self.interrupted = False               # set (e.g. by a SIGINT handler) to stop a running move

    @classmethod
    def open(cls, config: Config, date, *, lake: str | Path | None = None) -> "Stepper":
        """The stepper over ``date`` of the lake (``config.io.lake`` unless ``lake`` is given)."""
        from spymaster.calendar import parse_date
        from spymaster.pipeline import Pipeline
        from spymaster.sources.session import open_session

        pipe = Pipeline(config, lake=lake)
        inputs = open_session(pipe.lake, parse_date(date), config)
        return cls(config, inputs.session, Pipeline.batches(inputs), contracts=list(inputs.contracts.raw_symbols),
                   es_symbol=inputs.es.raw_symbol)

    # ---------------------------------------------------------------------------- hooks
    def _on_bar(self, bar: Bar) -> None:
        self.last_bar = bar
        self._move_bars.append(bar)

    def _on_touch(self, row: dict) -> None:
        self.touches.append(row)
        self._move_touches.append(row)

    # ---------------------------------------------------------------------------- position
    @property
    def finished(self) -> bool:
        return self.engine.finished

    @property
    def reached_ns(self) -> int | None:
        """Event time reached: every event before it is applied and its stop work done."""
        vals = [v for v in (self.last_ts, self.settled) if v is not None]
        return max(vals) if vals else None

    @property
    def now_ns(self) -> int | None:
        """The decision time of the state shown (ns): queries see exactly the applied events."""
        if self.last_ts is None:
            return self.settled
        if self.settled is not None and self.settled > self.last_ts:
            return self.settled
        return self.last_ts + 1

    def next_event(self) -> EventView | None:
        """The next event to be applied (None at the end of data)."""
        if not self._peek():
            return None
        return self._view(self._batch, self._i)

    def _peek(self) -> bool:
        """True if an unapplied event exists (pulls the next batch when the current one is used up)."""
        while self._batch is None or self._i >= len(self._batch):
            if self._exhausted:
                return False
            try:
                self._batch = next(self._source)
            except StopIteration:
                self._exhausted = True
                self._batch = None
                return False
            self._i = 0
        return True

    def _view(self, b: EventBatch, k: int) -> EventView:
        return EventView(self.applied - self._i + k, int(b.kind[k]), int(b.ts[k]), b, k)

    # ---------------------------------------------------------------------------- engine calls
    def _feed(self, b: EventBatch, lo: int, hi: int, listing: list[EventView] | None = None) -> None:
        if listing is not None:
            listing.extend(self._view(b, k) for k in range(lo, hi))
        self.engine.feed(b.slice(lo, hi))
        self.last_event = self._view(b, hi - 1)
        self.applied += hi - lo
        self._i = hi
        self.last_ts = int(b.ts[hi - 1])

    def _settle(self, t_ns: int) -> None:
        self.engine.settle(t_ns)
        self.settled = t_ns if self.settled is None else max(self.settled, t_ns)

    def _finish(self) -> None:
        if not self.engine.finished:
            self.engine.finish()
            self.table = table_from_rows(self.engine.rows)

    def _begin(self) -> None:
        if self.engine.finished:
            raise DebugError("end of data: the replay is finished (nothing left to run)")
        self._move_bars, self._move_touches = [], []
        self.interrupted = False

    def _result(self, reason: str, applied0: int, **kw) -> Stop:
        stop = Stop(reason, self.applied - applied0, list(self._move_bars), list(self._move_touches),
                    at_end=self.engine.finished, **kw)
        self.focus = stop.matched[-1] if stop.matched else None
        return stop

    # ---------------------------------------------------------------------------- moves
    def step(self, n: int = 1) -> Stop:
        """Apply exactly ``n`` events (fewer at the end of data); breakpoints are not checked."""
        if n < 1:
            raise DebugError(f"step count must be >= 1, not {n}")
        self._begin()
        a0 = self.applied
        listing: list[EventView] | None = [] if n <= self.LIST_EVENTS_MAX else None
        left = n
        while left > 0 and self._peek():
            b = self._batch
            hi = min(len(b), self._i + left)
            left -= hi - self._i
            self._feed(b, self._i, hi, listing)
        if not self._peek():
            self._finish()
            return self._result("end", a0, events=listing or [])
        return self._result("step", a0, events=listing or [])

    def until(self, t_ns: int) -> Stop:
        """Run until event time reaches ``t_ns`` (or an earlier breakpoint / the end of data)."""
        reached = self.reached_ns
        if reached is not None and t_ns <= reached:
            raise DebugError(f"already at {fmt_clock(reached, self.session)}: cannot go back to "
                             f"{fmt_clock(t_ns, self.session)}")
        self._begin()
        return self._run(t_ns, None)

    def cont(self) -> Stop:
        """Run to the next breakpoint or the end of data."""
        self._begin()
        return self._run(None, None)

    def next_touch(self, kind: str | None = None) -> Stop:
        """Run to the next bar close emitting a touch (of level ``kind``), or an earlier breakpoint."""
        if kind is not None:
            kind = kind.upper()
            if kind not in LEVEL_KINDS:
                raise DebugError(f"unknown level kind {kind!r} (one of {', '.join(LEVEL_KINDS)})")
        self._begin()
        return self._run(None, (lambda row: True) if kind is None else (lambda row: row["level_kind"] == kind))

    def finish(self) -> pa.Table:
        """Run to the end of data ignoring breakpoints; the Gold table (as replay writes it)."""
        if not self.engine.finished:
            self._begin()
            self.focus = None
            while self._peek():
                b = self._batch
                self._feed(b, self._i, len(b))
            self._finish()
        return self.table

    def _pending_times(self) -> list[int]:
        r = self.reached_ns
        return [int(bp.value) for bp in self.breakpoints if bp.what == "time" and (r is None or bp.value > r)]

    def _run(self, target: int | None, want: Callable[[dict], bool] | None) -> Stop:
        a0 = self.applied
        touch_bps = [bp for bp in self.breakpoints if bp.what != "time"]
        check_touches = want is not None or bool(touch_bps)
        times = self._pending_times() + ([target] if target is not None else [])
        t_stop = min(times) if times else None
        eng = self.engine
        while True:
            if self.interrupted:
                # only ever between slices: the engine has applied whole slices, its state is consistent
                self.interrupted = False
                return self._result("interrupted", a0)
            if not self._peek():
                n0 = len(self._move_touches)
                self._finish()
                matched, hit = self._match(self._move_touches[n0:], want, touch_bps)
                return self._result("breakpoint" if hit else ("touch" if matched else "end"), a0,
                                    matched=matched, hit=hit)
            b, i = self._batch, self._i
            ts = b.ts
            j = len(b)
            if t_stop is not None:
                j = min(j, i + int(np.searchsorted(ts[i:], t_stop, side="left")))
            if check_touches:
                # a touch is only ever emitted by a bar close inside the detection window, which
                # happens at the first event at or after a minute boundary: feed up to the next
                # such boundary, then settle there (below) and look at what it emitted
                nb = eng.next_boundary
                if nb is None:
                    j = min(j, i + 1)
                else:
                    tb = self._touch_boundary(nb)
                    if tb is not None:
                        j = min(j, i + int(np.searchsorted(ts[i:], tb, side="left")))
            if j > i:
                self._feed(b, i, j)
            if not self._peek():
                continue
            t_next = int(self._batch.ts[self._i])
            if t_stop is not None and t_next >= t_stop:
                n0 = len(self._move_touches)
                self._settle(t_stop)
                matched, hit = self._match(self._move_touches[n0:], want, touch_bps) if check_touches else ([], [])
                for bp in self.breakpoints:
                    if bp.what == "time" and bp.value == t_stop:
                        bp.hits += 1
                        hit.append(bp)
                reason = "breakpoint" if hit else ("touch" if matched else "time")
                return self._result(reason, a0, matched=matched, hit=hit)
            nb = eng.next_boundary
            if check_touches and nb is not None and t_next >= nb:
                n0 = len(self._move_touches)
                self._settle(nb)
                matched, hit = self._match(self._move_touches[n0:], want, touch_bps)
                if matched:
                    return self._result("breakpoint" if hit else "touch", a0, matched=matched, hit=hit)

    def _touch_boundary(self, nb: int) -> int | None:
        """The first minute boundary ≥ ``nb`` (the engine's next one) whose bar close can emit
        touches — the bar ending there starts in the detection window; None if no later one can."""
        det = self.engine.detector
        if det.in_window(nb - MINUTE_NS):
            return nb
        s = self.session
        if nb - MINUTE_NS >= s.rth_close_ns:
            return None
        first_start = -(-s.rth_open_ns // MINUTE_NS) * MINUTE_NS     # first bar start >= the RTH open
        return max(nb, first_start + MINUTE_NS)

    @staticmethod
    def _match(rows: list[dict], want: Callable[[dict], bool] | None,
               bps: list[Breakpoint]) -> tuple[list[dict], list[Breakpoint]]:
        matched: list[dict] = []
        hit: list[Breakpoint] = []
        for row in rows:
            ok = want is not None and want(row)
            for bp in bps:
                if bp.matches(row):
                    ok = True
                    bp.hits += 1
                    if bp not in hit:
                        hit.append(bp)
            if ok:
                matched.append(row)
        return matched, hit

    # ---------------------------------------------------------------------------- breakpoints
    def add_break(self, spec: str) -> Breakpoint:
        what, value = parse_break(spec, self.session)
        for bp in self.breakpoints:
            if bp.what == what and bp.value == value:
                return bp
        self._bp_number += 1
        bp = Breakpoint(self._bp_number, what, value)
        self.breakpoints.append(bp)
        return bp

    def delete_break(self, number: int | None = None) -> list[Breakpoint]:
        """Delete breakpoint ``number`` (all if None); the deleted ones."""
        if number is None:
            gone, self.breakpoints = self.breakpoints, []
            return gone
        gone = [bp for bp in self.breakpoints if bp.number == number]
        if not gone:
            raise DebugError(f"no breakpoint {number}")
        self.breakpoints = [bp for bp in self.breakpoints if bp.number != number]
        return gone

    # ---------------------------------------------------------------------------- state queries
    def _t(self) -> int:
        t = self.now_ns
        if t is None:
            raise DebugError("nothing applied yet (step or run first)")
        return t

    def last_touch(self) -> dict | None:
        """The touch the last move stopped at, else the last touch emitted (None before the first)."""
        if self.focus is not None:
            return self.focus
        return self.touches[-1] if self.touches else None

    def find_touch(self, key: str) -> dict:
        """A touch by ``#k`` (k-th of the day, from 1; negative from the end), event_id or level_id (its latest)."""
        if not self.touches:
            raise DebugError("no touch yet")
        if key.startswith("#") or key.lstrip("-").isdigit():
            try:
                k = int(key.lstrip("#"))
            except ValueError:
                raise DebugError(f"not a touch number: {key!r}") from None
            if k == 0 or abs(k) > len(self.touches):
                raise DebugError(f"touch {key} does not exist ({len(self.touches)} so far)")
            return self.touches[k - 1 if k > 0 else k]
        for row in reversed(self.touches):
            if row["event_id"] == key:
                return row
        kind, at, price = key.upper().partition("@")
        lid = key.upper()
        if at and kind in PRICE_KEYED_KINDS:
            try:
                lid = level_id(kind, float(price))
            except ValueError:
                pass
        for row in reversed(self.touches):
            if row["level_id"] == lid:
                return row
        raise DebugError(f"no touch with event_id or level_id {key!r}")

    def levels_snapshot(self) -> LevelSet | None:
        """The levels the open bar (current minute) is tested against, as of the minute's start;
        None outside the detection window."""
        r = self.reached_ns
        if r is None:
            return None
        return self.engine.levels.testable_on(r - r % MINUTE_NS)

    def levels_now(self) -> LevelSet:
        """Every level with its value now (as if a bar started now)."""
        return self.engine.levels.current(self._t())

    def tape_features(self, prices: np.ndarray) -> dict[str, np.ndarray]:
        """Tape features (SPEC §7) of axis prices (SPY $) at now."""
        return self.engine.features.tape_engine.features(self.engine.tape, np.asarray(prices, np.float64), self._t())

    def fuel_levels(self):
        """The option-derived levels (:class:`~spymaster.engines.fuel.OptionLevels`) at now."""
        return self.engine.fuel.levels(self._t())

    def dealer_gamma_at(self, spy_prices) -> np.ndarray:
        """Total dealer gamma (shares per SPY $1) at SPY prices, now."""
        return self.engine.fuel.gamma_profile(np.asarray(spy_prices, np.float64), self._t())[2]

    def last_price(self) -> float | None:
        """Last ES trade on the SPY axis ($)."""
        p = self.engine.tape.last_price()
        return None if p is None else p / 1e9 / self.cfg.instrument.es_spy_ratio
