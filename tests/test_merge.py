"""The k-way merge (SPEC §3 ordering): ts_recv, then ES trades < MBP-10 < options, then file order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spymaster.errors import OrderingError
from spymaster.events import BOOK, KIND_BOOK, KIND_OPTION, KIND_TRADE, OPTION, TRADE
from spymaster.replay.merge import StreamSpec, merge


T0 = 1_765_980_000_000_000_001  # real epoch ns: not exactly representable as a float64


def _arr(dtype, ts):
    a = np.zeros(len(ts), dtype=dtype)
    a["ts_recv"] = np.asarray(ts, dtype=np.int64) + T0
    # tag each record with its index so the within-stream order is checkable
    a["ts_event"] = np.arange(len(ts))
    return a


def _chunked(arr, sizes):
    def gen():
        i = 0
        for s in sizes:
            yield arr[i:i + s]
            i += s
        yield arr[i:]
    return gen


def _flatten(batches):
    out = []
    for b in batches:
        for k, p, t in zip(b.kind.tolist(), b.pos.tolist(), b.ts.tolist()):
            arr = {KIND_TRADE: b.trades, KIND_BOOK: b.books, KIND_OPTION: b.options}[k]
            out.append((t, k, int(arr["ts_event"][p])))
    return out


ts_lists = st.lists(st.integers(0, 30), max_size=40).map(sorted)


@settings(max_examples=100, deadline=None)
@given(ts_lists, ts_lists, ts_lists, st.lists(st.integers(0, 7), max_size=8), st.lists(st.integers(0, 7), max_size=8))
def test_merge_orders_by_ts_then_kind_then_stream_order_whatever_the_chunking(ta, tb, tc, ca, cb):
    a, b, c = _arr(TRADE, ta), _arr(BOOK, tb), _arr(OPTION, tc)
    got = _flatten(merge([StreamSpec(KIND_TRADE, "t", _chunked(a, ca)), StreamSpec(KIND_BOOK, "b", _chunked(b, cb)),
                          StreamSpec(KIND_OPTION, "o", _chunked(c, [1] * len(tc)))]))
    want = sorted([(T0 + t, KIND_TRADE, i) for i, t in enumerate(ta)] + [(T0 + t, KIND_BOOK, i) for i, t in enumerate(tb)]
                  + [(T0 + t, KIND_OPTION, i) for i, t in enumerate(tc)])
    assert got == want


def test_merge_refuses_a_stream_going_backwards_across_chunks():
    a = _arr(TRADE, [5, 6, 7, 3, 4])
    with pytest.raises(OrderingError, match="stream t: ts_recv goes backwards at record 3"):
        list(merge([StreamSpec(KIND_TRADE, "t", _chunked(a, [3]))]))


def test_merge_of_empty_streams_yields_nothing():
    assert list(merge([StreamSpec(KIND_TRADE, "t", lambda: iter([])), StreamSpec(KIND_BOOK, "b", lambda: iter([]))])) == []
