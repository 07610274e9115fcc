"""open_session: which files cover a date, validation before data flows, streams, manifest, CLI (SPEC §2.6, §3, §12)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import numpy as np
import pytest
from click.testing import CliRunner

import bronze
from bronze import D, D_PREV, END, ESH6, START, mbp10, trades, px, write
from spymaster.calendar import et_ns
from spymaster.config import Config
from spymaster.errors import CorruptInputError, MissingInputError, OrderingError, SchemaMismatchError
from spymaster.events import KIND_BOOK, KIND_OPTION, KIND_TRADE
from spymaster.sources.dbn import open_dbn
from spymaster.sources.lake import GLBX, OPRA
from spymaster.sources.session import open_session

CFG = Config()


def _drain(stream) -> int:
    return sum(len(c) for c in stream.chunks())


# ---------------------------------------------------------------------------------------- which files
def test_a_date_needs_every_utc_day_file_of_its_session(lake):
    bronze.standard_lake(lake)
    si = open_session(lake, D, CFG)
    got = [(f.role, f.utc_day) for f in si.files]
    assert got == [("es_definition", D_PREV), ("es_trades", D_PREV), ("es_mbp10", D_PREV),
                   ("es_definition", D), ("es_trades", D), ("es_mbp10", D),
                   ("opra_definition", D), ("opra_trades", D)]
    assert [s.kind for s in si.streams()] == [KIND_TRADE, KIND_BOOK, KIND_OPTION]
    assert [s.name for s in si.streams()] == ["es_trade", "es_mbp10", "option_trade"]


def test_monday_session_reads_the_sunday_evening_files(lake):
    mon, sun = dt.date(2025, 12, 15), dt.date(2025, 12, 14)
    for day in (sun, mon):
        write(lake, GLBX, "definition", day, bronze.es_definitions([("ESH6", ESH6, dt.date(2026, 3, 20), 0)]))
        write(lake, GLBX, "trades", day, trades([et_ns(day, 19 if day == sun else 10, 0)], [px(6850)]))
        write(lake, GLBX, "mbp-10", day, mbp10([]))
    bronze.write_minimal_opra(lake, mon)
    si = open_session(lake, mon, CFG)
    assert sorted({f.utc_day for f in si.files}) == [sun, mon]
    assert _drain(si.stream(KIND_TRADE)) == 2


def test_a_missing_file_names_the_expected_paths(lake):
    bronze.standard_lake(lake)
    t = lake.find_bronze(GLBX, "trades", D_PREV)
    m = lake.find_bronze(GLBX, "mbp-10", D)
    t.unlink()
    m.unlink()
    with pytest.raises(MissingInputError) as e:
        open_session(lake, D, CFG)
    assert str(t) in str(e.value) and str(m) in str(e.value) and "2025-12-17" in str(e.value)


def test_an_empty_file_in_the_lake_is_refused(lake):
    bronze.standard_lake(lake)
    p = lake.find_bronze(GLBX, "mbp-10", D)
    p.write_bytes(b"")
    with pytest.raises(CorruptInputError, match=r"empty file \(0 bytes\)") as e:
        open_session(lake, D, CFG)
    assert str(p) in str(e.value)


def test_a_file_of_the_wrong_schema_in_a_schemas_place_is_refused_when_opening(lake):
    bronze.standard_lake(lake)
    p = lake.bronze_path(GLBX, "trades", D)
    books = np.concatenate(list(open_dbn(lake.find_bronze(GLBX, "mbp-10", D)).chunks(100)))
    from spymaster.synth.dbnfile import write_dbn

    write_dbn(p, books, dataset="GLBX.MDP3", schema="mbp-10", start_ns=bronze.utc_ns(D))
    with pytest.raises(SchemaMismatchError, match="holds mbp-10 records where a trades file is required") as e:
        open_session(lake, D, CFG)
    assert str(p) in str(e.value)


def test_a_mixed_schema_file_in_a_schemas_place_is_refused_when_opening(lake):
    bronze.standard_lake(lake)
    recs = np.concatenate(list(open_dbn(lake.find_bronze(OPRA, "trades", D)).chunks(100)))
    write(lake, OPRA, "trades", D, recs, header_schema=None)
    with pytest.raises(SchemaMismatchError, match="mixed-schema file") as e:
        open_session(lake, D, CFG)
    assert "opra-pillar-20251217.trades.dbn.zst" in str(e.value)


def test_a_file_of_the_wrong_dataset_is_refused(lake):
    bronze.standard_lake(lake)
    recs = np.concatenate(list(open_dbn(lake.find_bronze(OPRA, "trades", D)).chunks(100)))
    from spymaster.synth.dbnfile import write_dbn

    write_dbn(lake.bronze_path(OPRA, "trades", D), recs, dataset="GLBX.MDP3", schema="trades", start_ns=0)
    with pytest.raises(SchemaMismatchError, match="dataset GLBX.MDP3 where a OPRA.PILLAR file is required"):
        open_session(lake, D, CFG)


# ---------------------------------------------------------------------------------------- bad data while streaming
def test_ts_recv_going_backwards_within_a_file_is_refused(lake):
    bronze.standard_lake(lake)
    ts = [et_ns(D, 9, 30), et_ns(D, 9, 31), et_ns(D, 9, 30, 30), et_ns(D, 9, 32)]
    write(lake, GLBX, "mbp-10", D, mbp10(ts))
    si = open_session(lake, D, CFG.replace(**{"io.chunk_records": 2}))
    with pytest.raises(OrderingError, match="ts_recv goes backwards at record 2") as e:
        _drain(si.stream(KIND_BOOK))
    assert "glbx-mdp3-20251217.mbp-10.dbn.zst" in str(e.value)


def test_ts_recv_going_backwards_across_the_utc_day_file_boundary_is_refused(lake):
    bronze.standard_lake(lake)
    # the 12-16 trades file ends after the 12-17 file's first record
    write(lake, GLBX, "trades", D_PREV, trades([START + 1, et_ns(D, 10, 30)], [px(6850)] * 2))
    with pytest.raises(OrderingError, match="across the file boundary") as e:
        open_session(lake, D, CFG)  # caught by the ES trades pre-scan, before any consumer
    assert "glbx-mdp3-20251217.trades.dbn.zst" in str(e.value) and "glbx-mdp3-20251216.trades.dbn.zst" in str(e.value)


def test_a_truncated_mbp10_file_is_refused(lake):
    bronze.standard_lake(lake)
    p = lake.find_bronze(GLBX, "mbp-10", D)
    raw = bytearray()
    import zstandard

    raw = zstandard.ZstdDecompressor().stream_reader(open(p, "rb")).read()
    bronze.write_zst_with_checksum(p, raw[:-100])
    si = open_session(lake, D, CFG)
    with pytest.raises(CorruptInputError, match="truncated") as e:
        _drain(si.stream(KIND_BOOK))
    assert str(p) in str(e.value)


def test_a_truncated_uncompressed_file_is_refused_when_opening(lake):
    bronze.standard_lake(lake, compressed=False)
    p = lake.find_bronze(GLBX, "mbp-10", D_PREV)
    p.write_bytes(p.read_bytes()[:-1])
    with pytest.raises(CorruptInputError, match="truncated") as e:
        open_session(lake, D, CFG)
    assert str(p) in str(e.value)


def test_corrupt_zstd_in_the_lake_is_refused(lake):
    """Every single-byte corruption of a checksummed zstd file (as Databento writes them) is refused."""
    import zstandard

    from spymaster.errors import InputError

    bronze.standard_lake(lake)
    p = lake.find_bronze(GLBX, "trades", D)
    raw = zstandard.ZstdDecompressor().stream_reader(open(p, "rb")).read()
    good = zstandard.ZstdCompressor(level=3, write_checksum=True).compress(raw)
    kinds = set()
    for pos in range(4, len(good), 3):
        data = bytearray(good)
        data[pos] ^= 0x55
        p.write_bytes(bytes(data))
        with pytest.raises(InputError) as e:
            si = open_session(lake, D, CFG)
            for s in si.streams():
                _drain(s)
        assert str(p) in str(e.value)
        kinds.add(type(e.value).__name__)
    assert "CorruptInputError" in kinds


# ---------------------------------------------------------------------------------------- streams and manifest
def test_chunks_restart_from_the_beginning_and_counters_follow_the_latest_pass(lake):
    bronze.standard_lake(lake)
    si = open_session(lake, D, CFG)
    s = si.stream(KIND_TRADE)
    it = s.chunks()
    next(it)
    assert not s.stats.complete
    assert _drain(s) == bronze.ES_KEPT_TRADES and s.stats.kept == bronze.ES_KEPT_TRADES and s.stats.complete
    assert _drain(s) == bronze.ES_KEPT_TRADES and s.stats.read == 13


def test_counters_fill_as_chunks_are_consumed(lake):
    bronze.standard_lake(lake)
    si = open_session(lake, D, CFG.replace(**{"io.chunk_records": 2}))
    s = si.stream(KIND_OPTION)
    seen = []
    for c in s.chunks():
        seen.append(s.stats.kept)
    assert seen == sorted(seen) and seen[-1] == bronze.OPTION_KEPT and len(seen) > 1


def test_manifest_is_json_with_sizes_hashes_contract_and_counts(lake):
    bronze.standard_lake(lake)
    si = open_session(lake, D, CFG)
    for s in si.streams():
        _drain(s)
    m = si.manifest()
    text = json.dumps(m, sort_keys=True)
    f0 = m["files"][0]
    p = lake.root / f0["path"]
    assert f0["size"] == p.stat().st_size and f0["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    assert m["es_contract"]["raw_symbol"] == "ESH6" and m["es_contract"]["session_trades"] == 6
    assert m["streams"]["es_trade"]["kept"] == 6 and m["streams"]["option_trade"]["dropped"]["no_definition"] == 2
    assert m["session"]["start_et"] == "2025-12-16 17:00:00 ET"
    used = {r for st in m["streams"].values() for r in (*st["filtered"], *st["dropped"])}
    assert used and used <= set(m["reasons"])  # every counted reason is explained
    again = open_session(lake, D, CFG)
    for s in again.streams():
        _drain(s)
    assert json.dumps(again.manifest(), sort_keys=True) == text  # nothing run-dependent


def test_streams_feed_the_replay_merge_in_ts_recv_order(lake):
    from spymaster.replay.merge import merge

    bronze.standard_lake(lake)
    si = open_session(lake, D, CFG.replace(**{"io.chunk_records": 2}))
    batches = list(merge(si.streams()))
    ts = np.concatenate([b.ts for b in batches])
    kinds = np.concatenate([b.kind for b in batches])
    assert (np.diff(ts) >= 0).all() and ts[0] > START and ts[-1] == END
    assert np.bincount(kinds, minlength=4)[1:].tolist() == [bronze.ES_KEPT_TRADES, bronze.ES_KEPT_BOOKS,
                                                            bronze.OPTION_KEPT]


# ---------------------------------------------------------------------------------------- CLI
def test_cli_sources_prints_files_counts_span_contract_and_drops(lake):
    from spymaster.cli import cli

    bronze.standard_lake(lake)
    res = CliRunner().invoke(cli, ["sources", "--date", "2025-12-17", "--lake", str(lake.root)])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "ES contract: ESH6 (instrument_id 200, expires 2026-03-20" in out and "roll rule" in out
    assert "4 0DTE SPY contracts (2 calls, 2 puts), strikes 675 .. 685" in out
    assert "bronze/glbx-mdp3/trades/glbx-mdp3-20251216.trades.dbn.zst  192 B" in out
    assert "records read 13, kept 6" in out and "dropped: undef_price 1" in out
    assert "span 2025-12-17 09:31:00 ET .. 2025-12-17 14:00:00 ET" in out
    assert "dropped: definition_deleted 1, no_definition 2, undef_price 1" in out


def test_cli_sources_error_is_one_line(lake, capsys):
    from spymaster.cli import main

    bronze.standard_lake(lake)
    lake.find_bronze(GLBX, "trades", D).unlink()
    with pytest.raises(SystemExit) as e:
        main(["sources", "--date", "2025-12-17", "--lake", str(lake.root)])
    assert e.value.code == MissingInputError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "glbx-mdp3-20251217.trades.dbn.zst" in err[-1]
