"""Strict, chunked DBN reading into numpy (the current DBN v3 record layouts).

:func:`open_dbn` reads and validates a file's header; :func:`read_dbn` (or
:meth:`DbnHeader.chunks`) yields bounded-memory numpy structured arrays of at most ``count``
records. The fast path is the one ``DBNStore.to_ndarray(count=…)`` uses — read ``count``
records' worth of decompressed bytes and view them with ``np.frombuffer`` — with these
differences, each of which is a refusal databento itself does not make:

* a trailing partial record (truncated file) raises :class:`CorruptInputError` (databento only
  warns and drops it); for an uncompressed file this is detected when the header is opened;
* a ``.zst`` file that ends inside a zstd frame is refused when the header is opened (a walk
  over the frame and block headers, :func:`check_zstd_frames`) — a cut at a block boundary
  would otherwise decode as a shorter, apparently complete file;
* a file cut inside its header, an empty file, bad magic or a zstd decoding error raise
  :class:`CorruptInputError` naming the file;
* every record's ``length`` and ``rtype`` are checked against the schema (catches corrupt data,
  a file of another schema behind a lying header, garbage after a zstd frame without checksum);
* single-schema files written with ``ts_out`` are read correctly (``to_ndarray`` shifts them);
* DBN v1/v2 files whose record layout differs from v3 (definition, statistics) are upgraded to
  the v3 layout through databento-dbn's decoder (per-record work; only old files pay it);
* mixed-schema files (metadata ``schema`` None, e.g. live captures) are read one schema at a
  time through the decoder (``schema=`` is required for them).

Arrays are writeable (each chunk owns a fresh, uninitialized buffer that the read fills). Also here: :class:`OrderCheck` (the
``ts_recv`` ordering rule across chunks and files), :class:`StreamStats` (read / kept /
filtered / dropped counters of a stream) and :func:`file_sha256` (a streamed, cached hash).

Units: timestamps are ns since the epoch (UTC); prices int64 in 1e-9 units.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

import databento_dbn as dbn
import numba
import numpy as np
import zstandard

from spymaster.errors import CorruptInputError, InputError, MissingInputError, OrderingError, SchemaMismatchError

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
DBN_MAGIC = b"DBN"
MAX_DBN_VERSION = 3
UNDEF_TIMESTAMP = 2**64 - 1
_OHLCV_DEPRECATED_RTYPE = 0x11
_READ_BLOCK = 1 << 20


# schema → record class, as databento.common.constants has it (kept here: importing databento costs ~1 s of pandas)
_V3 = {"mbo": dbn.MBOMsg, "mbp-1": dbn.MBP1Msg, "tbbo": dbn.MBP1Msg, "mbp-10": dbn.MBP10Msg, "trades": dbn.TradeMsg,
       "ohlcv-1s": dbn.OHLCVMsg, "ohlcv-1m": dbn.OHLCVMsg, "ohlcv-1h": dbn.OHLCVMsg, "ohlcv-1d": dbn.OHLCVMsg,
       "ohlcv-eod": dbn.OHLCVMsg, "definition": dbn.InstrumentDefMsg, "statistics": dbn.StatMsg,
       "status": dbn.StatusMsg, "imbalance": dbn.ImbalanceMsg, "cmbp-1": dbn.CMBP1Msg, "cbbo-1s": dbn.CBBOMsg,
       "cbbo-1m": dbn.CBBOMsg, "tcbbo": dbn.CBBOMsg, "bbo-1s": dbn.BBOMsg, "bbo-1m": dbn.BBOMsg}
_OLD = {1: {"definition": dbn.InstrumentDefMsgV1, "statistics": dbn.StatMsgV1},
        2: {"definition": dbn.InstrumentDefMsgV2, "statistics": dbn.StatMsgV1}}


def record_dtype(schema: str) -> np.dtype:
    """The numpy dtype of one record of ``schema`` in the current (v3) layout."""
    try:
        return np.dtype(_V3[schema]._dtypes)
    except KeyError:
        raise ValueError(f"unknown DBN schema {schema!r}") from None


def schema_rtypes(schema: str) -> tuple[int, ...]:
    """The rtype values a file of ``schema`` may hold."""
    rt = int(dbn.RType.from_schema(dbn.Schema(schema)).value)
    if schema.startswith("ohlcv-"):
        return (rt, _OHLCV_DEPRECATED_RTYPE)
    return (rt,)


def _version_dtype(schema: str, version: int) -> np.dtype | None:
    """The on-disk record dtype of ``schema`` in DBN ``version`` (None: no such schema in that version)."""
    if version < 3 and schema == "ohlcv-eod":
        return None
    cls = _OLD.get(version, {}).get(schema) or _V3.get(schema)
    return None if cls is None else np.dtype(cls._dtypes)


# ---------------------------------------------------------------------------------------- header
@dataclass(frozen=True)
class DbnHeader:
    """A DBN file's validated header (metadata) and how to read its records.

    ``mappings`` maps raw symbol → tuple of ``(start_date, end_date, instrument_id)`` intervals
    (UTC dates, end exclusive) from the metadata symbology.
    """

    path: Path
    size: int                    # bytes on disk
    compressed: bool             # zstd
    version: int                 # DBN version as written (1, 2, 3)
    dataset: str
    schema: str | None           # None = mixed-schema file
    start_ns: int
    end_ns: int | None
    ts_out: bool
    header_len: int              # bytes of the decompressed DBN header (magic + length + metadata)
    symbols: tuple[str, ...]
    stype_in: str | None
    mappings: dict[str, tuple[tuple[dt.date, dt.date, int], ...]] = field(repr=False)

    @property
    def record_size(self) -> int | None:
        """Bytes per record on disk (single-schema files), ts_out suffix included."""
        if self.schema is None:
            return None
        d = _version_dtype(self.schema, self.version)
        return None if d is None else d.itemsize + (8 if self.ts_out else 0)

    def ids_for(self, raw_symbol: str, day: dt.date) -> tuple[int, ...]:
        """instrument_ids the metadata maps ``raw_symbol`` to on UTC ``day``."""
        return tuple(iid for (a, b, iid) in self.mappings.get(raw_symbol, ()) if a <= day < b)

    def chunks(self, count: int, *, schema: str | None = None, validate: bool = True) -> Iterator[np.ndarray]:
        """Chunks of at most ``count`` records (v3 layout); ``schema`` selects one from a mixed file."""
        return _iter_chunks(self, count, schema, validate)


_SKIPPABLE_LO, _SKIPPABLE_HI = 0x184D2A50, 0x184D2A5F


def check_zstd_frames(path: Path) -> int:
    """Walk the zstd frame and block headers of ``path`` (no decompression); the number of frames.

    Raises :class:`CorruptInputError` if the file ends inside a frame (a ``.zst`` cut anywhere,
    even at a block boundary, which a streaming decompressor reads as a shorter complete file),
    or if bytes after a frame are not another frame. Cost: one 3-byte ``pread`` per compressed
    block (each block holds at most 128 KiB of output).
    """
    size = path.stat().st_size
    frames = 0
    fd = os.open(path, os.O_RDONLY)

    def cut(where: str, need: int) -> CorruptInputError:
        return CorruptInputError(f"truncated zstd stream: the file ends inside {where} of frame {frames} "
                                 f"({size} bytes; at least {need} needed)", path=path)

    try:
        pos = 0
        while pos < size:
            head = os.pread(fd, 5, pos)
            if len(head) < 4:
                raise cut("the frame magic", pos + 4)
            m = int.from_bytes(head[:4], "little")
            if _SKIPPABLE_LO <= m <= _SKIPPABLE_HI:
                n = os.pread(fd, 4, pos + 4)
                pos += 8 + (int.from_bytes(n, "little") if len(n) == 4 else size)
                if pos > size:
                    raise cut("a skippable frame", pos)
                continue
            if head[:4] != ZSTD_MAGIC:
                raise CorruptInputError(f"corrupt zstd stream: no frame magic at byte {pos} (after {frames} "
                                        "complete frames)", path=path)
            if len(head) < 5:
                raise cut("the frame header", pos + 5)
            fhd = head[4]
            single = (fhd >> 5) & 1
            fcs = (0 if not single else 1, 2, 4, 8)[fhd >> 6]
            did = (0, 1, 2, 4)[fhd & 3]
            checksum = 4 if (fhd >> 2) & 1 else 0
            pos += 5 + (0 if single else 1) + did + fcs
            while True:
                bh_b = os.pread(fd, 3, pos)
                if len(bh_b) < 3:
                    raise cut("a block header", pos + 3)
                bh = int.from_bytes(bh_b, "little")
                btype, bsize = (bh >> 1) & 3, bh >> 3
                if btype == 3:
                    raise CorruptInputError(f"corrupt zstd stream: reserved block type at byte {pos}", path=path)
                pos += 3 + (1 if btype == 1 else bsize)
                if pos > size:
                    raise cut("a block", pos)
                if bh & 1:
                    break
            pos += checksum
            if pos > size:
                raise cut("the last block or checksum", pos)
            frames += 1
    finally:
        os.close(fd)
    return frames


def _open_raw(path: Path) -> tuple[BinaryIO, Any, bool]:
    """Open ``path``: (file, reader of the decompressed DBN bytes, zstd?) — zstd detected by content."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise MissingInputError("file not found", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}", path=path) from None
    magic = f.read(4)
    f.seek(0)
    if magic == ZSTD_MAGIC:
        return f, zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True, closefd=False), True
    return f, f, False


def _read_exact(reader: Any, n: int, path: Path, what: str) -> bytes:
    try:
        data = reader.read(n)
    except zstandard.ZstdError as exc:
        raise CorruptInputError(f"corrupt zstd data in the {what}: {exc}", path=path) from None
    return data


def open_dbn(path: str | Path) -> DbnHeader:
    """Read and validate the header of a DBN file (``.dbn`` or ``.dbn.zst``, detected by content).

    Raises :class:`MissingInputError` if the file does not exist and :class:`CorruptInputError`
    for an empty file, unknown magic, a header cut short, invalid metadata, a DBN version this
    build cannot read, or (uncompressed files) a size that is not a whole number of records.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise MissingInputError("file not found", path=p) from None
    if not p.is_file():
        raise MissingInputError("not a regular file", path=p)
    if size == 0:
        raise CorruptInputError("empty file (0 bytes)", path=p)
    f, reader, compressed = _open_raw(p)
    with f:
        head = _read_exact(reader, 8, p, "DBN header")
        if not compressed and not head.startswith(DBN_MAGIC):
            raise CorruptInputError("not a DBN file (neither DBN nor zstd magic bytes)", path=p)
        if compressed and len(head) >= 3 and not head.startswith(DBN_MAGIC):
            raise CorruptInputError("zstd stream does not hold DBN data (no DBN magic after decompression)", path=p)
        if len(head) < 8:
            raise CorruptInputError(f"file ends inside the DBN header ({len(head)} of at least 8 bytes)", path=p)
        version = head[3]
        if version < 1 or version > MAX_DBN_VERSION:
            raise CorruptInputError(f"unsupported DBN version {version} (this build reads 1..{MAX_DBN_VERSION})", path=p)
        md_len = int.from_bytes(head[4:8], "little")
        body = _read_exact(reader, md_len, p, "DBN header")
        if len(body) < md_len:
            raise CorruptInputError(f"file ends inside the DBN header ({8 + len(body)} of {8 + md_len} bytes)", path=p)
    try:
        md = dbn.Metadata.decode(head + body, upgrade_policy=dbn.VersionUpgradePolicy.AS_IS)
    except Exception as exc:  # databento_dbn.DBNError
        raise CorruptInputError(f"invalid DBN metadata: {exc}", path=p) from None
    mappings: dict[str, tuple[tuple[dt.date, dt.date, int], ...]] = {}
    for raw, intervals in (md.mappings or {}).items():
        ivs = []
        for iv in intervals:
            try:
                ivs.append((iv["start_date"], iv["end_date"], int(iv["symbol"])))
            except (KeyError, TypeError, ValueError):
                continue  # a mapping to a non-numeric symbol is not an instrument_id mapping
        if ivs:
            mappings[str(raw)] = tuple(ivs)
    schema = str(md.schema) if md.schema is not None else None
    stype_in = None if md.stype_in is None else str(md.stype_in)
    header = DbnHeader(path=p, size=size, compressed=compressed, version=int(md.version), dataset=str(md.dataset),
                       schema=schema, start_ns=int(md.start),
                       end_ns=None if md.end is None or md.end == UNDEF_TIMESTAMP else int(md.end),
                       ts_out=bool(md.ts_out), header_len=8 + md_len, symbols=tuple(md.symbols or ()),
                       stype_in=stype_in, mappings=mappings)
    if schema is not None:
        try:
            record_dtype(schema)
        except ValueError:
            raise CorruptInputError(f"unknown schema {schema!r} in the header", path=p) from None
    if compressed:
        check_zstd_frames(p)
    if not compressed and header.record_size:
        loose = (size - header.header_len) % header.record_size
        if loose:
            n = (size - header.header_len) // header.record_size
            raise CorruptInputError(
                f"truncated: the file ends inside record {n} ({loose} of {header.record_size} bytes); "
                "refusing a partial trailing record", path=p)
    return header


def check_schema(header: DbnHeader, expect_schema: str, expect_dataset: str | None = None) -> None:
    """:class:`SchemaMismatchError` unless ``header`` is a single-schema ``expect_schema`` file."""
    if header.schema is None:
        raise SchemaMismatchError(f"mixed-schema file (metadata schema is None) where a {expect_schema} file is required",
                                  path=header.path)
    if header.schema != expect_schema:
        raise SchemaMismatchError(f"holds {header.schema} records where a {expect_schema} file is required",
                                  path=header.path)
    if expect_dataset is not None and header.dataset != expect_dataset:
        raise SchemaMismatchError(f"dataset {header.dataset} where a {expect_dataset} file is required",
                                  path=header.path)


def read_dbn(path: str | Path, expect_schema: str | None = None, count: int = 100_000, *,
             schema: str | None = None) -> Iterator[np.ndarray]:
    """Validate the header of ``path`` now, then iterate its records in chunks of ≤ ``count``.

    ``expect_schema`` refuses a file of any other schema (or a mixed one) with
    :class:`SchemaMismatchError`; ``schema`` picks the records of one schema out of a mixed file.
    """
    header = open_dbn(path)
    if expect_schema is not None:
        check_schema(header, expect_schema)
    return header.chunks(count, schema=schema)


# ---------------------------------------------------------------------------------------- records
def _fill(reader: Any, buf: np.ndarray, path: Path, index: int) -> int:
    """Read into ``buf`` (uint8) until it is full or the input ends; the number of bytes read."""
    mv = memoryview(buf)
    got = 0
    try:
        while got < buf.shape[0]:
            k = reader.readinto(mv[got:])
            if not k:
                break
            got += k
    except zstandard.ZstdError as exc:
        raise CorruptInputError(f"corrupt zstd data after record {index}: {exc}", path=path) from None
    return got


@numba.njit(cache=True, nogil=True)
def _first_bad_record(length, rtype, want_length, rt_a, rt_b):  # pragma: no cover - compiled
    """Index of the first record whose length / rtype is not the schema's, or -1 (one pass, no temporaries)."""
    for i in range(length.shape[0]):
        if length[i] != want_length or (rtype[i] != rt_a and rtype[i] != rt_b):
            return i
    return -1


@numba.njit(cache=True, nogil=True)
def _first_backwards(ts, prev):  # pragma: no cover - compiled
    """Index of the first ts below its predecessor (``prev`` precedes ts[0]), or -1."""
    last = prev
    for i in range(ts.shape[0]):
        if ts[i] < last:
            return i
        last = ts[i]
    return -1


def _check_records(arr: np.ndarray, schema: str, itemsize: int, path: Path, index: int) -> None:
    rtypes = schema_rtypes(schema)
    i = int(_first_bad_record(arr["length"], arr["rtype"], itemsize // 4, rtypes[0], rtypes[-1]))
    if i >= 0:
        raise CorruptInputError(
            f"record {index + i} has rtype {int(arr['rtype'][i])} and length {int(arr['length'][i]) * 4} bytes; "
            f"a {schema} file holds rtype {rtypes[0]} records of {itemsize} bytes (corrupt data or a wrong schema)",
            path=path)


def _iter_chunks(h: DbnHeader, count: int, schema: str | None, validate: bool) -> Iterator[np.ndarray]:
    if count < 1:
        raise ValueError("count must be >= 1")
    if h.schema is None:
        if schema is None:
            raise SchemaMismatchError("mixed-schema file: name the schema to read from it", path=h.path)
        yield from _decoded_chunks(h, count, schema, mixed=True, validate=validate)
        return
    if schema is not None and schema != h.schema:
        raise SchemaMismatchError(f"holds {h.schema} records, not {schema}", path=h.path)
    v3 = record_dtype(h.schema)
    old = _version_dtype(h.schema, h.version)
    if old is None or old != v3:
        yield from _decoded_chunks(h, count, h.schema, mixed=False, validate=validate)
        return
    yield from _raw_chunks(h, count, v3, validate)


def _raw_chunks(h: DbnHeader, count: int, dtype: np.dtype, validate: bool) -> Iterator[np.ndarray]:
    """Zero-parse path: the bytes of ``count`` records viewed as one numpy array."""
    assert h.schema is not None
    stride = dtype.itemsize + (8 if h.ts_out else 0)
    f, reader, _ = _open_raw(h.path)
    with f:
        head = _read_exact(reader, h.header_len, h.path, "DBN header")
        if len(head) < h.header_len:
            raise CorruptInputError("file ends inside the DBN header", path=h.path)
        index = 0
        want = stride * count
        while True:
            buf = np.empty(want, dtype=np.uint8)  # not zero-filled: untouched pages of a short last chunk cost nothing
            got = _fill(reader, buf, h.path, index)
            if got == 0:
                return
            n, loose = divmod(got, stride)
            if stride == dtype.itemsize:
                arr = buf[:n * stride].view(dtype)
            else:  # drop the 8-byte ts_out suffix of each record
                arr = np.empty(n, dtype=dtype)
                raw = buf[:n * stride].reshape(n, stride)
                arr.view(np.uint8).reshape(n, dtype.itemsize)[:] = raw[:, :dtype.itemsize]
            if validate:  # before the truncation check: a wrong layout explains a "partial record" better
                _check_records(arr, h.schema, dtype.itemsize, h.path, index)
            if loose:
                raise CorruptInputError(
                    f"truncated: the file ends inside record {index + n} ({loose} of {stride} bytes); "
                    "refusing a partial trailing record", path=h.path)
            yield arr
            index += n
            if got < want:
                return


def _decoded_chunks(h: DbnHeader, count: int, schema: str, *, mixed: bool, validate: bool) -> Iterator[np.ndarray]:
    """Decoder path (old layouts, mixed files): records upgraded to v3 and packed into arrays."""
    dtype = record_dtype(schema)
    want_rtypes = schema_rtypes(schema)
    decoder = dbn.DBNDecoder(has_metadata=False, ts_out=h.ts_out, input_version=h.version,
                             upgrade_policy=dbn.VersionUpgradePolicy.UPGRADE_TO_V3)
    f, reader, _ = _open_raw(h.path)
    pending: list[bytes] = []
    index = 0  # records of the file decoded so far (all schemas)
    with f:
        _read_exact(reader, h.header_len, h.path, "DBN header")
        while True:
            try:
                block = reader.read(_READ_BLOCK)
            except zstandard.ZstdError as exc:
                raise CorruptInputError(f"corrupt zstd data after record {index}: {exc}", path=h.path) from None
            if not block:
                break
            try:
                recs = decoder.write_and_decode(block)
            except Exception as exc:  # DBNError
                raise CorruptInputError(f"cannot decode records after record {index}: {exc}", path=h.path) from None
            for rec in recs:
                rt = int(rec.rtype.value if hasattr(rec.rtype, "value") else rec.rtype)
                if rt in want_rtypes:
                    pending.append(bytes(rec)[:dtype.itemsize])
                elif not mixed:
                    raise CorruptInputError(f"record {index} has rtype {rt}; a {schema} file holds rtype "
                                            f"{want_rtypes[0]} records only", path=h.path)
                index += 1
            while len(pending) >= count:
                yield _pack(pending[:count], dtype, schema, h.path, validate)
                del pending[:count]
        if decoder.buffer():
            raise CorruptInputError(f"truncated: the file ends inside record {index} "
                                    f"({len(decoder.buffer())} trailing bytes); refusing a partial trailing record",
                                    path=h.path)
    if pending:
        yield _pack(pending, dtype, schema, h.path, validate)


def _pack(parts: list[bytes], dtype: np.dtype, schema: str, path: Path, validate: bool) -> np.ndarray:
    arr = np.frombuffer(bytearray(b"".join(parts)), dtype=dtype)
    if validate:
        _check_records(arr, schema, dtype.itemsize, path, 0)
    return arr


# ---------------------------------------------------------------------------------------- ordering
class OrderCheck:
    """The ``ts_recv`` ordering rule of one stream, across chunks and across files.

    :meth:`check` raises :class:`OrderingError` naming the file, the record index inside it and
    both timestamps when a record's ``ts_recv`` is below its predecessor's (ties are allowed).
    """

    def __init__(self) -> None:
        self.last_ts: int | None = None
        self.last_path: Path | None = None

    def check(self, ts: np.ndarray, path: Path, index: int) -> None:
        """``ts``: the chunk's ts_recv (ns); ``index``: its first record's index in ``path``."""
        if ts.shape[0] == 0:
            return
        first = int(ts[0])
        if self.last_ts is not None and first < self.last_ts:
            if self.last_path != path and self.last_path is not None:
                raise OrderingError(f"ts_recv goes backwards across the file boundary: record {index} has {first} < "
                                    f"{self.last_ts} of the last record of {self.last_path.name}", path=path)
            raise OrderingError(f"ts_recv goes backwards at record {index}: {first} < {self.last_ts}", path=path)
        i = int(_first_backwards(ts, first))
        if i > 0:
            raise OrderingError(f"ts_recv goes backwards at record {index + i}: {int(ts[i])} < {int(ts[i - 1])}",
                                path=path)
        self.last_ts = int(ts[-1])
        self.last_path = path


def session_parts(header: "DbnHeader", count: int, start_ns: int, end_ns: int, order: OrderCheck,
                  stats: "StreamStats") -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(records, ts_recv)`` of each chunk of ``header``'s file inside (start_ns, end_ns].

    Checks the ordering (``order`` carries it across chunks and files), counts records read and
    filtered ``outside_session``, and leaves the file as soon as a chunk passes ``end_ns``.
    """
    index = 0
    for raw in header.chunks(count):
        ts = raw["ts_recv"].view(np.int64)
        order.check(ts, header.path, index)
        n = raw.shape[0]
        index += n
        stats.read += n
        lo = int(np.searchsorted(ts, start_ns, side="right"))
        hi = int(np.searchsorted(ts, end_ns, side="right"))
        stats.add_filtered("outside_session", n - (hi - lo))
        if hi > lo:
            yield raw[lo:hi], ts[lo:hi]
        if hi < n:
            return


# ---------------------------------------------------------------------------------------- counters
@dataclass
class StreamStats:
    """Counters of one stream pass: records decoded, kept, filtered (expected) and dropped (bad).

    ``filtered`` reasons are normal selection (outside the session window, another instrument,
    not a 0DTE contract); ``dropped`` reasons are repairs of bad input (UNDEF price, no
    definition). ``complete`` turns True when the pass reached the end of its inputs.
    """

    read: int = 0
    kept: int = 0
    filtered: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    first_ts: int | None = None
    last_ts: int | None = None
    complete: bool = False

    def reset(self) -> None:
        self.read = self.kept = 0
        self.filtered.clear()
        self.dropped.clear()
        self.first_ts = self.last_ts = None
        self.complete = False

    def add_filtered(self, reason: str, n: int) -> None:
        if n:
            self.filtered[reason] = self.filtered.get(reason, 0) + int(n)

    def add_dropped(self, reason: str, n: int) -> None:
        if n:
            self.dropped[reason] = self.dropped.get(reason, 0) + int(n)

    def add_kept(self, ts: np.ndarray) -> None:
        n = int(ts.shape[0])
        if n:
            self.kept += n
            if self.first_ts is None:
                self.first_ts = int(ts[0])
            self.last_ts = int(ts[-1])

    def to_dict(self) -> dict[str, Any]:
        return {"read": self.read, "kept": self.kept, "filtered": dict(sorted(self.filtered.items())),
                "dropped": dict(sorted(self.dropped.items())), "first_ts_ns": self.first_ts,
                "last_ts_ns": self.last_ts, "complete": self.complete}


# ---------------------------------------------------------------------------------------- hashing
_HashKey = tuple[str, int, int, int]
_HASH_CACHE: dict[_HashKey, str] = {}
_HASH_RUNNING: dict[_HashKey, threading.Event] = {}
_HASH_LOCK = threading.Lock()
_PREFETCH: deque[Path] = deque()
_PREFETCH_THREAD: threading.Thread | None = None


def _hash_key(p: Path) -> _HashKey:
    st = p.stat()
    return (str(p.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)


def _sha256_of(p: Path) -> str:
    h = hashlib.sha256()
    buf = bytearray(_READ_BLOCK)
    mv = memoryview(buf)
    with open(p, "rb", buffering=0) as f:
        while True:
            k = f.readinto(buf)
            if not k:
                break
            h.update(mv[:k])  # releases the GIL: a background hash runs beside the decoding
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes: streamed in 1 MiB blocks, computed once per (path, size, mtime).

    If :func:`prefetch_sha256` is already hashing the file, waits for that result instead of
    reading the file a second time.
    """
    p = Path(path)
    try:
        key = _hash_key(p)
    except FileNotFoundError:
        raise MissingInputError("file not found (while hashing)", path=p) from None
    while True:
        with _HASH_LOCK:
            if key in _HASH_CACHE:
                return _HASH_CACHE[key]
            running = _HASH_RUNNING.get(key)
            if running is None:
                mine = _HASH_RUNNING[key] = threading.Event()
        if running is None:
            break
        running.wait()  # the other hasher finished (or failed: then loop and hash here)
    try:
        digest = _sha256_of(p)
        with _HASH_LOCK:
            _HASH_CACHE[key] = digest
        return digest
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}", path=p) from None
    finally:
        with _HASH_LOCK:
            _HASH_RUNNING.pop(key, None)
        mine.set()


def _prefetch_worker() -> None:
    global _PREFETCH_THREAD
    while True:
        with _HASH_LOCK:
            if not _PREFETCH:
                _PREFETCH_THREAD = None
                return
            p = _PREFETCH.popleft()
        try:
            file_sha256(p)
        except Exception:  # the foreground call reports problems; a prefetch only saves time
            pass


def prefetch_sha256(paths: Iterable[str | Path]) -> None:
    """Start hashing ``paths`` on one background daemon thread (results land in the cache)."""
    global _PREFETCH_THREAD
    with _HASH_LOCK:
        _PREFETCH.extend(Path(p) for p in paths)
        if _PREFETCH_THREAD is None:
            _PREFETCH_THREAD = threading.Thread(target=_prefetch_worker, name="spymaster-sha256", daemon=True)
            _PREFETCH_THREAD.start()


def clear_hash_cache() -> None:
    """Forget computed hashes (benchmarks)."""
    with _HASH_LOCK:
        _HASH_CACHE.clear()
