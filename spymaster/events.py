"""The event vocabulary shared by sources, replay, state and engines.

Sources turn Bronze files (or live records) into three kinds of compact numpy record arrays; the
merge interleaves them into an :class:`EventBatch` — a sequence of ``(kind, pos, ts)`` in replay
order plus the per-kind arrays the positions index. Kernels walk the sequence and read the
columns they need; Python never touches a single event.

Layouts
-------
* :data:`TRADE` — the DBN ``TradeMsg`` layout (48 B) viewed with signed timestamps and 1-byte
  ASCII ``action``/``side``, so a decoded DBN chunk *is* a trade array (zero copy).
  ``price`` is int64 in 1e-9 ES points; ``size`` contracts; ``side`` ``B`` buy aggressor, ``A``
  sell aggressor, ``N`` unknown.
* :data:`BOOK` — the DBN ``MBP10Msg`` layout (368 B): the change (``action``, ``side``,
  ``price``, ``size``), ``flags`` (``F_LAST`` = 128) and ``levels`` (10 × bid/ask px (1e-9 ES
  points, ``UNDEF_PRICE`` when empty), sz, ct) after the change.
* :data:`OPTION` — a normalized 0DTE option trade, already joined to its definition:
  ``contract`` (dense index of the session's 0DTE contracts, stable per raw symbol), ``strike``
  (SPY $), ``is_call``, ``price`` (SPY $ per share), ``size`` (contracts), ``side`` (+1 buy,
  −1 sell, 0 unknown) and ``tick_rule`` (1 = aggressor unknown at the source: infer it by the
  tick rule; 0 = use ``side`` as given).

Times are int64 ns since the epoch, UTC; ``ts_recv`` is the ordering key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

UNDEF_PRICE = np.int64(2**63 - 1)
PRICE_SCALE = 1_000_000_000  # 1e-9 units per point / per $
F_LAST = 128

# Event kinds; the value is the tie-break priority on equal ts_recv (SPEC §3): definitions (0,
# applied inside the sources) < ES trades < ES MBP-10 < option trades. CLOCK carries no data: a
# live heartbeat or timer tick that lets bars close in a quiet market.
KIND_TRADE = 1
KIND_BOOK = 2
KIND_OPTION = 3
KIND_CLOCK = 4
KIND_NAMES = {KIND_TRADE: "es_trade", KIND_BOOK: "es_mbp10", KIND_OPTION: "option_trade", KIND_CLOCK: "clock"}

ACTION_TRADE = ord("T")
ACTION_FILL = ord("F")
SIDE_BID = ord("B")  # trades: buy aggressor
SIDE_ASK = ord("A")  # trades: sell aggressor
SIDE_NONE = ord("N")

TRADE = np.dtype({
    "names": ["length", "rtype", "publisher_id", "instrument_id", "ts_event", "price", "size",
              "action", "side", "flags", "depth", "ts_recv", "ts_in_delta", "sequence"],
    "formats": ["u1", "u1", "<u2", "<u4", "<i8", "<i8", "<u4", "u1", "u1", "u1", "u1", "<i8", "<i4", "<u4"],
    "offsets": [0, 1, 2, 4, 8, 16, 24, 28, 29, 30, 31, 32, 40, 44],
    "itemsize": 48,
})

LEVEL = np.dtype([("bid_px", "<i8"), ("ask_px", "<i8"), ("bid_sz", "<u4"), ("ask_sz", "<u4"),
                  ("bid_ct", "<u4"), ("ask_ct", "<u4")])

BOOK = np.dtype({
    "names": ["length", "rtype", "publisher_id", "instrument_id", "ts_event", "price", "size",
              "action", "side", "flags", "depth", "ts_recv", "ts_in_delta", "sequence", "levels"],
    "formats": ["u1", "u1", "<u2", "<u4", "<i8", "<i8", "<u4", "u1", "u1", "u1", "u1", "<i8", "<i4", "<u4",
                (LEVEL, (10,))],
    "offsets": [0, 1, 2, 4, 8, 16, 24, 28, 29, 30, 31, 32, 40, 44, 48],
    "itemsize": 368,
})

OPTION = np.dtype([
    ("ts_recv", "<i8"), ("ts_event", "<i8"), ("instrument_id", "<u4"), ("contract", "<i4"),
    ("strike", "<f8"), ("is_call", "u1"), ("price", "<f8"), ("size", "<i8"), ("side", "i1"),
    ("tick_rule", "u1"),
])

EMPTY_TRADES = np.zeros(0, dtype=TRADE)
EMPTY_BOOKS = np.zeros(0, dtype=BOOK)
EMPTY_OPTIONS = np.zeros(0, dtype=OPTION)


def as_trades(arr: np.ndarray) -> np.ndarray:
    """View a DBN ``TradeMsg`` numpy chunk (or raw bytes of one) as :data:`TRADE` (no copy)."""
    if arr.dtype.itemsize != TRADE.itemsize:
        raise ValueError(f"not a trades record array (itemsize {arr.dtype.itemsize})")
    return arr.view(TRADE)


def as_books(arr: np.ndarray) -> np.ndarray:
    """View a DBN ``MBP10Msg`` numpy chunk as :data:`BOOK` (no copy)."""
    if arr.dtype.itemsize != BOOK.itemsize:
        raise ValueError(f"not an mbp-10 record array (itemsize {arr.dtype.itemsize})")
    return arr.view(BOOK)


@dataclass
class EventBatch:
    """A run of merged events: ``kind[i]`` / ``pos[i]`` / ``ts[i]`` in replay order.

    ``pos[i]`` indexes ``trades``, ``books`` or ``options`` according to ``kind[i]`` (−1 for
    CLOCK). ``ts`` is non-decreasing. Slicing the sequence (:meth:`slice`) keeps the per-kind
    arrays, so any chunking of a stream is cheap — the engine's output does not depend on it.
    """

    kind: np.ndarray     # uint8
    pos: np.ndarray      # int64
    ts: np.ndarray       # int64 ts_recv (ns)
    trades: np.ndarray = field(default_factory=lambda: EMPTY_TRADES)
    books: np.ndarray = field(default_factory=lambda: EMPTY_BOOKS)
    options: np.ndarray = field(default_factory=lambda: EMPTY_OPTIONS)

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    def slice(self, lo: int, hi: int) -> "EventBatch":
        return EventBatch(self.kind[lo:hi], self.pos[lo:hi], self.ts[lo:hi], self.trades, self.books, self.options)

    def chunks(self, size: int):
        """Yield consecutive slices of at most ``size`` events."""
        for lo in range(0, len(self), size):
            yield self.slice(lo, min(len(self), lo + size))

    def counts(self) -> dict[str, int]:
        vals, cnt = np.unique(self.kind, return_counts=True)
        return {KIND_NAMES[int(v)]: int(c) for v, c in zip(vals, cnt)}

    @staticmethod
    def empty() -> "EventBatch":
        return EventBatch(np.zeros(0, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64))

    @staticmethod
    def clock(ts_ns: int) -> "EventBatch":
        """A data-less tick at ``ts_ns`` (live heartbeats / timers)."""
        return EventBatch(np.array([KIND_CLOCK], np.uint8), np.array([-1], np.int64), np.array([ts_ns], np.int64))


def make_trades(ts_recv, price_points, size, side, *, instrument_id: int = 1, ts_event=None) -> np.ndarray:
    """Build a :data:`TRADE` array from columns (prices in ES points; ``side`` as 'B'/'A'/'N')."""
    ts_recv = np.asarray(ts_recv, dtype=np.int64)
    n = ts_recv.shape[0]
    a = np.zeros(n, dtype=TRADE)
    a["length"] = TRADE.itemsize // 4
    a["rtype"] = 0
    a["instrument_id"] = instrument_id
    a["ts_recv"] = ts_recv
    a["ts_event"] = ts_recv if ts_event is None else np.asarray(ts_event, dtype=np.int64)
    a["price"] = np.round(np.asarray(price_points, dtype=np.float64) * PRICE_SCALE).astype(np.int64)
    a["size"] = np.asarray(size)
    a["action"] = ACTION_TRADE
    a["side"] = _side_codes(side, n)
    a["flags"] = F_LAST
    return a


def _side_codes(side, n: int) -> np.ndarray:
    if isinstance(side, str):
        return np.full(n, ord(side), dtype=np.uint8)
    arr = np.asarray(side)
    if arr.dtype.kind in "US":
        return np.array([ord(str(s)) for s in arr.tolist()], dtype=np.uint8)
    return arr.astype(np.uint8)


def make_options(ts_recv, contract, strike, is_call, price, size, side=0, tick_rule=0, *,
                 instrument_id=None, ts_event=None) -> np.ndarray:
    """Build an :data:`OPTION` array from columns (scalars broadcast): ``strike`` and ``price`` in
    SPY $, ``size`` contracts, ``side`` +1 buy / −1 sell / 0 unknown, ``tick_rule`` 1 = infer the
    aggressor by the tick rule. ``instrument_id`` defaults to ``contract + 1``."""
    ts_recv = np.asarray(ts_recv, dtype=np.int64)
    n = ts_recv.shape[0]
    a = np.zeros(n, dtype=OPTION)
    a["ts_recv"] = ts_recv
    a["ts_event"] = ts_recv if ts_event is None else np.asarray(ts_event, dtype=np.int64)
    a["contract"] = np.broadcast_to(np.asarray(contract, dtype=np.int32), (n,))
    a["instrument_id"] = a["contract"] + 1 if instrument_id is None else np.broadcast_to(np.asarray(instrument_id), (n,))
    a["strike"] = np.broadcast_to(np.asarray(strike, dtype=np.float64), (n,))
    a["is_call"] = np.broadcast_to(np.asarray(is_call).astype(np.uint8), (n,))
    a["price"] = np.broadcast_to(np.asarray(price, dtype=np.float64), (n,))
    a["size"] = np.broadcast_to(np.asarray(size, dtype=np.int64), (n,))
    a["side"] = np.broadcast_to(np.asarray(side, dtype=np.int8), (n,))
    a["tick_rule"] = np.broadcast_to(np.asarray(tick_rule, dtype=np.uint8), (n,))
    return a
