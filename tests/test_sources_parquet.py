"""Bronze Parquet options as the alternative options source (SPEC §3, §12)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import bronze
from bronze import C680, C685, D, P680, options_parquet, standard_parquet_rows
from spymaster.calendar import et_ns
from spymaster.config import Config
from spymaster.errors import CorruptInputError, OrderingError, SchemaMismatchError
from spymaster.events import KIND_OPTION, OPTION
from spymaster.sources.lake import OPRA
from spymaster.sources.session import open_session

CFG = Config()


def _pq_dir(lake):
    return lake.options_parquet_dir(D)


def _lake_with_parquet(lake, rows=None, name="part-0000.parquet"):
    bronze.standard_lake(lake, with_options=False)
    return options_parquet(_pq_dir(lake) / name, standard_parquet_rows() if rows is None else rows)


def _options(lake, cfg=CFG):
    si = open_session(lake, D, cfg)
    parts = list(si.stream(KIND_OPTION).chunks())
    return si, (np.concatenate(parts) if parts else np.zeros(0, OPTION))


def test_parquet_options_give_option_records(lake):
    _lake_with_parquet(lake)
    si, got = _options(lake)
    assert si.options_source == "parquet"
    assert si.contracts.raw_symbols == [C680, P680, C685]
    assert got.dtype == OPTION and got["contract"].tolist() == [0, 1, 2, 0]
    assert got["strike"].tolist() == [680.0, 680.0, 685.0, 680.0] and got["is_call"].tolist() == [1, 0, 1, 1]
    assert got["price"].tolist() == [1.25, 0.95, 0.45, 1.10] and got["size"].tolist() == [2, 3, 1, 5]
    assert (got["instrument_id"] == 0).all()


def test_parquet_aggressor_is_used_as_given(lake):
    _lake_with_parquet(lake)
    _, got = _options(lake)
    assert got["side"].tolist() == [1, -1, 0, 1] and (got["tick_rule"] == 0).all()


def test_parquet_null_or_nan_price_is_dropped_and_counted(lake):
    _lake_with_parquet(lake)
    si, _ = _options(lake)
    st = si.stream(KIND_OPTION).stats
    assert st.dropped == {"undef_price": 1} and st.filtered == {"not_0dte": 2}


def test_parquet_stream_is_identical_for_any_batch_size(lake):
    _lake_with_parquet(lake)
    ref = None
    for n in (1, 2, 3, 100_000):
        _, got = _options(lake, CFG.replace(**{"io.chunk_records": n}))
        assert ref is None or got.tobytes() == ref
        ref = got.tobytes()


def test_parquet_rows_outside_the_session_window_are_filtered(lake):
    rows = standard_parquet_rows() + [{"ts": et_ns(D, 17, 0) + 1, "symbol": C680, "price": 1.0}]
    _lake_with_parquet(lake, rows)
    si, got = _options(lake)
    assert len(got) == 4 and si.stream(KIND_OPTION).stats.filtered["outside_session"] == 1


def test_opra_dbn_wins_over_parquet(lake):
    bronze.standard_lake(lake)
    p = options_parquet(_pq_dir(lake) / "part-0000.parquet", standard_parquet_rows())
    si, got = _options(lake)
    assert si.options_source == "opra-dbn" and len(got) == bronze.OPTION_KEPT
    assert [f.path for f in si.options_ignored] == [p]
    assert si.manifest(with_hashes=False)["options"]["ignored_files"] == [
        "bronze/options/spy/date=2025-12-17/part-0000.parquet"]


def test_parquet_missing_column_is_refused(lake):
    p = _lake_with_parquet(lake)
    pq.write_table(pq.read_table(p).drop(["aggressor"]), p)
    with pytest.raises(SchemaMismatchError, match="lacks column 'aggressor'") as e:
        open_session(lake, D, CFG)
    assert str(p) in str(e.value)


def test_parquet_column_of_the_wrong_type_is_refused(lake):
    p = _lake_with_parquet(lake)
    t = pq.read_table(p)
    t = t.set_column(t.schema.get_field_index("price"), "price", pa.array([str(x) for x in t["price"].to_pylist()]))
    pq.write_table(t, p)
    with pytest.raises(SchemaMismatchError, match="column 'price' is string, expected a float"):
        open_session(lake, D, CFG)


def test_parquet_that_is_not_parquet_is_refused(lake):
    bronze.standard_lake(lake, with_options=False)
    p = _pq_dir(lake) / "part-0000.parquet"
    p.parent.mkdir(parents=True)
    p.write_bytes(b"not parquet")
    with pytest.raises(CorruptInputError, match="not a readable Parquet file") as e:
        open_session(lake, D, CFG)
    assert str(p) in str(e.value)


def test_parquet_ts_recv_going_backwards_across_files_is_refused(lake):
    rows = standard_parquet_rows()
    _lake_with_parquet(lake, rows[4:], "part-0000.parquet")
    options_parquet(_pq_dir(lake) / "part-0001.parquet", rows[:4])
    with pytest.raises(OrderingError, match="backwards across the file boundary") as e:
        open_session(lake, D, CFG)  # the contract pre-pass sees it before any consumer
    assert "part-0001.parquet" in str(e.value)


def test_parquet_aggressor_outside_plus_minus_one_is_refused(lake):
    rows = standard_parquet_rows()
    rows[0]["aggressor"] = 2
    _lake_with_parquet(lake, rows)
    si = open_session(lake, D, CFG)
    with pytest.raises(CorruptInputError, match="aggressor 2"):
        list(si.stream(KIND_OPTION).chunks())


def test_no_options_source_names_both_expected_places(lake):
    bronze.standard_lake(lake, with_options=False)
    from spymaster.errors import MissingInputError

    with pytest.raises(MissingInputError) as e:
        open_session(lake, D, CFG)
    msg = str(e.value)
    assert str(lake.bronze_path(OPRA, "trades", D)) in msg and str(_pq_dir(lake)) in msg


def test_parquet_dictionary_and_large_string_columns_are_accepted(lake):
    p = _lake_with_parquet(lake)
    t = pq.read_table(p)
    t = t.set_column(t.schema.get_field_index("symbol"), "symbol", pa.array(t["symbol"].to_pylist(), pa.large_string()))
    t = t.set_column(t.schema.get_field_index("right"), "right", t["right"].dictionary_encode())
    pq.write_table(t, p)
    _, got = _options(lake)
    assert got["contract"].tolist() == [0, 1, 2, 0] and got["is_call"].tolist() == [1, 0, 1, 1]


def test_parquet_and_opra_dbn_number_contracts_alike(lake, tmp_path):
    """Same trades from both sources → the same contract table and OPTION records (but side / tick_rule)."""
    bronze.standard_lake(lake)
    _, dbn_rows = _options(lake)
    other = type(lake).at(tmp_path / "pq")
    bronze.standard_lake(other, with_options=False)
    syms = {1001: C680, 1002: P680, 1005: C685, 1007: bronze.P675}
    rows = [{"ts": int(r["ts_recv"]), "symbol": syms[int(r["instrument_id"])], "price": float(r["price"]),
             "size": int(r["size"])} for r in dbn_rows]
    options_parquet(other.options_parquet_dir(D) / "part-0000.parquet",
                    [{"ts": et_ns(D, 9, 0), "symbol": bronze.C680_TOMORROW, "price": 1.0}] + rows)
    si_dbn, si_pq = open_session(lake, D, CFG), open_session(other, D, CFG)
    assert si_dbn.contracts.to_list() == si_pq.contracts.to_list()
    pq_rows = np.concatenate(list(si_pq.stream(KIND_OPTION).chunks()))
    for f in ("ts_recv", "contract", "strike", "is_call", "price", "size"):
        assert np.array_equal(dbn_rows[f], pq_rows[f]), f
