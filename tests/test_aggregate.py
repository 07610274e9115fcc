"""signals_multi_day.parquet (spymaster.sinks.aggregate, ``spymaster aggregate``).

Per-date Gold files are built here from rows with the Gold schema and written with the Gold
sink (the batch tests aggregate real replays of the synthetic market).
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from spymaster.cli import cli
from spymaster.errors import OutputError
from spymaster.sinks import aggregate as agg
from spymaster.sinks.parquet import read_metadata, write_parquet
from spymaster.touches.schema import SCHEMA, table_from_rows

DATES = [dt.date(2025, 12, 15), dt.date(2025, 12, 16), dt.date(2025, 12, 17)]
ROWS = {DATES[0]: 5, DATES[1]: 0, DATES[2]: 3}


def gold_rows(day: dt.date, n: int) -> list[dict]:
    return [{"event_id": f"{day}-{i}", "ts_event_ns": 1_000 * i, "date": day.isoformat(), "symbol": "SPY",
             "level_id": f"PM_HIGH_{i % 2}", "level_kind": "PM_HIGH", "direction": "UP" if i % 2 else "DOWN",
             "outcome": ["BREAK", "BOUNCE", "CHOP"][i % 3], "spot": 600.0 + i, "label_complete": True}
            for i in range(n)]


def write_day(lake, day: dt.date, n: int, *, table: pa.Table | None = None, row_group_size: int | None = None):
    t = table if table is not None else table_from_rows(gold_rows(day, n))
    path = lake.gold_path(day)
    if row_group_size is None:
        return write_parquet(t, path, {"code_version": "test", "config": {"k": day.day}, "date": day.isoformat()})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(t, path, row_group_size=row_group_size)
    return path


@pytest.fixture
def gold(lake):
    for d, n in ROWS.items():
        write_day(lake, d, n)
    return lake


def test_aggregate_row_count_and_schema(gold):
    res = agg.aggregate(gold.gold_dir)
    assert res.path == gold.multi_day_path
    t = pq.read_table(res.path)
    assert t.num_rows == sum(ROWS.values()) == res.rows
    assert t.schema.remove_metadata().equals(SCHEMA)
    assert pa.types.is_dictionary(t.schema.field("outcome").type)


def test_aggregate_rows_are_in_date_order(gold):
    t = pq.read_table(agg.aggregate(gold.gold_dir).path)
    assert t.column("date").to_pylist() == [DATES[0].isoformat()] * 5 + [DATES[2].isoformat()] * 3
    assert t.column("event_id").to_pylist()[:2] == [f"{DATES[0]}-0", f"{DATES[0]}-1"]


def test_aggregate_metadata_lists_dates_and_sources(gold):
    meta = read_metadata(agg.aggregate(gold.gold_dir).path)
    assert meta["format"] == agg.FORMAT
    assert meta["dates"] == [d.isoformat() for d in DATES]
    assert [s["rows"] for s in meta["sources"]] == [ROWS[d] for d in DATES]
    assert {s["code_version"] for s in meta["sources"]} == {"test"}
    assert len({s["config_sha256"] for s in meta["sources"]}) == 3


def test_aggregate_is_deterministic(gold):
    a = agg.aggregate(gold.gold_dir).path.read_bytes()
    b = agg.aggregate(gold.gold_dir).path.read_bytes()
    assert a == b


def test_aggregate_streams_row_groups_never_whole_files(lake, monkeypatch):
    for i, d in enumerate(DATES):
        write_day(lake, d, 10 + i, row_group_size=4)       # 3 + 3 + 3 row groups
    def refuse(*a, **k):
        raise AssertionError("aggregate must not read whole files")
    monkeypatch.setattr(pq, "read_table", refuse)
    monkeypatch.setattr(pq.ParquetFile, "read", refuse)
    res = agg.aggregate(lake.gold_dir)
    assert res.row_groups == 9 and res.rows == 33
    assert pq.ParquetFile(res.path).num_row_groups == 9


def test_aggregate_schema_mismatch_names_the_file(gold):
    odd = table_from_rows(gold_rows(DATES[1], 2)).drop_columns(["churn"]).append_column(
        "extra", pa.array([1, 2], pa.int64()))
    write_day(gold, DATES[1], 2, table=odd)
    with pytest.raises(OutputError) as ei:
        agg.aggregate(gold.gold_dir)
    msg = str(ei.value)
    assert ei.value.path == str(gold.gold_path(DATES[1]))
    assert "signals_2025-12-16.parquet" in msg and "missing columns churn" in msg and "extra columns extra" in msg
    assert "signals_2025-12-15.parquet" not in msg.split("(shared by")[1]   # only the odd file is listed
    assert not gold.multi_day_path.exists()


def test_aggregate_type_mismatch_is_described(gold):
    t = table_from_rows(gold_rows(DATES[2], 2))
    t = t.set_column(t.schema.get_field_index("outcome"), "outcome", t.column("outcome").cast(pa.string()))
    write_day(gold, DATES[2], 2, table=t)
    with pytest.raises(OutputError, match=r"signals_2025-12-17\.parquet \(outcome: string instead of dictionary"):
        agg.aggregate(gold.gold_dir)


def test_aggregate_unreadable_file_is_an_output_error_naming_it(gold):
    gold.gold_path(DATES[0]).write_bytes(b"PAR1 not really")
    with pytest.raises(OutputError) as ei:
        agg.aggregate(gold.gold_dir)
    assert ei.value.path == str(gold.gold_path(DATES[0]))


def test_aggregate_without_per_date_files_is_an_output_error(lake):
    with pytest.raises(OutputError, match="no per-date Gold files"):
        agg.aggregate(lake.gold_dir)


def test_aggregate_ignores_temporaries_and_its_own_output(gold):
    agg.aggregate(gold.gold_dir)
    (gold.gold_dir / ".signals_2025-12-18.parquet.tmp-123").write_bytes(b"partial")
    assert [d for d, _ in agg.per_date_files(gold.gold_dir)] == DATES
    assert agg.aggregate(gold.gold_dir).rows == 8


def test_aggregate_failure_midway_leaves_no_partial_output(gold, monkeypatch):
    first = agg.aggregate(gold.gold_dir).path.read_bytes()
    write_day(gold, DATES[1], 4)
    real = agg._read_group
    calls = {"n": 0}

    def failing(pf, i, path):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OutputError("cannot read row group 0: simulated", path=path)
        return real(pf, i, path)

    monkeypatch.setattr(agg, "_read_group", failing)
    with pytest.raises(OutputError, match="simulated"):
        agg.aggregate(gold.gold_dir)
    assert gold.multi_day_path.read_bytes() == first          # the previous aggregate is untouched
    assert not list(gold.gold_dir.glob(".signals_multi_day.parquet.tmp-*"))


def test_aggregate_removes_stale_temporaries(gold):
    stale = gold.gold_dir / ".signals_multi_day.parquet.tmp-99999"
    stale.write_bytes(b"left by a killed aggregate")
    agg.aggregate(gold.gold_dir)
    assert not stale.exists()


def test_aggregate_cli_selects_dates(gold):
    res = CliRunner().invoke(cli, ["aggregate", "--lake", str(gold.root), "--start-date", "2025-12-16"])
    assert res.exit_code == 0, res.output
    assert "2 dates (2025-12-16 .. 2025-12-17), 3 rows" in res.output
    assert read_metadata(gold.multi_day_path)["dates"] == ["2025-12-16", "2025-12-17"]
    res = CliRunner().invoke(cli, ["aggregate", "--lake", str(gold.root), "--dates", "2025-12-15,2025-12-17"])
    assert "2 dates (2025-12-15 .. 2025-12-17), 8 rows" in res.output


def test_aggregate_cli_schema_mismatch_exits_non_zero_naming_the_file(gold, capsys):
    from spymaster.cli import main

    write_day(gold, DATES[1], 2, table=table_from_rows(gold_rows(DATES[1], 2)).drop_columns(["churn"]))
    with pytest.raises(SystemExit) as ei:
        main(["aggregate", "--lake", str(gold.root)])
    assert ei.value.code == OutputError.exit_code
    assert "signals_2025-12-16.parquet" in capsys.readouterr().err
