"""Test helpers: hand-built ES MBP-10 records, trades and merged EventBatches.

Prices are given in ES points and times in seconds (converted to 1e-9 units / ns here), so tests
read like the SPEC examples.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from spymaster.events import (BOOK, F_LAST, KIND_BOOK, KIND_TRADE, PRICE_SCALE, UNDEF_PRICE, EventBatch,
                              make_trades)

NS = 1_000_000_000
T0 = 1_765_000_000 * NS  # an arbitrary session instant (ns)


def ns(seconds: float) -> int:
    """T0 + seconds, in ns (rounded to the ns)."""
    return T0 + int(round(seconds * NS))


def es(points: float) -> int:
    """ES points → int64 1e-9 units."""
    return int(round(points * PRICE_SCALE))


def book_rec(t_s: float, bids: Sequence[tuple[float, int]], asks: Sequence[tuple[float, int]], *,
             action: str = "A", side: str = "B", flags: int = F_LAST, price: float = 0.0, size: int = 0,
             t_ns: int | None = None) -> np.ndarray:
    """One MBP-10 record at ``t_s`` s after T0 with the given levels (best first) after the change."""
    r = np.zeros(1, dtype=BOOK)
    r["length"] = BOOK.itemsize // 4
    r["rtype"] = 10
    r["instrument_id"] = 1
    t = ns(t_s) if t_ns is None else t_ns
    r["ts_recv"] = t
    r["ts_event"] = t
    r["action"] = ord(action)
    r["side"] = ord(side)
    r["flags"] = flags
    r["price"] = es(price)
    r["size"] = size
    lv = r["levels"][0]
    lv["bid_px"] = UNDEF_PRICE
    lv["ask_px"] = UNDEF_PRICE
    for j, (px, sz) in enumerate(bids):
        lv["bid_px"][j] = es(px)
        lv["bid_sz"][j] = sz
    for j, (px, sz) in enumerate(asks):
        lv["ask_px"][j] = es(px)
        lv["ask_sz"][j] = sz
    r["levels"][0] = lv
    return r


def ladder(best: float, sizes: Sequence[int], *, bid: bool, tick: float = 0.25) -> list[tuple[float, int]]:
    """Levels from ``best`` outwards one tick apart (downwards for bids, upwards for asks)."""
    step = -tick if bid else tick
    return [(best + j * step, int(s)) for j, s in enumerate(sizes)]


def trades(rows: Iterable[tuple[float, float, int, str]]) -> np.ndarray:
    """(t_s, price points, size, side 'B'/'A'/'N') rows → a TRADE array."""
    rows = list(rows)
    if not rows:
        return make_trades(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.uint8))
    t = np.array([ns(r[0]) for r in rows], np.int64)
    return make_trades(t, [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])


def trades_ns(t_ns: Sequence[int], price: Sequence[float], size: Sequence[int], side: Sequence[str]) -> np.ndarray:
    return make_trades(np.asarray(t_ns, np.int64), price, size, list(side))


def concat_books(recs: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate(recs) if recs else np.zeros(0, dtype=BOOK)


def merge(trade_arr: np.ndarray | None = None, book_arr: np.ndarray | None = None) -> EventBatch:
    """Merge trades and MBP-10 records by (ts_recv, kind: trades before books, original order)."""
    tr = trade_arr if trade_arr is not None else trades([])
    bk = book_arr if book_arr is not None else np.zeros(0, dtype=BOOK)
    ts = np.concatenate([tr["ts_recv"], bk["ts_recv"]]).astype(np.int64)
    kind = np.concatenate([np.full(len(tr), KIND_TRADE, np.uint8), np.full(len(bk), KIND_BOOK, np.uint8)])
    pos = np.concatenate([np.arange(len(tr), dtype=np.int64), np.arange(len(bk), dtype=np.int64)])
    order = np.lexsort((pos, kind, ts))
    return EventBatch(kind[order], pos[order], ts[order], trades=tr, books=bk)


def feed(components, batch: EventBatch, sizes: Sequence[int] | None = None) -> None:
    """Apply ``batch`` to each component in consecutive chunks of the given sizes (cycled)."""
    if not isinstance(components, (list, tuple)):
        components = [components]
    n = len(batch)
    lo = 0
    k = 0
    while lo < n:
        step = n if not sizes else max(1, int(sizes[k % len(sizes)]))
        hi = min(n, lo + step)
        for c in components:
            c.apply(batch, lo, hi)
        lo = hi
        k += 1


def feed_until(components, batch: EventBatch, t_ns: int) -> None:
    """Apply every event with ts < t_ns (the state a query at t_ns sees)."""
    hi = int(np.searchsorted(batch.ts, t_ns, side="left"))
    if not isinstance(components, (list, tuple)):
        components = [components]
    for c in components:
        c.apply(batch, 0, hi)


class BookSim:
    """A price → size book per side that emits MBP-10 records of its top 10 levels.

    ``set(side, price, size)`` changes one level (size 0 removes it); ``rec(t_s)`` returns the
    record of the current top 10 (bids descending, asks ascending).
    """

    def __init__(self, bids: dict[float, int] | None = None, asks: dict[float, int] | None = None) -> None:
        self.bids: dict[float, int] = dict(bids or {})
        self.asks: dict[float, int] = dict(asks or {})

    def set(self, side: str, price: float, size: int) -> "BookSim":
        book = self.bids if side == "B" else self.asks
        if size <= 0:
            book.pop(price, None)
        else:
            book[price] = int(size)
        return self

    def top(self) -> tuple[list[tuple[float, int]], list[tuple[float, int]]]:
        b = sorted(self.bids.items(), key=lambda kv: -kv[0])[:10]
        a = sorted(self.asks.items(), key=lambda kv: kv[0])[:10]
        return b, a

    def rec(self, t_s: float, *, action: str = "A", flags: int = F_LAST, t_ns: int | None = None) -> np.ndarray:
        b, a = self.top()
        return book_rec(t_s, b, a, action=action, flags=flags, t_ns=t_ns)


def split_batches(batch: EventBatch, sizes: Sequence[int]) -> list[EventBatch]:
    """Cut ``batch`` into independent batches (own per-kind arrays, re-indexed ``pos``), as a
    live feed or a chunked file reader would deliver them; chunk sizes cycle through ``sizes``."""
    out = []
    n = len(batch)
    lo = 0
    k = 0
    while lo < n:
        hi = min(n, lo + max(1, int(sizes[k % len(sizes)])))
        kind, pos = batch.kind[lo:hi].copy(), batch.pos[lo:hi].copy()
        parts = {}
        for code, name in ((KIND_TRADE, "trades"), (KIND_BOOK, "books")):
            m = kind == code
            src = getattr(batch, name)
            parts[name] = src[pos[m]].copy()
            pos[m] = np.arange(int(m.sum()), dtype=np.int64)
        out.append(EventBatch(kind, pos, batch.ts[lo:hi].copy(), trades=parts["trades"], books=parts["books"]))
        lo = hi
        k += 1
    return out
