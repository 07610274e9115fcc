"""``TradeTape``: the chosen ES contract's trades, kept for the trailing windows that need them.

A component of the replay engine: :meth:`TradeTape.apply` appends the KIND_TRADE events of a
batch (``batch.trades``: ``ts_recv`` ns, ``price`` int64 1e-9 ES points, ``size`` contracts,
``side`` ASCII ``B`` buy aggressor / ``A`` sell aggressor / ``N`` unknown → stored +1 / −1 / 0)
in one numba kernel call per buffer fill; it ignores every other kind.

Rows are kept in a :class:`~spymaster.state.ringbuffer.RingBuffer` with retention
``max(label_horizon_s, tape_window_s + sweep_lookback_s, velocity_window_s) + 1 s``:

    **Guarantee:** every trade whose ``ts_recv`` lies within the retention of the newest appended
    trade's ``ts_recv`` (and the last trade before that) is available to the queries.

Queries name their time bounds (ns, ``ts_recv``): :meth:`window` (``t0 ≤ ts < t1``, the
trailing windows of SPEC §7), :meth:`path` (``t0 ≤ ts ≤ t1``, the label path of SPEC §10),
:meth:`price_at` (last price at or before a time). Their results never depend on how the stream
was chunked or on when compaction ran. For labels, resolve a pending touch before applying the
first trade with ``ts_recv > t + label_horizon`` (or within 1 s of it); the tape then still
holds the whole path ``[t, t + horizon]``.
"""

from __future__ import annotations

import numba
import numpy as np

from spymaster.config import Config
from spymaster.errors import OrderingError
from spymaster.events import KIND_TRADE, PRICE_SCALE, EventBatch
from spymaster.state.ringbuffer import RingBuffer

NS = 1_000_000_000

TAPE_ROW = np.dtype([("ts", "<i8"), ("price", "<i8"), ("size", "<i8"), ("side", "i1")])
"""One tape row: ts_recv (ns), price (int64 1e-9 ES points), size (contracts), side (+1/−1/0)."""

_OK, _FULL, _ORDER = 0, 1, 2
_SIDE_B = ord("B")
_SIDE_A = ord("A")


@numba.njit(cache=True, nogil=True)
def _tape_append(kind, pos, ts, tr_price, tr_size, tr_side, tr_iid, iid, lo, hi,
                 b_ts, b_px, b_sz, b_side, n, last_ts):
    """Append the trades among events lo..hi-1; return (next event index, count, status, last_ts)."""
    cap = b_ts.shape[0]
    for i in range(lo, hi):
        if kind[i] != KIND_TRADE:
            continue
        p = pos[i]
        if iid >= 0 and tr_iid[p] != iid:
            continue
        t = ts[i]
        if t < last_ts:
            return i, n, _ORDER, last_ts
        if n >= cap:
            return i, n, _FULL, last_ts
        b_ts[n] = t
        b_px[n] = tr_price[p]
        b_sz[n] = tr_size[p]
        s = tr_side[p]
        b_side[n] = 1 if s == _SIDE_B else (-1 if s == _SIDE_A else 0)
        n += 1
        last_ts = t
    return hi, n, _OK, last_ts


def tape_retention_s(cfg: Config) -> float:
    """Seconds of trades the tape must keep (SPEC §7 tape windows, §10 label path, + 1 s)."""
    return max(cfg.labels.label_horizon_s,
               cfg.tape.tape_window_s + cfg.tape.sweep_lookback_s,
               cfg.tape.velocity_window_s) + 1.0


class TradeTape:
    """The chosen contract's ES trades over the trailing retention window (see module doc).

    ``instrument_id`` (optional) keeps only trades of that instrument; by default every trade
    of the batch is taken (the sources already restrict the stream to the chosen contract).
    ``extra_retention_s`` widens the retention (e.g. for a debugger that looks further back).
    """

    def __init__(self, cfg: Config, *, capacity: int = 1 << 14, instrument_id: int | None = None,
                 extra_retention_s: float = 0.0) -> None:
        self.cfg = cfg
        self.retention_s = tape_retention_s(cfg) + float(extra_retention_s)
        self.buf = RingBuffer(TAPE_ROW, retention_ns=int(round(self.retention_s * NS)),
                              capacity=capacity, name="trade tape")
        self.instrument_id = -1 if instrument_id is None else int(instrument_id)
        self._last_ts = np.iinfo(np.int64).min
        self.appended = 0
        self._src: tuple | None = None  # (trades, its column views) of the last batch

    # ------------------------------------------------------------------ component
    def apply(self, batch: EventBatch, lo: int = 0, hi: int | None = None) -> None:
        """Append the KIND_TRADE events ``lo..hi-1`` of ``batch`` (in order)."""
        hi = len(batch) if hi is None else hi
        if hi <= lo:
            return
        if hi - lo == 1 and batch.kind[lo] != KIND_TRADE:
            return  # one event of another kind (the debugger's single steps): nothing to do
        tr = batch.trades
        if self._src is None or self._src[0] is not tr:
            self._src = (tr, (tr["price"], tr["size"], tr["side"], tr["instrument_id"]))
        cols = self._src[1]
        c = self.buf.cols
        i = lo
        while True:
            n0 = self.buf.n
            i, n, status, self._last_ts = _tape_append(
                batch.kind, batch.pos, batch.ts, *cols,
                self.instrument_id, i, hi, c["ts"], c["price"], c["size"], c["side"], n0, self._last_ts)
            self.buf.set_count(n)
            self.appended += n - n0
            if status == _OK:
                return
            if status == _ORDER:
                raise OrderingError(f"trade tape: ES trade at ts_recv {int(batch.ts[i])} ns is earlier than "
                                    f"the previous trade ({self._last_ts} ns); the merged stream must be sorted")
            self.buf.make_room(1)
            c = self.buf.cols

    # ------------------------------------------------------------------ queries
    @property
    def count(self) -> int:
        """Rows currently held (not the day's total: see :attr:`appended`)."""
        return self.buf.n

    def window(self, t0: int, t1: int) -> dict[str, np.ndarray]:
        """Trades with ``t0 ≤ ts_recv < t1`` (ns) as column views: ts, price, size, side."""
        return self.buf.window(int(t0), int(t1))

    def path(self, t0: int, t1_inclusive: int) -> dict[str, np.ndarray]:
        """Trades with ``t0 ≤ ts_recv ≤ t1_inclusive`` (ns): the label path of SPEC §10."""
        return self.buf.window(int(t0), int(t1_inclusive), inclusive_end=True)

    def last_price(self) -> int | None:
        """Price (int64 1e-9 ES points) of the newest appended trade, None before the first."""
        return int(self.buf.cols["price"][self.buf.n - 1]) if self.buf.n else None

    def last_ts(self) -> int | None:
        """ts_recv (ns) of the newest appended trade, None before the first."""
        return self.buf.latest_ts()

    def price_at(self, t: int) -> int | None:
        """Price (1e-9 ES points) of the last trade with ``ts_recv ≤ t``; None if there is none."""
        self.buf.check_from(int(t))
        k = int(np.searchsorted(self.buf.ts, int(t), side="right")) - 1
        return int(self.buf.cols["price"][k]) if k >= 0 else None

    def live(self) -> dict[str, np.ndarray]:
        """Every held row (kernels' input)."""
        return self.buf.live()

    @staticmethod
    def to_points(price: np.ndarray | int) -> np.ndarray | float:
        """1e-9 ES units → ES points (float64)."""
        return np.asarray(price, dtype=np.float64) / PRICE_SCALE if np.ndim(price) else float(price) / PRICE_SCALE
