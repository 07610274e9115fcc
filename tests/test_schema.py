"""The Gold table builder: columns from numpy buffers equal pyarrow's own conversion, without pandas."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spymaster.touches.schema import BOOL, COLUMN_NAMES, ENUM, F64, I64, SCHEMA, STR, column, table_from_rows

floats = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**53, 2**53))
ints = st.one_of(st.none(), st.integers(-2**63, 2**63 - 1))
strs = st.one_of(st.none(), st.text(max_size=6), st.sampled_from(["UP", "DOWN", "BREAK", "é€"]))
bools = st.one_of(st.none(), st.booleans())


def _same(a: pa.Array, b: pa.Array) -> bool:
    """Equal type, validity and values — NaN equal to NaN (pa.Array.equals treats NaN != NaN)."""
    if a.type != b.type or a.null_count != b.null_count or len(a) != len(b):
        return False
    for x, y in zip(a.to_pylist(), b.to_pylist()):
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if x != y or type(x) is not type(y):
            return False
    return True


@settings(max_examples=60, deadline=None)
@given(st.lists(floats, max_size=40))
def test_float_column_equals_pyarrow_conversion(values):
    assert _same(column(values, F64), pa.array(values, type=F64))


@settings(max_examples=60, deadline=None)
@given(st.lists(ints, max_size=40))
def test_int_column_equals_pyarrow_conversion(values):
    assert _same(column(values, I64), pa.array(values, type=I64))


@settings(max_examples=60, deadline=None)
@given(st.lists(strs, max_size=40))
def test_string_and_enum_columns_equal_pyarrow_conversion(values):
    assert _same(column(values, STR), pa.array(values, type=STR))
    enum = column(values, ENUM)
    ref = pa.array(values, type=STR).dictionary_encode()
    assert enum.type == ref.type and enum.dictionary.equals(ref.dictionary) and enum.indices.equals(ref.indices)


@settings(max_examples=40, deadline=None)
@given(st.lists(bools, max_size=40))
def test_bool_column_equals_pyarrow_conversion(values):
    assert _same(column(values, BOOL), pa.array(values, type=BOOL))


def test_none_is_null_and_nan_stays_a_value():
    arr = column([None, float("nan"), 1.5], F64)
    assert arr.null_count == 1
    assert arr.is_null().to_pylist() == [True, False, False]
    assert math.isnan(arr[1].as_py())


def test_numpy_scalars_are_accepted():
    assert column([np.float64(2.5), np.int64(3)], F64).to_pylist() == [2.5, 3.0]
    assert column([np.int64(7), None], I64).to_pylist() == [7, None]


def test_an_int_column_rejects_float_values():
    with pytest.raises(TypeError, match="barrier_added"):
        column([1, 2.5], I64, "barrier_added")


def test_a_string_column_rejects_non_strings():
    with pytest.raises(TypeError, match="level_id.*int"):
        column(["a", 3], STR, "level_id")


def test_table_has_the_exact_schema_sorted_by_time_then_level_id():
    base = {c: None for c in COLUMN_NAMES}
    rows = [dict(base, ts_event_ns=2, level_id="b"), dict(base, ts_event_ns=1, level_id="z"),
            dict(base, ts_event_ns=2, level_id="a")]
    t = table_from_rows(rows)
    assert t.schema.equals(SCHEMA)
    assert list(zip(t["ts_event_ns"].to_pylist(), t["level_id"].to_pylist())) == [(1, "z"), (2, "a"), (2, "b")]
    assert table_from_rows([]).schema.equals(SCHEMA)


def test_building_a_table_does_not_import_pandas():
    code = ("import sys\nfrom spymaster.touches.schema import COLUMN_NAMES, table_from_rows\n"
            "row = {c: None for c in COLUMN_NAMES}; row.update(ts_event_ns=1, level_id='x', direction='UP', spot=1.0)\n"
            "table_from_rows([row]); print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
