"""The low-level DBN reader (SPEC §2.6, §12; notes §1): every real format decodes, bad files are refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import databento as db
import databento_dbn as dbn
import numpy as np
import pytest
import zstandard

from bronze import D, ESH6, GLBX_DS, px, trades, utc_ns, write_zst_with_checksum, mbp10
from spymaster.errors import CorruptInputError, MissingInputError, OrderingError, SchemaMismatchError
from spymaster.sources.dbn import OrderCheck, check_schema, file_sha256, open_dbn, read_dbn, record_dtype, schema_rtypes
from spymaster.synth.dbnfile import write_dbn


def _all_real_dbn(real: Path) -> list[Path]:
    return sorted(p for p in real.rglob("*") if p.name.endswith((".dbn", ".dbn.zst")))


def _reference_bytes(path: Path, schema: str) -> bytes:
    """databento's own decoding (iteration upgrades to v3), records of ``schema`` only."""
    rtypes = schema_rtypes(schema)
    size = record_dtype(schema).itemsize
    out = []
    for rec in db.DBNStore.from_file(path):
        rt = rec.rtype.value if hasattr(rec.rtype, "value") else rec.rtype
        if int(rt) in rtypes:
            out.append(bytes(rec)[:size])
    return b"".join(out)


def _write_trades(path: Path, n: int = 50, **kw) -> np.ndarray:
    recs = trades([utc_ns(D, 15) + i for i in range(n)], [px(6850 + 0.25 * (i % 7)) for i in range(n)], 1, "B", ESH6)
    write_dbn(path, recs, dataset=GLBX_DS, schema="trades", start_ns=utc_ns(D), **kw)
    return recs


# ---------------------------------------------------------------------------------------- real files
def test_every_real_dbn_file_decodes_in_the_v3_layout(real_data):
    """format_coverage (DBN v1/v2/v3, .dbn and .dbn.zst), ES futures, options and definitions."""
    paths = _all_real_dbn(real_data)
    assert len(paths) >= 45
    versions = set()
    for p in paths:
        h = open_dbn(p)
        versions.add(h.version)
        schemas = [h.schema] if h.schema else ["trades", "mbp-10", "mbo", "mbp-1", "definition", "ohlcv-1s"]
        for sch in schemas:
            chunks = list(h.chunks(3, schema=None if h.schema else sch))
            for c in chunks:
                assert c.dtype == record_dtype(sch) and len(c) <= 3
            got = b"".join(c.tobytes() for c in chunks)
            assert got == _reference_bytes(p, sch), p
    assert versions == {1, 2, 3}


def test_old_definition_layouts_are_upgraded_to_v3(real_data):
    for name in ("test_data.definition.v1.dbn.zst", "test_data.definition.v2.dbn.zst"):
        arr = np.concatenate(list(read_dbn(real_data / "format_coverage" / "dbn" / name, "definition")))
        assert arr.dtype.itemsize == 520 and list(arr["raw_symbol"]) == [b"MSFT", b"MSFT"]
        assert (arr["length"] == 130).all()


def test_real_es_definitions_keep_spreads_and_symbology(real_data):
    h = open_dbn(real_data / "definitions" / "definition-glbx-es-futspread.dbn.zst")
    arr = np.concatenate(list(h.chunks(10)))
    assert set(arr["instrument_class"].tolist()) == {b"S"}
    assert len(h.mappings) == 41 and "ESZ3" in h.mappings
    assert h.ids_for("ESZ3", __import__("datetime").date(2023, 8, 15)) == (314863,)


def test_mixed_schema_live_capture_reads_one_schema_on_request(real_data):
    p = real_data / "format_coverage" / "databento-python" / "LIVE" / "test_data.live.dbn.zst"
    assert open_dbn(p).schema is None
    got = np.concatenate(list(read_dbn(p, schema="mbo", count=2)))
    assert len(got) == 5 and (got["rtype"] == 160).all()
    with pytest.raises(SchemaMismatchError, match="mixed-schema"):
        list(read_dbn(p))


# ---------------------------------------------------------------------------------------- generated files
@pytest.mark.parametrize("name", ["t.dbn", "t.dbn.zst"])
def test_reader_equals_databento_to_ndarray_for_any_chunk_size(tmp_path, name):
    p = tmp_path / name
    _write_trades(p, 101)
    ref = db.DBNStore.from_file(p).to_ndarray()
    for count in (1, 7, 100, 1000):
        chunks = list(read_dbn(p, "trades", count))
        assert all(len(c) <= count for c in chunks)
        assert np.concatenate(chunks).tobytes() == ref.tobytes()


def test_chunks_are_writeable_and_reading_twice_restarts(tmp_path):
    p = tmp_path / "t.dbn.zst"
    _write_trades(p, 10)
    h = open_dbn(p)
    a = np.concatenate(list(h.chunks(4)))
    b = np.concatenate(list(h.chunks(4)))
    assert a.tobytes() == b.tobytes() and a.flags.writeable


def test_ts_out_single_schema_file_is_read_without_shifting(tmp_path):
    recs = trades([utc_ns(D, 15) + i for i in range(5)], [px(6850)] * 5, 1, "A", ESH6)
    md = dbn.Metadata(GLBX_DS, utc_ns(D), dbn.SType.INSTRUMENT_ID, dbn.SType.INSTRUMENT_ID, dbn.Schema.TRADES,
                      ts_out=True)
    raw = np.zeros(5, dtype=[("rec", "V48"), ("ts_out", "<u8")])
    raw["rec"] = recs.view("V48")
    raw["ts_out"] = 123
    p = tmp_path / "ts_out.dbn"
    p.write_bytes(md.encode() + raw.tobytes())
    got = np.concatenate(list(read_dbn(p, "trades")))
    assert got.tobytes() == recs.tobytes()


# ---------------------------------------------------------------------------------------- bad input
def test_missing_file_is_refused(tmp_path):
    with pytest.raises(MissingInputError, match="file not found") as e:
        open_dbn(tmp_path / "nope.dbn.zst")
    assert "nope.dbn.zst" in str(e.value)


def test_empty_file_is_refused(tmp_path):
    p = tmp_path / "empty.trades.dbn.zst"
    p.write_bytes(b"")
    with pytest.raises(CorruptInputError, match=r"empty file \(0 bytes\)") as e:
        open_dbn(p)
    assert str(p) in str(e.value)


@pytest.mark.parametrize("cut", [2, 5, 30])
def test_file_cut_inside_the_header_is_refused(tmp_path, cut):
    full = tmp_path / "full.dbn"
    _write_trades(full, 3)
    raw = full.read_bytes()[:cut]
    plain, packed = tmp_path / "cut.dbn", tmp_path / "cut.dbn.zst"
    plain.write_bytes(raw)
    packed.write_bytes(zstandard.ZstdCompressor().compress(raw))
    for p in (plain, packed):
        with pytest.raises(CorruptInputError, match="header|not a DBN file") as e:
            open_dbn(p)
        assert p.name in str(e.value)


def test_truncated_uncompressed_file_is_refused_when_opened(tmp_path):
    full = tmp_path / "t.dbn"
    _write_trades(full, 10)
    p = tmp_path / "trunc.dbn"
    p.write_bytes(full.read_bytes()[:-10])
    with pytest.raises(CorruptInputError, match=r"truncated: the file ends inside record 9 \(38 of 48 bytes\)") as e:
        open_dbn(p)
    assert "trunc.dbn" in str(e.value)


def test_truncated_zstd_file_is_refused_before_its_last_chunk_is_yielded(tmp_path):
    full = tmp_path / "t.dbn"
    _write_trades(full, 10)
    p = write_zst_with_checksum(tmp_path / "trunc.dbn.zst", full.read_bytes()[:-10])
    got = []
    with pytest.raises(CorruptInputError, match="truncated") as e:
        for c in read_dbn(p, "trades", count=4):
            got.append(c)
    assert "trunc.dbn.zst" in str(e.value)
    assert sum(len(c) for c in got) == 8  # the chunk holding the partial record never reaches the consumer


@pytest.mark.parametrize("frac", [0.25, 0.5, 0.999])
def test_zstd_file_cut_inside_a_frame_is_refused_when_opened(tmp_path, frac):
    """Without the frame walk a cut at a block boundary would decode as a shorter, complete-looking file."""
    full = tmp_path / "t.dbn"
    rng = np.random.default_rng(3)
    n = 60_000
    recs = trades([utc_ns(D, 15) + i for i in range(n)], list(rng.integers(1, 10**12, n)), 1, "B", ESH6)
    write_dbn(full, recs, dataset=GLBX_DS, schema="trades", start_ns=utc_ns(D))
    z = zstandard.ZstdCompressor(level=3, write_checksum=True).compress(full.read_bytes())
    p = tmp_path / "cut.trades.dbn.zst"
    p.write_bytes(z[:int(len(z) * frac)])
    with pytest.raises(CorruptInputError, match="truncated zstd stream: the file ends inside") as e:
        read_dbn(p, "trades")
    assert "cut.trades.dbn.zst" in str(e.value)


def test_bytes_after_the_last_zstd_frame_are_refused(tmp_path):
    full = tmp_path / "t.dbn"
    _write_trades(full, 10)
    p = tmp_path / "tail.dbn.zst"
    p.write_bytes(zstandard.ZstdCompressor().compress(full.read_bytes()) + b"garbage")
    with pytest.raises(CorruptInputError, match="no frame magic"):
        open_dbn(p)


def test_multi_frame_zstd_files_are_read_across_frames(tmp_path):
    full = tmp_path / "t.dbn"
    recs = _write_trades(full, 100)
    raw = full.read_bytes()
    p = tmp_path / "multi.dbn.zst"
    p.write_bytes(zstandard.ZstdCompressor().compress(raw[:1000]) + zstandard.ZstdCompressor().compress(raw[1000:]))
    assert np.concatenate(list(read_dbn(p, "trades", 7))).tobytes() == recs.tobytes()


def test_corrupt_zstd_is_refused(tmp_path):
    full = tmp_path / "t.dbn"
    _write_trades(full, 2000)
    data = bytearray(write_zst_with_checksum(tmp_path / "ok.dbn.zst", full.read_bytes()).read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 16):
        data[i] ^= 0xFF
    p = tmp_path / "corrupt.dbn.zst"
    p.write_bytes(bytes(data))
    with pytest.raises(CorruptInputError, match="corrupt zstd|rtype|backwards") as e:
        for _ in read_dbn(p, "trades", count=100):
            pass
    assert "corrupt.dbn.zst" in str(e.value)


def test_not_a_dbn_file_is_refused(tmp_path):
    p = tmp_path / "junk.dbn"
    p.write_bytes(b"PAR1 this is no DBN data at all")
    with pytest.raises(CorruptInputError, match="not a DBN file"):
        open_dbn(p)


def test_wrong_schema_file_is_refused(tmp_path):
    p = tmp_path / "book.dbn.zst"
    write_dbn(p, mbp10([utc_ns(D, 15)]), dataset=GLBX_DS, schema="mbp-10", start_ns=utc_ns(D))
    with pytest.raises(SchemaMismatchError, match="holds mbp-10 records where a trades file is required") as e:
        read_dbn(p, "trades")
    assert "book.dbn.zst" in str(e.value)


def test_mixed_schema_file_is_refused_where_a_schema_is_required(tmp_path):
    p = tmp_path / "mixed.dbn.zst"
    write_dbn(p, trades([utc_ns(D, 15)], [px(6850)]), dataset=GLBX_DS, schema=None, start_ns=utc_ns(D))
    with pytest.raises(SchemaMismatchError, match=r"mixed-schema file \(metadata schema is None\)"):
        check_schema(open_dbn(p), "trades")


def test_wrong_dataset_is_refused(tmp_path):
    p = tmp_path / "t.dbn"
    _write_trades(p, 2)
    with pytest.raises(SchemaMismatchError, match="dataset GLBX.MDP3 where a OPRA.PILLAR file is required"):
        check_schema(open_dbn(p), "trades", "OPRA.PILLAR")


def test_records_of_another_schema_behind_a_trades_header_are_refused(tmp_path):
    md = dbn.Metadata(GLBX_DS, utc_ns(D), dbn.SType.INSTRUMENT_ID, dbn.SType.INSTRUMENT_ID, dbn.Schema.TRADES)
    p = tmp_path / "liar.dbn.zst"
    p.write_bytes(zstandard.ZstdCompressor().compress(md.encode() + mbp10([utc_ns(D, 15)] * 2).tobytes()))
    with pytest.raises(CorruptInputError, match="record 0 has rtype 10 and length 368 bytes"):
        list(read_dbn(p, "trades"))


# ---------------------------------------------------------------------------------------- ordering, hashing
def test_ts_recv_going_backwards_within_a_file_is_refused(tmp_path):
    oc = OrderCheck()
    oc.check(np.array([1, 2, 2, 5], np.int64), tmp_path / "a.dbn", 0)
    with pytest.raises(OrderingError, match=r"backwards at record 6: 3 < 6") as e:
        oc.check(np.array([5, 6, 3], np.int64), tmp_path / "a.dbn", 4)
    assert "a.dbn" in str(e.value)


def test_ts_recv_going_backwards_across_files_is_refused(tmp_path):
    oc = OrderCheck()
    oc.check(np.array([10, 20], np.int64), tmp_path / "day1.dbn", 0)
    with pytest.raises(OrderingError, match=r"across the file boundary: record 0 has 15 < 20 of the last record of day1.dbn") as e:
        oc.check(np.array([15, 30], np.int64), tmp_path / "day2.dbn", 0)
    assert "day2.dbn" in str(e.value)


def test_file_sha256_is_the_hash_of_the_file_bytes(tmp_path):
    p = tmp_path / "t.dbn.zst"
    _write_trades(p, 100)
    assert file_sha256(p) == hashlib.sha256(p.read_bytes()).hexdigest()
    assert file_sha256(p) == file_sha256(str(p))


def test_file_sha256_prefetched_in_the_background_equals_the_direct_hash(tmp_path):
    from spymaster.sources import dbn as dbn_mod

    paths = []
    for i in range(3):
        p = tmp_path / f"t{i}.dbn"
        _write_trades(p, 1000 + i)
        paths.append(p)
    dbn_mod.clear_hash_cache()
    dbn_mod.prefetch_sha256(paths)
    assert [file_sha256(p) for p in paths] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def test_record_layouts_per_dbn_version_agree_with_databento():
    from databento.common.constants import SCHEMA_STRUCT_MAP, SCHEMA_STRUCT_MAP_V1, SCHEMA_STRUCT_MAP_V2

    from spymaster.sources.dbn import _version_dtype

    for version, table in ((3, SCHEMA_STRUCT_MAP), (1, SCHEMA_STRUCT_MAP_V1), (2, SCHEMA_STRUCT_MAP_V2)):
        for schema, cls in table.items():
            assert _version_dtype(str(schema), version) == np.dtype(cls._dtypes), (schema, version)
