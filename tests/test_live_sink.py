"""Live part files (atomic, readable mid-session and after a crash) and their compaction."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from spymaster.errors import OutputError
from spymaster.sinks.parquet import read_metadata
from spymaster.sinks.parts import PartSink, compact, dedupe_rows, part_files, read_parts
from spymaster.touches.schema import SCHEMA, table_from_rows

T0 = 1_765_983_600_000_000_000


def row(i: int, level: str = "ROUND@680.00", complete: bool = True, outcome: str = "BREAK") -> dict:
    t = T0 + i * 60_000_000_000
    return {"event_id": f"2025-12-17_{level}_{t}", "ts_event_ns": t, "date": "2025-12-17", "symbol": "SPY",
            "level_price": 680.0, "level_kind": level.split("@")[0], "level_id": level, "direction": "UP",
            "distance": 0.1, "spot": 679.9, "basis": None, "is_first_15m": False, "is_opening_range": False,
            "barrier_state": "NEUTRAL", "barrier_added": 1, "tape_sweep_direction": "NONE", "fuel_effect": "NEUTRAL",
            "signal": "NEUTRAL", "confidence": "LOW", "runway_direction": "UP", "runway_quality": "CLEAR",
            "outcome": outcome, "future_price_5min": 680.2, "label_complete": complete}


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_parts_flush_every_flush_rows_rows(tmp_path):
    sink = PartSink(tmp_path / "parts", flush_seconds=3600, flush_rows=3, clock=Clock())
    for i in range(7):
        sink.add(row(i))
    assert [p.name for p in part_files(tmp_path / "parts")] == ["part-r0001-000000.parquet", "part-r0001-000001.parquet"]
    assert sink.pending == 1
    assert sink.flush().name == "part-r0001-000002.parquet"
    assert read_parts(tmp_path / "parts").num_rows == 7


def test_parts_flush_every_flush_seconds(tmp_path):
    clock = Clock()
    sink = PartSink(tmp_path / "parts", flush_seconds=10, flush_rows=1000, clock=clock)
    sink.add(row(0))
    clock.t = 9.9
    assert sink.maybe_flush() is None
    clock.t = 10.0
    assert sink.maybe_flush() is not None
    assert sink.maybe_flush() is None          # nothing pending


def test_part_files_are_readable_mid_session_with_the_gold_schema(tmp_path):
    sink = PartSink(tmp_path / "parts", flush_seconds=3600, flush_rows=2, clock=Clock(),
                    meta=lambda: {"gaps": [], "note": "mid-session"})
    sink.add(row(0))
    sink.add(row(1))
    sink.add(row(2))                           # pending, not flushed
    (p,) = part_files(tmp_path / "parts")
    t = pq.read_table(p)
    assert t.num_rows == 2 and t.schema.equals(SCHEMA, check_metadata=False)
    md = read_metadata(p)
    assert md["part"]["rows"] == 2 and md["live"]["note"] == "mid-session"


def test_part_files_survive_a_crash_and_temporaries_are_ignored(tmp_path):
    d = tmp_path / "parts"
    sink = PartSink(d, flush_seconds=3600, flush_rows=1, clock=Clock())
    sink.add(row(0))
    sink.add(row(1))
    # a crash in the middle of writing the third part leaves only a hidden temporary behind
    (d / ".part-r0001-000002.parquet.tmp-999").write_bytes(b"PAR1 half a file")
    assert len(part_files(d)) == 2
    assert read_parts(d).num_rows == 2
    # the next run numbers its parts after the crashed one's
    again = PartSink(d, flush_seconds=3600, flush_rows=1, clock=Clock())
    again.add(row(2))
    assert [p.name for p in part_files(d)][-1] == "part-r0002-000000.parquet"


def test_compaction_gives_the_replay_table_sorted_and_typed(tmp_path):
    d = tmp_path / "parts"
    sink = PartSink(d, flush_seconds=3600, flush_rows=2, clock=Clock())
    rows = [row(3), row(1, "VWAP"), row(2), row(1)]       # resolution order is not output order
    for r in rows:
        sink.add(r)
    sink.flush()
    gold = tmp_path / "gold" / "signals_2025-12-17.parquet"
    path, table = compact(d, gold, {"format": "spymaster.gold.v1", "live": {"gaps": []}})
    assert table.equals(table_from_rows(rows))
    assert pq.read_table(path).replace_schema_metadata(None).equals(table_from_rows(rows))
    assert read_metadata(path)["live"] == {"gaps": []}
    assert not d.exists()                                  # parts removed after the atomic write


def test_compaction_writes_each_touch_once_preferring_a_complete_label(tmp_path):
    d = tmp_path / "parts"
    first = PartSink(d, flush_seconds=3600, flush_rows=10, clock=Clock())
    first.add(row(0))
    first.add(row(1, complete=False, outcome="CHOP"))     # a run stopped before its label resolved
    first.flush()
    rerun = PartSink(d, flush_seconds=3600, flush_rows=10, clock=Clock())
    rerun.add(row(1))                                      # the rerun resolved it
    rerun.add(row(0))
    rerun.flush()
    _, table = compact(d, tmp_path / "g.parquet", {}, keep_parts=True)
    assert table.num_rows == 2
    assert table.column("label_complete").to_pylist() == [True, True]
    assert len(part_files(d)) == 2                         # keep_parts


def test_dedupe_keeps_a_complete_row_over_a_later_incomplete_one():
    out = dedupe_rows([row(0), row(0, complete=False, outcome="CHOP")])
    assert len(out) == 1 and out[0]["label_complete"] is True


def test_compaction_of_no_parts_writes_an_empty_day_file(tmp_path):
    _, table = compact(tmp_path / "none", tmp_path / "g.parquet", {})
    assert table.num_rows == 0 and table.schema.equals(SCHEMA, check_metadata=False)


def test_an_unreadable_part_is_an_output_error_naming_it(tmp_path):
    d = tmp_path / "parts"
    d.mkdir()
    bad = d / "part-r0001-000000.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(OutputError, match="part-r0001-000000.parquet"):
        read_parts(d)
