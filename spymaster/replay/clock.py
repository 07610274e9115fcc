"""The live merge of several clients' streams, and the clock that closes bars in a quiet market.

Live records come from two clients (one dataset each) whose streams are each in ``ts_recv`` order
but arrive interleaved arbitrarily. :class:`LiveMerger` buffers the normalized records per kind
and releases, as one :class:`~spymaster.events.EventBatch` in replay order (ts_recv, then ES
trades < ES MBP-10 < option trades, then arrival order — :func:`spymaster.replay.merge.interleave`),
everything strictly below the *release horizon*

    H = min over open streams c of B_c,
    B_c = max(data_c, heartbeat_c − L, wall_now − L if the feed is real-time),

with L = ``live.lateness_ms``:

* ``data_c`` — the largest ts_recv of a market-data record (trade, mbp-10; kept or filtered)
  received from c: c's stream is ordered, so nothing older can still come from it;
* ``heartbeat_c − L`` — a gateway heartbeat at ts h says c had nothing to send before h; records
  already on their way may still carry ts_recv up to L below it;
* ``wall_now − L`` — the wall-clock timer, used only for a real-time stream (its latest index ts
  is within ``realtime_window`` of the wall clock): its records are assumed to arrive within L of
  their ts_recv. A stream replaying history through a gateway (timestamps far from the wall clock,
  e.g. the catch-up of an intraday replay) never uses it, so its merge depends on the records
  only, never on timing — and it holds the horizon back even when the other stream is real-time.

A closed stream (clean end of session) no longer holds the horizon back. The horizon is monotone;
a record arriving with ts_recv below the horizon already released is *late*: counted per stream
and kind, logged, and dropped — never fed out of order.

The clock: after the released data, :func:`clock_due` says whether a data-less tick at H would do
stop work (a bar close — SPEC §4, "in live mode also when a heartbeat or clock tick passes
bar_end" — or a label resolution); the runner then calls ``engine.advance_clock(H)``. H never runs
ahead of data still inside another stream's lateness window (it is the minimum over streams), and
ticks are clamped to the session end (a tick beyond it would complete labels the session's data
cannot). While data flows, no tick is ever needed, so the engine sees exactly the replay's events.

Units: timestamps int64 ns since the epoch (UTC); wall clock ns (``time.time_ns``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from spymaster.events import EMPTY_BOOKS, EMPTY_OPTIONS, EMPTY_TRADES, KIND_BOOK, KIND_NAMES, KIND_OPTION, KIND_TRADE, EventBatch
from spymaster.logs import get_logger
from spymaster.replay.merge import interleave

log = get_logger("replay.clock")

NEG_INF = -(2**63)
POS_INF = 2**63 - 1
_EMPTY = {KIND_TRADE: EMPTY_TRADES, KIND_BOOK: EMPTY_BOOKS, KIND_OPTION: EMPTY_OPTIONS}


@dataclass
class StreamClock:
    """What the merge knows about one client's stream (ns)."""

    name: str
    data_ts: int | None = None
    heartbeat_ts: int | None = None
    closed: bool = False
    late: dict[str, int] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)

    @property
    def latest(self) -> int | None:
        """Latest index timestamp seen (data or heartbeat)."""
        vals = [v for v in (self.data_ts, self.heartbeat_ts) if v is not None]
        return max(vals) if vals else None

    def bound(self, lateness_ns: int, timer_ns: int | None) -> int:
        """B_c: no record below this can still come from this stream (within the lateness window)."""
        if self.closed:
            return POS_INF
        b = NEG_INF
        if self.data_ts is not None:
            b = self.data_ts
        if self.heartbeat_ts is not None:
            b = max(b, self.heartbeat_ts - lateness_ns)
        if timer_ns is not None:
            b = max(b, timer_ns)
        return b


class LiveMerger:
    """Bounded-lateness merge of live streams into replay-ordered batches.

    ``wall_ns`` (tests) is the wall clock; ``realtime_window_ns`` how far the feed's latest
    timestamp may lag the wall clock for the feed to count as real-time (the wall-clock timer).
    """

    def __init__(self, streams: list[str], lateness_ns: int, *, realtime_window_ns: int,
                 wall_ns: Callable[[], int] = time.time_ns) -> None:
        if not streams:
            raise ValueError("no streams to merge")
        self.lateness_ns = int(lateness_ns)
        self.realtime_window_ns = int(realtime_window_ns)
        self.wall_ns = wall_ns
        self.streams = {name: StreamClock(name) for name in streams}
        self._buf: dict[int, list[np.ndarray]] = {KIND_TRADE: [], KIND_BOOK: [], KIND_OPTION: []}
        self._tail: dict[int, int | None] = {k: None for k in self._buf}   # last buffered ts per kind
        self._unsorted: dict[int, bool] = {k: False for k in self._buf}
        self.released_ns: int = NEG_INF     # everything below was released
        self.released = {KIND_NAMES[k]: 0 for k in self._buf}
        self.buffered_max = 0
        self._buffered = 0
        self._last_late_log = 0.0

    # ------------------------------------------------------------------ input
    def push(self, stream: str, *, trades: np.ndarray = EMPTY_TRADES, books: np.ndarray = EMPTY_BOOKS,
             options: np.ndarray = EMPTY_OPTIONS, data_ts: int | None = None,
             heartbeat_ts: int | None = None) -> int:
        """Add one stream's normalized records; returns how many were late (dropped).

        ``data_ts``: largest ts_recv of the market-data records this push covers (including ones
        the sources filtered out); ``heartbeat_ts``: the latest heartbeat's ts_event.
        """
        sc = self.streams[stream]
        late_total = 0
        for kind, arr in ((KIND_TRADE, trades), (KIND_BOOK, books), (KIND_OPTION, options)):
            n = arr.shape[0]
            if n == 0:
                continue
            name = KIND_NAMES[kind]
            sc.received[name] = sc.received.get(name, 0) + n
            ts = arr["ts_recv"]
            if self.released_ns != NEG_INF and int(ts.min()) < self.released_ns:
                ok = ts >= self.released_ns
                n_late = n - int(ok.sum())
                sc.late[name] = sc.late.get(name, 0) + n_late
                late_total += n_late
                arr = arr[ok]
                if arr.shape[0] == 0:
                    continue
            self._append(kind, arr)
        if late_total:
            now = time.monotonic()
            if now - self._last_late_log >= 1.0:
                self._last_late_log = now
                log.warning("live_late_records", stream=stream, late=late_total, released_ns=self.released_ns,
                            lateness_ms=self.lateness_ns / 1e6, totals=dict(sc.late))
        if data_ts is not None:
            sc.data_ts = data_ts if sc.data_ts is None else max(sc.data_ts, int(data_ts))
        if heartbeat_ts is not None:
            sc.heartbeat_ts = heartbeat_ts if sc.heartbeat_ts is None else max(sc.heartbeat_ts, int(heartbeat_ts))
        self.buffered_max = max(self.buffered_max, self._buffered)
        return late_total

    def close(self, stream: str) -> None:
        """The stream ended (clean close): it no longer holds the horizon back."""
        self.streams[stream].closed = True

    # ------------------------------------------------------------------ horizon
    def is_realtime(self, stream: str, now_ns: int | None = None) -> bool:
        """Whether ``stream`` is real-time: its latest timestamp is within the real-time window of the
        wall clock (a stream still replaying history, or one that never spoke, is not)."""
        now = self.wall_ns() if now_ns is None else now_ns
        latest = self.streams[stream].latest
        return latest is not None and latest >= now - self.realtime_window_ns

    def horizon(self) -> int:
        """The release horizon H (ns; ``POS_INF`` once every stream is closed)."""
        now = self.wall_ns()
        timer = now - self.lateness_ns
        return min(s.bound(self.lateness_ns, timer if self.is_realtime(n, now) else None)
                   for n, s in self.streams.items())

    @property
    def buffered(self) -> int:
        return self._buffered

    # ------------------------------------------------------------------ output
    def _append(self, kind: int, arr: np.ndarray) -> None:
        ts = arr["ts_recv"]
        tail = self._tail[kind]
        if (tail is not None and int(ts[0]) < tail) or (arr.shape[0] > 1 and bool((np.diff(ts) < 0).any())):
            self._unsorted[kind] = True    # a stream out of its own order: sorted (stably) at release
        self._tail[kind] = int(ts[-1]) if tail is None else max(tail, int(ts[-1]))
        self._buf[kind].append(arr)
        self._buffered += arr.shape[0]

    def _take(self, kind: int, h: int) -> np.ndarray:
        """The buffered records of ``kind`` with ts_recv < h, removed from the buffer (O(taken))."""
        chunks = self._buf[kind]
        if not chunks:
            return _EMPTY[kind]
        if self._unsorted[kind]:
            arr = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
            arr = arr[np.argsort(arr["ts_recv"], kind="stable")]
            chunks[:] = [arr]
            self._unsorted[kind] = False
        if h == NEG_INF:
            return _EMPTY[kind]
        out: list[np.ndarray] = []
        while chunks:
            c = chunks[0]
            ts = c["ts_recv"]
            if h == POS_INF or int(ts[-1]) < h:
                out.append(chunks.pop(0))
                continue
            k = int(np.searchsorted(ts, h, side="left"))
            if k:
                out.append(c[:k])
                chunks[0] = c[k:]
            break
        if not out:
            return _EMPTY[kind]
        return out[0] if len(out) == 1 else np.concatenate(out)

    def release(self, horizon: int | None = None) -> EventBatch:
        """Every buffered record with ts_recv < H, in replay order (possibly empty); H becomes the
        released horizon (monotone)."""
        h = self.horizon() if horizon is None else int(horizon)
        if h <= self.released_ns:
            return EventBatch.empty()
        parts = {}
        for kind in self._buf:
            part = self._take(kind, h)
            parts[kind] = part
            n = part.shape[0]
            self._buffered -= n
            self.released[KIND_NAMES[kind]] += n
        self.released_ns = h
        if sum(p.shape[0] for p in parts.values()) == 0:
            return EventBatch.empty()
        return interleave(parts[KIND_TRADE], parts[KIND_BOOK], parts[KIND_OPTION])

    def release_batches(self, horizon: int | None = None) -> list[EventBatch]:
        """As :meth:`release`, as consecutive batches cut where a buffered chunk starts: each batch's
        per-kind arrays are then views of single pushed chunks (no copy of the records), and their
        concatenation is exactly what :meth:`release` returns."""
        h = self.horizon() if horizon is None else int(horizon)
        if h <= self.released_ns:
            return []
        for kind in self._buf:
            if self._unsorted[kind]:
                self._take(kind, NEG_INF)          # sorts the kind's buffer, takes nothing
        cuts = sorted({int(c["ts_recv"][0]) for chunks in self._buf.values() for c in chunks[1:]
                       if int(c["ts_recv"][0]) < h})
        out: list[EventBatch] = []
        for cut in cuts + [h]:
            parts = {}
            for kind in self._buf:
                part = self._take(kind, cut)
                parts[kind] = part
                self._buffered -= part.shape[0]
                self.released[KIND_NAMES[kind]] += part.shape[0]
            if any(p.shape[0] for p in parts.values()):
                out.append(interleave(parts[KIND_TRADE], parts[KIND_BOOK], parts[KIND_OPTION]))
        self.released_ns = h
        return out

    def late_counts(self) -> dict[str, dict[str, int]]:
        return {name: dict(s.late) for name, s in self.streams.items() if s.late}

    def summary(self) -> dict:
        return {
            "lateness_ms": self.lateness_ns / 1e6,
            "released": dict(self.released),
            "late": self.late_counts(),
            "late_total": sum(sum(v.values()) for v in self.late_counts().values()),
            "buffered_max": self.buffered_max,
            "streams": {n: {"received": dict(s.received), "closed": s.closed, "last_data_ts_ns": s.data_ts,
                            "last_heartbeat_ts_ns": s.heartbeat_ts} for n, s in self.streams.items()},
        }


def clock_due(engine, ts_ns: int) -> bool:
    """Would a data-less tick at ``ts_ns`` do stop work in ``engine`` (bar close or label resolution)?

    False before the first event (the first event does the first stop) and for ts at or below the
    last applied event.
    """
    nb = engine.next_boundary
    if nb is None or engine.finished:
        return False
    last = engine.stats.last_ts
    if last is not None and ts_ns < last:
        return False
    if ts_ns >= nb:
        return True
    deadline = engine.labels.next_deadline()
    return deadline is not None and ts_ns > deadline


def tick(engine, horizon_ns: int, session_end_ns: int) -> int | None:
    """Advance ``engine``'s clock to min(H, session end) if that does stop work; returns the tick ts.

    Only after every record below H was fed (:func:`step` does both in order)."""
    if horizon_ns in (NEG_INF, POS_INF):
        return None
    t = min(int(horizon_ns), int(session_end_ns))
    if clock_due(engine, t):
        engine.advance_clock(t)
        return t
    return None


def step(merger: LiveMerger, engine, session_end_ns: int,
         feed: Callable[[EventBatch], None] | None = None) -> tuple[list[EventBatch], int | None]:
    """One round of the live loop: release everything below the horizon H, feed it, then tick the
    clock to H if that closes a bar or resolves a label. Returns (released batches, tick ts or None)."""
    h = merger.horizon()
    batches = merger.release_batches(h)
    for b in batches:
        (feed or engine.feed)(b)
    return batches, tick(engine, h, session_end_ns)
