"""MarketState and the ES <-> SPY price axis (SPEC §3)."""

from __future__ import annotations

import numpy as np

from spymaster.config import Config
from spymaster.state.market import MarketState, PriceAxis


def test_price_axis_is_es_over_ratio_and_rounds_back_to_1e9_es_units():
    ax = PriceAxis(10.0)
    assert ax.to_axis(6_800_250_000_000) == 680.025
    assert ax.to_es_nanos(np.array([680.025, 679.123456789])).tolist() == [6_800_250_000_000, 6_791_234_567_890]


def test_market_state_components_update_in_a_fixed_order():
    m = MarketState(Config())
    assert m.components == (m.tape, m.book, m.bars1, m.bars2)
    assert (m.bars1.bucket_ns, m.bars2.bucket_ns) == (60 * 10**9, 120 * 10**9)
