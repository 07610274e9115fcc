"""Incremental OHLCV bars from the chosen contract's ES trades (SPEC §4).

A bar covers [m, m + bucket) of its key timestamp (``ts_recv`` for the replay; ``ts_event`` to
compare with Databento's own ohlcv-1m), m on whole multiples of the bucket since the epoch.
Minutes without trades make no bar. The kernel accumulates the open bar and emits it when a
trade of a later bucket arrives; the replay engine also closes it explicitly at the first event
of any stream at or after its end (:meth:`BarBuilder.close_through`). Prices are kept as int64
1e-9 ES points and exposed on the SPY-equivalent axis (``es / es_spy_ratio``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from spymaster.events import KIND_TRADE, PRICE_SCALE, EventBatch

# state slots
_HAS, _BUCKET, _OPEN, _HIGH, _LOW, _CLOSE, _VOL, _COUNT = range(8)
_OUT_COLS = 7  # bucket, open, high, low, close, volume, count


@numba.njit(cache=True, nogil=True)
def _accumulate(kind, pos, lo, hi, key_ts, price, size, bucket_ns, st, out, n_out):  # pragma: no cover
    """Fold trade events lo..hi-1 into the open bar; emit finished bars into ``out``.

    Returns (index reached, bars in out). Stops early (index < hi) when ``out`` is full.
    A trade of an earlier bucket than the open bar (only possible with ts_event keys) is folded
    into the open bar.
    """
    for i in range(lo, hi):
        if kind[i] != KIND_TRADE:
            continue
        p = pos[i]
        b = key_ts[p] // bucket_ns
        px = price[p]
        if st[_HAS] == 1 and b > st[_BUCKET]:
            if n_out >= out.shape[0]:
                return i, n_out
            out[n_out, 0] = st[_BUCKET] * bucket_ns
            out[n_out, 1] = st[_OPEN]
            out[n_out, 2] = st[_HIGH]
            out[n_out, 3] = st[_LOW]
            out[n_out, 4] = st[_CLOSE]
            out[n_out, 5] = st[_VOL]
            out[n_out, 6] = st[_COUNT]
            n_out += 1
            st[_HAS] = 0
        if st[_HAS] == 0:
            st[_HAS] = 1
            st[_BUCKET] = b
            st[_OPEN] = px
            st[_HIGH] = px
            st[_LOW] = px
            st[_VOL] = 0
            st[_COUNT] = 0
        if px > st[_HIGH]:
            st[_HIGH] = px
        if px < st[_LOW]:
            st[_LOW] = px
        st[_CLOSE] = px
        st[_VOL] += size[p]
        st[_COUNT] += 1
    return hi, n_out


@dataclass(frozen=True)
class Bar:
    """One OHLCV bar. ``*_es`` in int64 1e-9 ES points; ``open``… on the SPY axis ($)."""

    start_ns: int
    end_ns: int
    open_es: int
    high_es: int
    low_es: int
    close_es: int
    volume: int      # contracts
    trades: int
    ratio: float

    @property
    def open(self) -> float:
        return self.open_es / (PRICE_SCALE * self.ratio)

    @property
    def high(self) -> float:
        return self.high_es / (PRICE_SCALE * self.ratio)

    @property
    def low(self) -> float:
        return self.low_es / (PRICE_SCALE * self.ratio)

    @property
    def close(self) -> float:
        return self.close_es / (PRICE_SCALE * self.ratio)


class BarBuilder:
    """Streaming bar builder (component): ``apply`` folds trades; bars come out in order."""

    def __init__(self, bucket_s: int = 60, *, key: str = "ts_recv", ratio: float = 10.0) -> None:
        if key not in ("ts_recv", "ts_event"):
            raise ValueError(f"key must be ts_recv or ts_event, not {key!r}")
        self.bucket_ns = int(bucket_s) * 1_000_000_000
        self.key = key
        self.ratio = float(ratio)
        self._st = np.zeros(8, np.int64)
        self._out = np.zeros((16, _OUT_COLS), np.int64)
        self._done: list[Bar] = []

    def apply(self, batch: EventBatch, lo: int, hi: int) -> None:
        t = batch.trades
        key_ts, price, size = t[self.key], t["price"], t["size"]
        i = lo
        while True:
            i, n = _accumulate(batch.kind, batch.pos, i, hi, key_ts, price, size, self.bucket_ns, self._st, self._out, 0)
            self._collect(n)
            if i >= hi:
                return

    def _collect(self, n: int) -> None:
        for r in self._out[:n].tolist():
            self._done.append(Bar(r[0], r[0] + self.bucket_ns, r[1], r[2], r[3], r[4], r[5], r[6], self.ratio))

    def _emit_open(self) -> None:
        st = self._st
        s = int(st[_BUCKET]) * self.bucket_ns
        self._done.append(Bar(s, s + self.bucket_ns, int(st[_OPEN]), int(st[_HIGH]), int(st[_LOW]), int(st[_CLOSE]),
                              int(st[_VOL]), int(st[_COUNT]), self.ratio))
        st[_HAS] = 0

    def close_through(self, t_ns: int) -> list[Bar]:
        """Close the open bar if it ends at or before ``t_ns``; return every bar finished since the last call."""
        if self._st[_HAS] == 1 and (int(self._st[_BUCKET]) + 1) * self.bucket_ns <= t_ns:
            self._emit_open()
        done, self._done = self._done, []
        return done

    def flush(self) -> list[Bar]:
        """End of data: close the open bar whatever its end."""
        if self._st[_HAS] == 1:
            self._emit_open()
        done, self._done = self._done, []
        return done

    @property
    def open_bar(self) -> Bar | None:
        """The bar being built (not yet known to consumers: it becomes known at its end)."""
        st = self._st
        if st[_HAS] == 0:
            return None
        s = int(st[_BUCKET]) * self.bucket_ns
        return Bar(s, s + self.bucket_ns, int(st[_OPEN]), int(st[_HIGH]), int(st[_LOW]), int(st[_CLOSE]),
                   int(st[_VOL]), int(st[_COUNT]), self.ratio)


def build_bars(trades: np.ndarray, *, bucket_s: int = 60, key: str = "ts_recv", ratio: float = 10.0) -> list[Bar]:
    """All bars of a trade array (the same kernel as the streaming builder)."""
    from spymaster.events import KIND_TRADE as K

    n = trades.shape[0]
    batch = EventBatch(np.full(n, K, np.uint8), np.arange(n, dtype=np.int64), np.asarray(trades["ts_recv"], np.int64),
                       trades=trades)
    b = BarBuilder(bucket_s, key=key, ratio=ratio)
    b.apply(batch, 0, n)
    return b.flush()
