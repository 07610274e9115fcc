"""RingBuffer: contiguous time-sorted columns, retention compaction, time-bounded queries."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spymaster.state.ringbuffer import RetentionError, RingBuffer

ROW = np.dtype([("ts", "<i8"), ("v", "<i8"), ("lv", "<i8", (3,))])


def _append(rb: RingBuffer, ts: int, v: int) -> None:
    """Append one row the way a kernel wrapper does: make room when full, then write."""
    if rb.free == 0:
        rb.make_room(1)
    n = rb.n
    rb.cols["ts"][n] = ts
    rb.cols["v"][n] = v
    rb.cols["lv"][n] = (v, v + 1, v + 2)
    rb.set_count(n + 1)


def test_window_is_half_open_and_path_is_inclusive():
    rb = RingBuffer(ROW, retention_ns=1000, capacity=8)
    for ts in (10, 20, 20, 30, 40):
        _append(rb, ts, ts)
    assert rb.window(20, 40)["ts"].tolist() == [20, 20, 30]
    assert rb.window(20, 40, inclusive_end=True)["ts"].tolist() == [20, 20, 30, 40]
    assert rb.window(21, 30)["ts"].tolist() == []
    assert rb.index_before(20) == 0 and rb.index_before(10) == -1 and rb.index_before(41) == 4


def test_subarray_fields_are_extra_dimensions():
    rb = RingBuffer(ROW, retention_ns=1000, capacity=4)
    _append(rb, 5, 7)
    assert rb.cols["lv"].shape == (4, 3)
    assert rb.live()["lv"].tolist() == [[7, 8, 9]]


def test_compaction_keeps_the_last_row_before_the_cutoff():
    rb = RingBuffer(ROW, retention_ns=100, capacity=4)
    for ts in (0, 10, 50, 120, 200):  # the 5th append compacts: cutoff = 120 - 100 = 20
        _append(rb, ts, ts)
    assert rb.ts.tolist() == [10, 50, 120, 200]
    assert rb.exact_from_ns == 20
    assert rb.index_before(20) == 0  # the row in effect at the cutoff (ts 10) survived


def test_query_reaching_before_the_retention_horizon_raises():
    rb = RingBuffer(ROW, retention_ns=100, capacity=2)
    for ts in range(0, 1000, 10):
        _append(rb, ts, ts)
    rb.window(rb.exact_from_ns, 1000)
    with pytest.raises(RetentionError, match="retention"):
        rb.window(rb.exact_from_ns - 1, 1000)


def test_memory_is_bounded_by_the_retention_window_not_the_day():
    rb = RingBuffer(ROW, retention_ns=1_000, capacity=4)
    for ts in range(0, 1_000_000, 10):  # 100 rows per retention window, 100k rows in total
        _append(rb, ts, ts)
    assert rb.capacity <= 4 * (100 + 2)
    assert rb.dropped > 99_000


@settings(max_examples=60, deadline=None)
@given(gaps=st.lists(st.integers(0, 40), min_size=1, max_size=300),
       cap=st.integers(2, 16),
       q=st.lists(st.tuples(st.integers(0, 150), st.integers(0, 150)), min_size=1, max_size=10))
def test_compaction_is_invisible_to_time_bounded_queries(gaps, cap, q):
    retention = 150
    small = RingBuffer(ROW, retention_ns=retention, capacity=cap)
    big = RingBuffer(ROW, retention_ns=retention, capacity=4096)
    ts = 0
    for i, g in enumerate(gaps):
        ts += g
        _append(small, ts, i)
        _append(big, ts, i)
    latest = ts
    for back0, width in q:
        t0 = latest - back0  # within retention of the latest row: guaranteed
        t1 = t0 + width
        for inc in (False, True):
            a = small.window(t0, t1, inclusive_end=inc)
            b = big.window(t0, t1, inclusive_end=inc)
            assert a["v"].tolist() == b["v"].tolist()
        ka, kb = small.index_before(t0), big.index_before(t0)
        assert (ka < 0) == (kb < 0)
        if ka >= 0:
            assert small.cols["v"][ka] == big.cols["v"][kb]
