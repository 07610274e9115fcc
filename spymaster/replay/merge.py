"""k-way merge of the sources' chunked streams into :class:`~spymaster.events.EventBatch` es.

Order (SPEC §3): ``ts_recv``, then the stream's kind (ES trades < ES MBP-10 < option trades),
then the original order inside each stream. Each stream yields arrays sorted by ``ts_recv``;
the merge keeps a buffer per stream and, each round, emits every buffered event with
``ts_recv`` below the *horizon* — the smallest last timestamp among streams that may still
deliver more — because no later chunk can precede those; events *at* the horizon are emitted too
from the streams whose priority is at least as good as every stream still able to bring more
events at that instant. The stream that sets the horizon with the best priority is thus always
drained, so a chunk is never copied to be joined with the next one. The interleaving itself is one
O(n) numba pass over the (already sorted) parts.

The batches' sizes depend on the chunk sizes; their concatenation does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numba
import numpy as np

from spymaster.errors import OrderingError
from spymaster.events import EMPTY_BOOKS, EMPTY_OPTIONS, EMPTY_TRADES, KIND_BOOK, KIND_OPTION, KIND_TRADE, EventBatch

_END = 2**63 - 1  # horizon of an exhausted stream: everything buffered is final
_EMPTY = {KIND_TRADE: EMPTY_TRADES, KIND_BOOK: EMPTY_BOOKS, KIND_OPTION: EMPTY_OPTIONS}


@dataclass
class StreamSpec:
    """A stream to merge: its kind and a callable returning a fresh iterator of sorted chunks."""

    kind: int
    name: str
    chunks: Callable[[], Iterable[np.ndarray]]


@numba.njit(cache=True, nogil=True)
def _interleave(ts_a, ts_b, ts_c, kind_out, pos_out, ts_out):  # pragma: no cover - compiled
    """Merge three ts-sorted arrays (priority a < b < c on ties) into kind/pos/ts."""
    na, nb, nc = ts_a.shape[0], ts_b.shape[0], ts_c.shape[0]
    i = j = k = 0
    big = np.iinfo(np.int64).max
    for o in range(na + nb + nc):
        ta = ts_a[i] if i < na else big
        tb = ts_b[j] if j < nb else big
        tc = ts_c[k] if k < nc else big
        if i < na and ta <= tb and ta <= tc:
            kind_out[o] = 1
            pos_out[o] = i
            ts_out[o] = ta
            i += 1
        elif j < nb and tb <= tc:
            kind_out[o] = 2
            pos_out[o] = j
            ts_out[o] = tb
            j += 1
        else:
            kind_out[o] = 3
            pos_out[o] = k
            ts_out[o] = tc
            k += 1


def interleave(trades: np.ndarray, books: np.ndarray, options: np.ndarray) -> EventBatch:
    """One batch from three ts_recv-sorted per-kind arrays (ties: trades < books < options)."""
    n = trades.shape[0] + books.shape[0] + options.shape[0]
    kind = np.empty(n, np.uint8)
    pos = np.empty(n, np.int64)
    ts = np.empty(n, np.int64)
    _interleave(np.ascontiguousarray(trades["ts_recv"]), np.ascontiguousarray(books["ts_recv"]),
                np.ascontiguousarray(options["ts_recv"]), kind, pos, ts)
    return EventBatch(kind, pos, ts, trades, books, options)


class _Buffer:
    def __init__(self, spec: StreamSpec) -> None:
        self.spec = spec
        self.it = iter(spec.chunks())
        self.buf = _EMPTY[spec.kind]
        self.done = False
        self.last_ts: int | None = None  # last ts_recv handed out (ordering check across chunks)
        self.records = 0

    def pull(self) -> bool:
        """Load the next non-empty chunk into the (empty) buffer; False when the stream is exhausted."""
        while not self.done:
            try:
                chunk = next(self.it)
            except StopIteration:
                self.done = True
                return False
            if chunk.shape[0] == 0:
                continue
            self._check_order(chunk)
            self.records += chunk.shape[0]
            self.buf = chunk
            return True
        return False

    def _check_order(self, chunk: np.ndarray) -> None:
        ts = chunk["ts_recv"]
        prev = self.last_ts
        bad = np.flatnonzero(np.diff(ts) < 0)
        if (prev is not None and int(ts[0]) < prev) or bad.size:
            where = 0 if (prev is not None and int(ts[0]) < prev) else int(bad[0]) + 1
            raise OrderingError(f"stream {self.spec.name}: ts_recv goes backwards at record {self.records + where}")
        self.last_ts = int(ts[-1])

    @property
    def horizon(self) -> int:
        """Last buffered ts_recv (exact int ns); ``_END`` once the stream is exhausted."""
        if self.done:
            return _END
        return int(self.buf["ts_recv"][-1])

    def take(self, horizon: int, inclusive: bool) -> np.ndarray:
        """Pop the buffered prefix with ts_recv < horizon (≤ horizon if ``inclusive``)."""
        if self.buf.shape[0] == 0:
            return self.buf
        if horizon == _END:
            n = self.buf.shape[0]
        else:
            n = int(np.searchsorted(self.buf["ts_recv"], horizon, side="right" if inclusive else "left"))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def merge(streams: Iterable[StreamSpec]) -> Iterator[EventBatch]:
    """Merge per-kind streams (at most one per kind) into event batches in replay order."""
    bufs: dict[int, _Buffer] = {}
    for spec in streams:
        if spec.kind in bufs:
            raise ValueError(f"two streams of kind {spec.kind}")
        bufs[spec.kind] = _Buffer(spec)
    while True:
        for b in bufs.values():
            if b.buf.shape[0] == 0 and not b.done:
                b.pull()
        if all(b.done and b.buf.shape[0] == 0 for b in bufs.values()):
            return
        horizon = min(b.horizon for b in bufs.values())
        # Streams whose next chunk may still bring events at the horizon, and the best priority
        # among them: events at the horizon are final for streams of that priority or better.
        blocking = [k for k, b in bufs.items() if not b.done and b.horizon == horizon]
        first = min(blocking) if blocking else KIND_OPTION + 1
        parts = {kind: b.take(horizon, inclusive=kind <= first) for kind, b in bufs.items()}
        yield interleave(parts.get(KIND_TRADE, EMPTY_TRADES), parts.get(KIND_BOOK, EMPTY_BOOKS),
                         parts.get(KIND_OPTION, EMPTY_OPTIONS))


def merged_counts(streams: Iterable[StreamSpec]) -> dict[str, int]:
    """Records per stream of a full merge (diagnostics)."""
    out: dict[str, int] = {}
    for batch in merge(streams):
        for k, v in batch.counts().items():
            out[k] = out.get(k, 0) + v
    return out
