"""Bars (SPEC §4): 1-min / 2-min OHLCV of the chosen contract's trades, bucketed on whole minutes."""

from __future__ import annotations

import databento as db
import numpy as np

from spymaster.events import EventBatch, KIND_TRADE, as_trades, make_trades
from spymaster.state.bars import BarBuilder, build_bars

S = 1_000_000_000
M0 = 1_765_980_000 * S  # a whole minute


def test_bars_built_by_ts_event_equal_databento_ohlcv_1m_on_real_esu4_trades(real_data):
    d = real_data / "es_futures" / "ESU4_2024-07-01"
    store = db.DBNStore.from_file(d / "futures_trades_2024-07-01T23-58_2024-07-02T00-02.dbn.zst")
    trades = as_trades(store.to_ndarray())
    start, end = int(store.metadata.start), int(store.metadata.end)
    ours = {b.start_ns: b for b in build_bars(trades, key="ts_event", ratio=1.0)}
    ohlcv = db.DBNStore.from_file(d / "futures_ohlcv-1m_2024-07-01T23-40_2024-07-02T00-10.dbn.zst").to_ndarray()
    ohlcv = ohlcv[ohlcv["instrument_id"] == trades["instrument_id"][0]]
    covered = [r for r in ohlcv if int(r["ts_event"]) >= start and int(r["ts_event"]) + 60 * S <= end]
    assert len(covered) == 4
    for r in covered:
        b = ours[int(r["ts_event"])]
        assert (b.open_es, b.high_es, b.low_es, b.close_es, b.volume) == (
            int(r["open"]), int(r["high"]), int(r["low"]), int(r["close"]), int(r["volume"]))


def test_minutes_without_trades_make_no_bar():
    t = make_trades([M0 + 1, M0 + 2 * 60 * S + 5], [6800.0, 6801.0], [1, 2], "B")
    bars = build_bars(t)
    assert [b.start_ns for b in bars] == [M0, M0 + 120 * S]


def test_bar_ohlcv_on_the_spy_axis():
    t = make_trades([M0 + 1, M0 + 2, M0 + 3, M0 + 59 * S], [6800.0, 6802.5, 6799.25, 6801.0], [1, 2, 3, 4], "A")
    (b,) = build_bars(t, ratio=10.0)
    assert (b.open, b.high, b.low, b.close, b.volume, b.trades) == (680.0, 680.25, 679.925, 680.1, 10, 4)
    assert b.end_ns == M0 + 60 * S


def test_two_minute_bars_start_on_even_minutes_of_the_epoch():
    assert (M0 // (60 * S)) % 2 == 0
    t = make_trades([M0 + 61 * S, M0 + 119 * S, M0 + 121 * S], [1.0, 2.0, 3.0], [1, 1, 1], "B")
    bars = build_bars(t, bucket_s=120)
    assert [(b.start_ns, b.volume) for b in bars] == [(M0, 2), (M0 + 120 * S, 1)]


def test_close_through_closes_the_open_bar_only_once_its_end_has_passed():
    t = make_trades([M0 + 5 * S], [6800.0], [1], "B")
    b = BarBuilder(60)
    b.apply(EventBatch(np.array([KIND_TRADE], np.uint8), np.array([0]), t["ts_recv"].copy(), trades=t), 0, 1)
    assert b.close_through(M0 + 60 * S - 1) == []
    assert b.open_bar is not None
    (bar,) = b.close_through(M0 + 60 * S)
    assert bar.start_ns == M0 and b.open_bar is None
