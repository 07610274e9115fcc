"""Technical levels: SMA_200 / SMA_400 of 2-min closes and the RTH VWAP (SPEC §5).

The SMAs use the last N completed 2-min closes of this session (exact integer sums of 1e-9 ES
points). VWAP = Σ(price·size)/Σsize of RTH trades, accumulated per trade in a kernel.
"""

from __future__ import annotations

from collections import deque

import numba
import numpy as np

from spymaster.calendar import MINUTE_NS, Session
from spymaster.events import KIND_TRADE, PRICE_SCALE, EventBatch
from spymaster.levels.base import Level
from spymaster.state.bars import Bar


class SmaLevels:
    """SMA_200 / SMA_400 over the session's completed 2-min closes."""

    PERIODS = (200, 400)

    def __init__(self, ratio: float) -> None:
        self.scale = PRICE_SCALE * ratio
        self.closes: deque[int] = deque(maxlen=max(self.PERIODS))
        self._sums = {p: 0 for p in self.PERIODS}  # exact integer sums of the last p closes

    def on_bar(self, bar: Bar) -> None:
        closes = self.closes
        for p in self.PERIODS:
            if len(closes) >= p:
                self._sums[p] -= closes[-p]
            self._sums[p] += bar.close_es
        closes.append(bar.close_es)

    def value(self, period: int) -> float | None:
        if len(self.closes) < period:
            return None
        return self._sums[period] / period / self.scale

    def values(self) -> list[Level]:
        out = []
        for p in self.PERIODS:
            v = self.value(p)
            if v is not None:
                out.append(Level.of(f"SMA_{p}", v))
        return out


@numba.njit(cache=True, nogil=True)
def _vwap_kernel(kind, pos, lo, hi, ts, price, size, t_open, t_close, acc):  # pragma: no cover
    for i in range(lo, hi):
        if kind[i] != KIND_TRADE:
            continue
        p = pos[i]
        if t_open <= ts[p] < t_close:
            acc[0] += (price[p] / 1e9) * size[p]
            acc[1] += size[p]


class VwapTracker:
    """Cumulative RTH VWAP (component). ``value()`` is the VWAP of RTH trades applied so far."""

    def __init__(self, session: Session, ratio: float) -> None:
        self.session = session
        self.ratio = ratio
        self.acc = np.zeros(2, np.float64)  # Σ price_es·size (ES points·contracts), Σ size

    def apply(self, batch: EventBatch, lo: int, hi: int) -> None:
        t = batch.trades
        _vwap_kernel(batch.kind, batch.pos, lo, hi, t["ts_recv"], t["price"], t["size"], self.session.rth_open_ns,
                     self.session.rth_close_ns, self.acc)

    def value(self) -> float | None:
        """VWAP on the SPY axis ($), None before the first RTH trade."""
        if self.acc[1] <= 0:
            return None
        return float(self.acc[0] / self.acc[1]) / self.ratio

    def levels(self, bar_start_ns: int) -> list[Level]:
        v = self.value()
        if bar_start_ns < self.session.rth_open_ns + MINUTE_NS or v is None:
            return []
        return [Level.of("VWAP", v)]
