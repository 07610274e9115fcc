"""MarketState: the ring-buffered market the engines query, and the ES ↔ SPY price axis.

One object per session holding the state components every event updates — the chosen
contract's trade tape, its committed MBP-10 books (with the barrier's change entries), the
1- and 2-minute bars — plus the price converter. (Option flow per 0DTE contract lives in the
fuel engine, which owns its IV and basis state too.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spymaster.config import Config
from spymaster.events import PRICE_SCALE
from spymaster.state.bars import BarBuilder
from spymaster.state.book import BookState
from spymaster.state.trades import TradeTape


@dataclass(frozen=True)
class PriceAxis:
    """SPY-equivalent axis: ``axis $ = ES points / ratio``; ES prices are int64 1e-9 points."""

    ratio: float = 10.0

    def to_axis(self, es_nanos):
        """int64 1e-9 ES points (scalar or array) → axis $ (float64)."""
        return np.asarray(es_nanos, dtype=np.float64) / (PRICE_SCALE * self.ratio) if np.ndim(es_nanos) \
            else float(es_nanos) / (PRICE_SCALE * self.ratio)

    def to_es_nanos(self, axis) -> np.ndarray:
        """axis $ (array) → int64 1e-9 ES points, rounded (SPEC: L_es rounded to 1e-9 ES units)."""
        return np.round(np.asarray(axis, dtype=np.float64) * self.ratio * PRICE_SCALE).astype(np.int64)


class MarketState:
    """The per-session market state components (see the module docstring)."""

    def __init__(self, config: Config) -> None:
        ratio = config.instrument.es_spy_ratio
        self.axis = PriceAxis(ratio)
        self.tape = TradeTape(config)
        self.book = BookState(config)
        self.bars1 = BarBuilder(60, ratio=ratio)
        self.bars2 = BarBuilder(120, ratio=ratio)

    @property
    def components(self) -> tuple:
        """Event consumers in application order (each has ``apply(batch, lo, hi)``)."""
        return (self.tape, self.book, self.bars1, self.bars2)
