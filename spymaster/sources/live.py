"""Live records from ``databento.Live`` → the same normalized arrays the historical sources produce.

Two clients, one dataset each (a live session carries one dataset): GLBX.MDP3 (ES ``definition``,
``trades``, ``mbp-10``; parent symbol ``ES.FUT``) and OPRA.PILLAR (SPY ``definition`` and ``trades``;
parent symbol ``SPY.OPT``). Each is a :class:`LiveConnection`:

* the client's record bytes reach a :class:`RecordCollector` in one of two ways. By default
  (databento 0.87.0, checked by :func:`bulk_supported`) the session's protocol is the library's own
  with one step replaced (:func:`install_bulk`): instead of decoding every record into a Python
  object, it hands the socket's bytes on in whole-record blocks — the connection, CRAM
  authentication, subscriptions, session start, heartbeat watchdog and ErrorMsg handling stay
  databento's. The fallback (``bulk=False``, ``spymaster live --record-objects``) is the public
  ``Live.add_stream``: one ``list.append`` per record of the bytes the library already serialized.
  Either way the main thread takes the bytes in bounded blocks (:meth:`RecordCollector.take`) and
  parses them with one numba pass (:func:`parse_records`) into per-rtype numpy arrays (TradeMsg →
  TRADE, MBP10Msg → BOOK, definitions, SystemMsg, ErrorMsg, SymbolMappingMsg); ES trades and books
  are selected from their columns in the buffer before any record is copied (:class:`RecordIndex`);
* a supervisor thread waits for the session to close: a clean close is the end of the stream; an
  ErrorMsg followed by the close is a :class:`~spymaster.errors.LiveError` naming the gateway and
  the dataset; any other disconnect is reconnected per ``live.reconnect_policy`` /
  ``max_reconnects`` / ``reconnect_backoff_s`` (new client, same subscriptions, no ``start``: the
  records in between are lost — a *gap* the consumer measures from the last timestamp before it to
  the first after it);
* the API key is read from ``DATABENTO_API_KEY`` only and never logged (:class:`KeyRedactor` also
  scrubs it and the CRAM response from the databento library's own log records).

Normalization reuses the historical code: ES contract choice (:func:`spymaster.sources.es.collect_candidates`
/ :func:`~spymaster.sources.es.choose_contract`: the roll rule over the outrights in the definitions and
symbol mappings received before the first ES data record), the instrument / UNDEF-price selection
kernel of :func:`~spymaster.sources.es.es_chunks`, the OPRA 0DTE classification
(:func:`spymaster.sources.opra._classify` with the same pre-filter as ``load_definitions``), the as-of
definition join kernel and :func:`~spymaster.sources.opra.option_records` (tick-rule flags). Contracts
are numbered by their first kept trade, as the historical source numbers them (there by a pre-scan,
here causally, as the trades arrive).

Differences from the historical sources (where live cannot know what a file knows): the ES contract
is chosen from what arrived before the first ES record (not from the whole session's files, and
without the pre-scan that the contract trades); instrument_ids are taken as stable for the session
(a live session does not span files); option definitions apply from their ts_recv whatever UTC day
they belong to.

Units: timestamps int64 ns since the epoch (UTC); ES prices int64 1e-9 index points; option strike and
price float64 SPY $; sizes contracts.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import databento_dbn as dbn
import numba
import numpy as np

from spymaster.calendar import Session
from spymaster.config import Config
from spymaster.errors import InstrumentError, LiveError
from spymaster.events import BOOK, EMPTY_BOOKS, EMPTY_OPTIONS, EMPTY_TRADES, TRADE
from spymaster.logs import get_logger
from spymaster.sources import es as es_mod
from spymaster.sources import opra as opra_mod
from spymaster.sources.dbn import StreamStats, record_dtype

log = get_logger("sources.live")

API_KEY_ENV = "DATABENTO_API_KEY"
GLBX_DATASET = "GLBX.MDP3"
OPRA_DATASET = "OPRA.PILLAR"

RTYPE_TRADE = 0
RTYPE_MBP10 = 10
RTYPE_DEFINITION = 19
RTYPE_ERROR = 21
RTYPE_MAPPING = 22
RTYPE_SYSTEM = 23

DEFINITION = record_dtype("definition")
SYSTEM = np.dtype(dbn.SystemMsg._dtypes)
ERROR = np.dtype(dbn.ErrorMsg._dtypes)
MAPPING = np.dtype(dbn.SymbolMappingMsg._dtypes)
SIZES = {RTYPE_TRADE: TRADE.itemsize, RTYPE_MBP10: BOOK.itemsize, RTYPE_DEFINITION: DEFINITION.itemsize,
         RTYPE_ERROR: ERROR.itemsize, RTYPE_MAPPING: MAPPING.itemsize, RTYPE_SYSTEM: SYSTEM.itemsize}
DTYPES = {RTYPE_TRADE: TRADE, RTYPE_MBP10: BOOK, RTYPE_DEFINITION: DEFINITION, RTYPE_ERROR: ERROR,
          RTYPE_MAPPING: MAPPING, RTYPE_SYSTEM: SYSTEM}
SYSTEM_HEARTBEAT = 0
MAX_BACKLOG_BYTES = 256 << 20   # bulk consumer: pause reading the socket beyond this many untaken bytes
SYSTEM_CODE_NAMES = {0: "heartbeat", 1: "subscription_ack", 2: "slow_reader_warning", 3: "replay_completed",
                     4: "end_of_interval", 5: "unsubscribe_ack"}


@dataclass(frozen=True)
class Subscription:
    """One ``Live.subscribe`` call: schema, symbols, symbology type."""

    schema: str
    symbols: str
    stype_in: str = "parent"


def glbx_subscriptions(config: Config) -> list[Subscription]:
    """ES definitions, trades and mbp-10 of every ES future (parent ``ES.FUT``; spreads filtered later)."""
    return [Subscription(s, "ES.FUT") for s in ("definition", "trades", "mbp-10")]


def opra_subscriptions(config: Config) -> list[Subscription]:
    """Option definitions and trades of the configured root (parent ``SPY.OPT``)."""
    parent = f"{config.instrument.option_root}.OPT"
    return [Subscription(s, parent) for s in ("definition", "trades")]


# ---------------------------------------------------------------------------------------- API key
def api_key() -> str:
    """The Databento API key from ``DATABENTO_API_KEY`` (the only source); :class:`LiveError` if unset."""
    key = os.environ.get(API_KEY_ENV, "")
    if not key.strip():
        raise LiveError(f"the environment variable {API_KEY_ENV} is not set (the live feed needs a Databento API key)")
    return key.strip()


class KeyRedactor(logging.Filter):
    """Scrubs the API key and CRAM responses from log records (installed on the ``databento`` logger)."""

    _AUTH = re.compile(r"auth='?[0-9a-f]{64}-[^\s'|]*'?")

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a malformed record: leave it to logging
            return True
        clean = self._AUTH.sub("auth=<redacted>", msg)
        if self.key:
            clean = clean.replace(self.key, "<redacted>")
            if len(self.key) >= 5:
                clean = clean.replace(f"-{self.key[-5:]}", "-<redacted>")
        if clean != msg:
            record.msg, record.args = clean, None
        return True


# ---------------------------------------------------------------------------------------- parsing
@numba.njit(cache=True, nogil=True)
def _walk(buf, offs, rtypes):  # pragma: no cover - compiled
    """Record boundaries of back-to-back DBN records: (count, bytes consumed, first bad offset or -1)."""
    n = buf.shape[0]
    pos = 0
    k = 0
    while pos + 2 <= n:
        size = np.int64(buf[pos]) * 4
        if size < 16:
            return k, pos, pos
        if pos + size > n:
            break
        offs[k] = pos
        rtypes[k] = buf[pos + 1]
        k += 1
        pos += size
    return k, pos, -1


@numba.njit(cache=True, nogil=True)
def _whole_prefix(buf, error_rtype):  # pragma: no cover - compiled
    """(bytes of whole records at the start of ``buf``, any record of ``error_rtype``, bad offset or -1)."""
    n = buf.shape[0]
    pos = 0
    err = False
    while pos + 2 <= n:
        size = np.int64(buf[pos]) * 4
        if size < 16:
            return pos, err, pos
        if pos + size > n:
            break
        if buf[pos + 1] == error_rtype:
            err = True
        pos += size
    return pos, err, -1


@numba.njit(cache=True, nogil=True)
def _gather_bytes(buf, offs, size, out):  # pragma: no cover - compiled
    for i in range(offs.shape[0]):
        o = offs[i]
        for b in range(size):
            out[i, b] = buf[o + b]


@numba.njit(cache=True, nogil=True)
def _gather(words, offs, size, out):  # pragma: no cover - compiled
    """Copy the records at byte offsets ``offs`` (multiples of 8) of ``size`` bytes into ``out`` (words)."""
    w = size // 8
    for i in range(offs.shape[0]):
        o = offs[i] // 8
        for b in range(w):
            out[i, b] = words[o + b]


class RecordIndex:
    """The records of one type inside a parsed buffer, located but not copied yet.

    Columns shared by TradeMsg and MBP10Msg (``ts_recv`` at byte 32, ``price`` at 16,
    ``instrument_id`` at 4) are read straight from the buffer, so a selection can run before the
    records are gathered: only the kept ones are ever copied.
    """

    def __init__(self, words: np.ndarray, offs: np.ndarray, size: int, dtype: np.dtype) -> None:
        self.words, self.offs, self.size, self.dtype = words, offs, size, dtype

    def __len__(self) -> int:
        return int(self.offs.shape[0])

    def _u64(self, byte_off: int) -> np.ndarray:
        return self.words[(self.offs + byte_off) >> 3]

    @property
    def ts_recv(self) -> np.ndarray:
        return self._u64(32).view(np.int64)

    @property
    def price(self) -> np.ndarray:
        return self._u64(16).view(np.int64)

    @property
    def instrument_id(self) -> np.ndarray:
        return (self._u64(0) >> np.uint64(32)).astype(np.uint32)

    def take(self, mask: np.ndarray | None = None) -> np.ndarray:
        """The records (all, or where ``mask``) as a new array of :attr:`dtype`."""
        sel = self.offs if mask is None else self.offs[mask]
        raw = np.empty((sel.shape[0], self.size // 8), np.uint64)
        _gather(self.words, sel, self.size, raw)
        return raw.reshape(-1).view(self.dtype)


@dataclass
class ParsedRecords:
    """One parse of a client's bytes: arrays per record type, in arrival order within each type
    (trades / books as a :class:`RecordIndex` instead when parsed with ``lazy=True``)."""

    trades: np.ndarray = field(default_factory=lambda: EMPTY_TRADES)
    books: np.ndarray = field(default_factory=lambda: EMPTY_BOOKS)
    definitions: np.ndarray = field(default_factory=lambda: np.zeros(0, DEFINITION))
    system: np.ndarray = field(default_factory=lambda: np.zeros(0, SYSTEM))
    errors: np.ndarray = field(default_factory=lambda: np.zeros(0, ERROR))
    mappings: np.ndarray = field(default_factory=lambda: np.zeros(0, MAPPING))
    other: int = 0
    trade_index: RecordIndex | None = None
    book_index: RecordIndex | None = None

    @property
    def heartbeat_ts(self) -> np.ndarray:
        s = self.system
        return s["ts_event"][s["code"] == SYSTEM_HEARTBEAT].astype(np.int64)

    def _data_ts(self) -> list[np.ndarray]:
        out = [a["ts_recv"] for a in (self.trades, self.books) if a.shape[0]]
        out += [i.ts_recv for i in (self.trade_index, self.book_index) if i is not None and len(i)]
        return out

    @property
    def data_max_ts(self) -> int | None:
        """Largest ts_recv of the market-data records (trades, mbp-10), or None."""
        m = [int(t.max()) for t in self._data_ts()]
        return max(m) if m else None

    @property
    def data_min_ts(self) -> int | None:
        m = [int(t.min()) for t in self._data_ts()]
        return min(m) if m else None

    @property
    def count(self) -> int:
        n = sum(int(a.shape[0]) for a in (self.trades, self.books, self.definitions, self.system, self.errors,
                                           self.mappings))
        return n + sum(len(i) for i in (self.trade_index, self.book_index) if i is not None) + self.other


def parse_records(data: bytes | bytearray | memoryview, *, where: str = "live stream",
                  lazy: bool = False) -> ParsedRecords:
    """Split back-to-back DBN v3 records (no metadata header, no ts_out) into per-rtype arrays
    (``lazy``: trades and mbp-10 as :class:`RecordIndex`, when the buffer is 8-byte aligned).

    Raises :class:`LiveError` on a record whose length is not its type's or a trailing partial record.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    n_max = buf.shape[0] // 16 + 1
    offs = np.empty(n_max, np.int64)
    rtypes = np.empty(n_max, np.uint8)
    k, used, bad = _walk(buf, offs, rtypes)
    if bad >= 0:
        raise LiveError(f"{where}: corrupt record header at byte {bad} (length < 16 bytes)")
    if used != buf.shape[0]:
        raise LiveError(f"{where}: {buf.shape[0] - used} trailing bytes are not a whole record")
    offs, rtypes = offs[:k], rtypes[:k]
    out = ParsedRecords()
    if k == 0:
        return out
    aligned = buf.shape[0] % 8 == 0 and not (offs % 8).any()   # the usual case: all sizes are multiples of 8
    words = buf.view(np.uint64) if aligned else None
    known = np.zeros(256, bool)
    for rt in SIZES:
        known[rt] = True
    out.other = int((~known[rtypes]).sum())
    present = np.unique(rtypes)
    for rt in present.tolist():
        if rt not in SIZES:
            continue
        size = SIZES[rt]
        sel = offs[rtypes == rt]
        lens = buf[sel].astype(np.int64) * 4
        if (lens != size).any():
            bad_off = int(sel[np.flatnonzero(lens != size)[0]])
            raise LiveError(f"{where}: record at byte {bad_off} has rtype {rt} and length {int(buf[bad_off]) * 4}, "
                            f"expected {size} bytes (ts_out is not supported)")
        if lazy and words is not None and rt in (RTYPE_TRADE, RTYPE_MBP10):
            idx = RecordIndex(words, sel, size, DTYPES[rt])
            if rt == RTYPE_TRADE:
                out.trade_index = idx
            else:
                out.book_index = idx
            continue
        if present.shape[0] == 1:
            arr = buf[: k * size].view(DTYPES[rt])
            if not arr.flags.writeable:
                arr = arr.copy()
        else:
            if words is not None:
                raw = np.empty((sel.shape[0], size // 8), np.uint64)
                _gather(words, sel, size, raw)
            else:
                raw = np.empty((sel.shape[0], size), np.uint8)
                _gather_bytes(buf, sel, size, raw)
            arr = raw.reshape(-1).view(DTYPES[rt])
        if rt == RTYPE_TRADE:
            out.trades = arr
        elif rt == RTYPE_MBP10:
            out.books = arr
        elif rt == RTYPE_DEFINITION:
            out.definitions = arr
        elif rt == RTYPE_SYSTEM:
            out.system = arr
        elif rt == RTYPE_ERROR:
            out.errors = arr
        elif rt == RTYPE_MAPPING:
            out.mappings = arr
    return out


def _rows(arr: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``arr[mask]`` for a structured array, copied as raw bytes (numpy copies nested structured
    dtypes field by field, several times slower)."""
    size = arr.dtype.itemsize
    raw = arr.view(np.uint8).reshape(arr.shape[0], size) if arr.flags.c_contiguous else \
        np.ascontiguousarray(arr).view(np.uint8).reshape(arr.shape[0], size)
    return raw[mask].reshape(-1).view(arr.dtype)


def _text(b: bytes) -> str:
    return b.split(b"\x00", 1)[0].decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------- collector
class RecordCollector:
    """The user stream given to ``Live.add_stream``: keeps each record's bytes for the main thread.

    ``write`` runs on the client's event-loop thread (one call per record; a metadata header when a
    connection starts). :meth:`take` (main thread) returns the bytes received so far as segments,
    each starting where a connection started (its :class:`databento_dbn.Metadata`, None for the
    continuation of the previous connection); the bulk protocol hands over whole-record blocks with
    :meth:`write_block` instead. Lock-free: the list is only appended to by the writer and only
    trimmed at the front by the reader.
    """

    def __init__(self, max_backlog_bytes: int = MAX_BACKLOG_BYTES) -> None:
        self._parts: list[Any] = []
        self.closed = False
        self.error_texts: list[str] = []
        self.max_backlog_bytes = int(max_backlog_bytes)
        self._written = 0            # bytes written (writer thread only)
        self._taken = 0              # bytes taken (reader thread only)
        self._resume: Callable[[], None] | None = None
        self.pauses = 0

    @property
    def backlog_bytes(self) -> int:
        """Bytes written but not taken yet."""
        return self._written - self._taken

    # --- BinaryIO surface used by databento's ClientStream
    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def write(self, b: bytes) -> int:
        """One record (``Live.add_stream``), or a connection's metadata header."""
        if b[:3] == b"DBN":
            self._parts.append(_Header(b))
        else:
            if b[1] == RTYPE_ERROR:
                self.error_texts.append(_text(bytes(b[16:318])))
            self._parts.append(b)
            self._written += len(b)
        return len(b)

    def write_block(self, b: bytes, errors: list[str] | None = None) -> bool:
        """Many whole records at once (the bulk protocol); ``errors``: texts of ErrorMsgs among them.

        Returns True when the backlog exceeds ``max_backlog_bytes``: the writer should pause reading
        the socket (TCP flow control then slows the gateway) and register how to resume with
        :meth:`pause`."""
        if errors:
            self.error_texts.extend(errors)
        self._parts.append(b)
        self._written += len(b)
        return self.backlog_bytes > self.max_backlog_bytes

    def pause(self, resume: Callable[[], None]) -> None:
        """The writer paused; ``resume`` (thread-safe) is called once the backlog has halved."""
        self.pauses += 1
        self._resume = resume

    # --- consumer side
    @property
    def pending(self) -> bool:
        """Bytes not taken yet."""
        return bool(self._parts)

    def take(self, max_bytes: int = 4 << 20, limit: int | None = None) -> list[tuple[dbn.Metadata | None, bytearray]]:
        """The bytes received so far (at most about ``limit`` bytes, the rest stays for the next call):
        (metadata of a new connection or None, whole records) segments of at most about ``max_bytes``
        each — bounded, writeable buffers (big fresh allocations are slow)."""
        parts = self._parts
        n = len(parts)
        if n == 0:
            self._maybe_resume()
            return []
        out: list[tuple[dbn.Metadata | None, bytearray]] = []
        md: dbn.Metadata | None = None
        group: list[bytes] = []
        size = total = 0
        i = 0
        while i < n:
            p = parts[i]
            i += 1
            if isinstance(p, _Header):
                if group or md is not None:
                    out.append((md, bytearray().join(group)))
                md, group, size = p.metadata(), [], 0
                continue
            group.append(p)
            size += len(p)
            total += len(p)
            if size >= max_bytes:
                out.append((md, bytearray().join(group)))
                md, group, size = None, [], 0
            if limit is not None and total >= limit:
                break
        if group or md is not None:
            out.append((md, bytearray().join(group)))
        del parts[:i]
        self._taken += total
        self._maybe_resume()
        return out

    def _maybe_resume(self) -> None:
        resume = self._resume
        if resume is not None and self.backlog_bytes <= self.max_backlog_bytes // 2:
            self._resume = None
            resume()


class _Header:
    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        self.raw = bytes(raw)

    def metadata(self) -> dbn.Metadata:
        return dbn.Metadata.decode(self.raw)


# ---------------------------------------------------------------------------------------- bulk decoding
def bulk_supported() -> bool:
    """Whether the installed databento is the version whose live protocol :func:`install_bulk` knows."""
    try:
        import databento
        from databento.live.session import LiveSession, _SessionProtocol  # noqa: F401
    except ImportError:
        return False
    return databento.__version__ == "0.87.0" and hasattr(LiveSession, "_create_protocol") and \
        hasattr(_SessionProtocol, "_process_dbn")


_BULK_CLASS: Any = None


def _bulk_protocol_class() -> Any:
    """A ``databento.live.session._SessionProtocol`` whose DBN step hands whole-record byte blocks
    to a :class:`RecordCollector` instead of building one Python object per record.

    Everything else — connection, CRAM authentication, subscriptions, session start, the heartbeat
    watchdog, ErrorMsg → ``BentoError`` at the close — stays the library's. What the per-record path
    did and a consumer needs is kept: the metadata header goes through ``received_metadata`` (so it
    reaches the user streams and the session's futures), every block refreshes the watchdog's
    last-message time, ErrorMsg texts are queued for the close.
    """
    global _BULK_CLASS
    if _BULK_CLASS is not None:
        return _BULK_CLASS
    from databento.live.session import _SessionProtocol

    class BulkSessionProtocol(_SessionProtocol):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, collector: RecordCollector, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._collector = collector
            self._carry = b""
            self._header_done = False

        def _process_dbn(self, data: bytes) -> None:
            buf = self._carry + data if self._carry else data
            if not self._header_done:
                if len(buf) < 8:
                    self._carry = buf
                    return
                end = 8 + int.from_bytes(buf[4:8], "little")
                if len(buf) < end:
                    self._carry = buf
                    return
                md = dbn.Metadata.decode(bytes(buf[:end]))
                if md.version != 3 or md.ts_out:
                    self._error_msgs.append(f"bulk decoding needs DBN v3 records without ts_out (got version "
                                            f"{md.version}, ts_out={md.ts_out})")
                    self.transport.close()
                    return
                self.received_metadata(md)
                self._header_done = True
                buf = buf[end:]
            arr = np.frombuffer(buf, dtype=np.uint8)
            whole, has_error, bad = _whole_prefix(arr, RTYPE_ERROR)
            if bad >= 0:
                self._error_msgs.append(f"corrupt DBN record header at byte {bad} of a read")
                self.transport.close()
                return
            if whole:
                block = buf[:whole] if whole < len(buf) else buf
                errors = None
                if has_error:
                    p = parse_records(block)
                    errors = [_text(bytes(e["err"])) for e in p.errors]
                    self._error_msgs.extend(errors)
                if self._collector.write_block(block, errors) and self.transport.is_reading():
                    self.transport.pause_reading()       # backpressure: the consumer is behind
                    loop, transport = self._loop, self.transport
                    self._collector.pause(lambda: loop.call_soon_threadsafe(_resume_reading, transport))
                self._last_msg_loop_time = self._loop.time()
            self._carry = buf[whole:] if whole < len(buf) else b""

    _BULK_CLASS = BulkSessionProtocol
    return _BULK_CLASS


def _resume_reading(transport: Any) -> None:
    if not transport.is_closing():
        transport.resume_reading()


def install_bulk(client: Any, collector: RecordCollector) -> None:
    """Make ``client`` (a fresh ``databento.Live``) deliver its records to ``collector`` in blocks."""
    session = client._session
    cls = _bulk_protocol_class()

    def create(dataset: str) -> Any:
        return cls(api_key=session.api_key, dataset=dataset, dbn_queue=session._dbn_queue,
                   user_callbacks=session._user_callbacks, user_streams=session._user_streams, loop=session._loop,
                   metadata=session._metadata, ts_out=session.ts_out, heartbeat_interval_s=session.heartbeat_interval_s,
                   slow_reader_behavior=session._slow_reader_behavior, compression=session._compression,
                   collector=collector)

    session._create_protocol = create


# ---------------------------------------------------------------------------------------- connection
@dataclass
class ConnectionEvent:
    """A disconnect / reconnect / end seen by a connection's supervisor (wall-clock seconds)."""

    kind: str            # "disconnected" | "reconnected" | "closed" | "failed"
    wall: float
    detail: str = ""


class LiveConnection:
    """One dataset's live session through ``databento.Live`` with the reconnect policy.

    ``client_factory`` (tests) builds the ``databento.Live`` client; by default the real one.
    After :meth:`start`, :attr:`done` is set when the stream has ended: cleanly (:attr:`error` None)
    or not (:attr:`error` a :class:`LiveError`).
    """

    def __init__(self, dataset: str, subscriptions: Sequence[Subscription], config: Config, *,
                 gateway: str | None = None, port: int | None = None, start_ns: int | None = None,
                 key: str | None = None, client_factory: Callable[..., Any] | None = None,
                 bulk: bool | None = None, max_backlog_bytes: int = MAX_BACKLOG_BYTES) -> None:
        live = config.live
        self.dataset = dataset
        self.subscriptions = list(subscriptions)
        self.gateway = gateway if gateway is not None else (live.gateway or None)
        self.port = port if port is not None else live.port
        self.heartbeat_interval_s = live.heartbeat_interval_s
        self.policy = live.reconnect_policy
        self.max_reconnects = live.max_reconnects
        self.backoff_s = live.reconnect_backoff_s
        self.start_ns = start_ns
        self._key = key if key is not None else api_key()
        self._factory = client_factory
        self.bulk = bulk_supported() if bulk is None else (bulk and bulk_supported())
        self.collector = RecordCollector(max_backlog_bytes)
        self.events: list[ConnectionEvent] = []
        self.reconnects = 0
        self.error: LiveError | None = None
        self.done = threading.Event()
        self._stopping = threading.Event()
        self._client: Any = None
        self._thread: threading.Thread | None = None
        _install_redactor(self._key)

    @property
    def where(self) -> str:
        host = self.gateway or f"{self.dataset.lower().replace('.', '-')}.lsg.databento.com"
        return f"gateway {host}:{self.port} dataset {self.dataset}"

    def __repr__(self) -> str:  # never shows the key
        return f"LiveConnection({self.where})"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Connect, authenticate, subscribe and start streaming (raises :class:`LiveError` at once)."""
        self._client = self._connect(first=True)
        self._thread = threading.Thread(target=self._supervise, name=f"live-{self.dataset}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Graceful stop: the client delivers what it has queued, then the session closes."""
        self._stopping.set()
        c = self._client
        if c is not None:
            try:
                c.stop()
            except Exception as exc:  # already closed
                log.debug("live_stop_ignored", where=self.where, error=type(exc).__name__)

    def terminate(self) -> None:
        self._stopping.set()
        c = self._client
        if c is not None:
            try:
                c.terminate()
            except Exception as exc:
                log.debug("live_terminate_ignored", where=self.where, error=type(exc).__name__)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # ------------------------------------------------------------------ internals
    def _new_client(self) -> Any:
        kwargs = dict(key=self._key, gateway=self.gateway, port=self.port,
                      heartbeat_interval_s=self.heartbeat_interval_s, reconnect_policy="none")
        if self._factory is not None:
            return self._factory(**kwargs)
        import databento as db

        return db.Live(**kwargs)

    def _connect(self, *, first: bool) -> Any:
        from databento.common.error import BentoError

        client = self._new_client()
        if self.bulk and hasattr(client, "_session"):
            install_bulk(client, self.collector)
        client.add_stream(self.collector)      # the metadata header of each connection (and, unless bulk, every record)
        try:
            for sub in self.subscriptions:
                client.subscribe(self.dataset, sub.schema, symbols=sub.symbols, stype_in=sub.stype_in,
                                 start=self.start_ns if first else None)
            client.start()
        except (BentoError, OSError, ValueError) as exc:
            try:
                client.terminate()
            except Exception:
                pass
            raise LiveError(f"{self.where}: {self._clean(exc)}") from None
        log.info("live_connected", where=self.where, session_id=client.session_id, first=first,
                 subscriptions=[f"{s.schema}:{s.stype_in}:{s.symbols}" for s in self.subscriptions],
                 start_ns=self.start_ns if first else None)
        return client

    def _clean(self, exc: BaseException) -> str:
        text = str(exc) or type(exc).__name__
        return text.replace(self._key, "<redacted>") if self._key else text

    def _supervise(self) -> None:
        from databento.common.error import BentoError

        attempts = 0
        try:
            while True:
                client = self._client
                try:
                    client.block_for_close()
                    clean, why = True, ""
                except (BentoError, OSError) as exc:
                    clean, why = False, self._clean(exc)
                if self.collector.error_texts:
                    text = "; ".join(dict.fromkeys(self.collector.error_texts))
                    self.error = LiveError(f"{self.where}: the gateway sent an error: {text}")
                    self.events.append(ConnectionEvent("failed", time.time(), text))
                    log.error("live_gateway_error", where=self.where, error=text)
                    return
                if clean or self._stopping.is_set():
                    self.events.append(ConnectionEvent("closed", time.time(), why))
                    log.info("live_closed", where=self.where, stopped=self._stopping.is_set())
                    return
                self.events.append(ConnectionEvent("disconnected", time.time(), why))
                log.warning("live_disconnected", where=self.where, reason=why, policy=self.policy,
                            reconnects=self.reconnects, max_reconnects=self.max_reconnects)
                while True:
                    if self.policy == "none" or attempts >= self.max_reconnects:
                        self.error = LiveError(f"{self.where}: connection lost ({why}); reconnect_policy="
                                               f"{self.policy}, {attempts} of max_reconnects={self.max_reconnects} "
                                               "attempts used")
                        self.events.append(ConnectionEvent("failed", time.time(), why))
                        return
                    delay = self.backoff_s * (2 ** attempts)
                    attempts += 1
                    if self._stopping.wait(delay):
                        self.events.append(ConnectionEvent("closed", time.time(), "stopped while reconnecting"))
                        return
                    try:
                        self._client = self._connect(first=False)
                    except LiveError as exc:
                        why = exc.message
                        log.warning("live_reconnect_failed", where=self.where, attempt=attempts, error=why)
                        if "Authentication failed" in why:
                            self.error = exc
                            return
                        continue
                    self.reconnects += 1
                    self.events.append(ConnectionEvent("reconnected", time.time(), f"attempt {attempts}"))
                    log.warning("live_reconnected", where=self.where, attempt=attempts, reconnects=self.reconnects)
                    break
        finally:
            self.done.set()


_REDACTORS: dict[str, KeyRedactor] = {}


def _install_redactor(key: str) -> None:
    """Add a :class:`KeyRedactor` to every ``databento`` logger (filters act where a record is
    created, so each module's logger needs it, not only the package's)."""
    import databento  # noqa: F401  (imports the modules whose loggers get the filter)
    import databento.live.client  # noqa: F401

    r = _REDACTORS.get(key)
    if r is None:
        r = _REDACTORS[key] = KeyRedactor(key)
    names = [n for n in logging.Logger.manager.loggerDict if n == "databento" or n.startswith("databento.")]
    for name in names:
        lg = logging.getLogger(name)
        if r not in lg.filters:
            lg.addFilter(r)


# ---------------------------------------------------------------------------------------- ES
class _LiveSymbology:
    """The :class:`~spymaster.sources.dbn.DbnHeader` surface :func:`es.collect_candidates` reads
    (``mappings`` / ``ids_for``), filled from SymbolMappingMsgs."""

    def __init__(self) -> None:
        self.mappings: dict[str, set[int]] = {}

    def add(self, raw_symbol: str, instrument_id: int) -> None:
        self.mappings.setdefault(raw_symbol, set()).add(int(instrument_id))

    def ids_for(self, raw_symbol: str, day: dt.date) -> tuple[int, ...]:
        return tuple(sorted(self.mappings.get(raw_symbol, ())))


class LiveEsSource:
    """ES definitions / mappings → the session's contract; raw trades / mbp-10 → TRADE / BOOK arrays.

    Per chunk the same selection as :func:`spymaster.sources.es.es_chunks`: the session window
    (start_ns, end_ns], the chosen contract's instrument_ids, UNDEF-price trades dropped (counted).
    Records before a contract can be chosen (no ES outright defined or mapped yet) are dropped and
    counted (``before_contract``).
    """

    def __init__(self, session: Session, config: Config) -> None:
        self.session = session
        self.config = config
        self.choice: es_mod.EsChoice | None = None
        self._defs: list[np.ndarray] = []
        self._symbology = _LiveSymbology()
        self._spreads = 0
        self._ids = np.zeros(0, np.int64)
        self.trade_stats = StreamStats()
        self.book_stats = StreamStats()
        self.definitions_seen = 0

    def add_definitions(self, defs: np.ndarray) -> None:
        if defs.shape[0] == 0:
            return
        self.definitions_seen += int(defs.shape[0])
        keep, n_spread = es_mod.outright_rows(defs)
        self._spreads += n_spread
        if keep.shape[0]:
            self._defs.append(keep.copy())

    def add_mappings(self, maps: np.ndarray) -> None:
        for row in maps:
            sym = _text(bytes(row["stype_in_symbol"]))
            if es_mod.is_es_outright(sym):
                self._symbology.add(sym, int(row["instrument_id"]))

    def _choose(self) -> bool:
        day = self.session.date
        defs = {day: np.concatenate(self._defs)} if self._defs else {}
        candidates = es_mod.collect_candidates(self.session, defs, {day: [self._symbology]})
        if not candidates:
            return False
        try:
            choice = es_mod.choose_contract(self.session, candidates, roll_days=self.config.instrument.roll_days_before_expiry,
                                            pinned=self.config.instrument.es_instrument,
                                            where="the live GLBX definitions / symbol mappings received so far",
                                            excluded_spreads=self._spreads)
        except InstrumentError as exc:
            raise LiveError(f"dataset {GLBX_DATASET}: {exc.message}") from None
        self.choice = choice
        self._ids = np.array(sorted({i for ids in choice.ids_by_day.values() for i in ids}), dtype=np.int64)
        log.info("es_contract_chosen", date=self.session.iso, raw_symbol=choice.raw_symbol,
                 instrument_ids=self._ids.tolist(), expiration=choice.contract.expiration.isoformat(),
                 reason=choice.reason, source="live")
        return True

    def select(self, ts: np.ndarray, iid: np.ndarray, price: np.ndarray, kind: str) -> np.ndarray | None:
        """The keep mask of one chunk's TRADE / BOOK records from their columns (None: keep all), with
        the counters of :func:`spymaster.sources.es.es_chunks`."""
        stats = self.trade_stats if kind == "trades" else self.book_stats
        n = ts.shape[0]
        stats.read += n
        if self.choice is None and not self._choose():
            stats.add_dropped("before_contract", n)
            return np.zeros(n, dtype=np.bool_)
        inside = (ts > self.session.start_ns) & (ts <= self.session.end_ns)
        n_in = int(inside.sum())
        stats.add_filtered("outside_session", n - n_in)
        mask = np.empty(n, dtype=np.bool_)
        n_other, n_undef = es_mod._select(iid, price, self._ids, kind == "trades", mask)
        if n_in < n:  # the kernel's counts must cover the session window only, as in es_chunks
            out = ~inside
            o2, u2 = es_mod._select(iid[out], price[out], self._ids, kind == "trades", np.empty(n - n_in, np.bool_))
            n_other, n_undef = n_other - o2, n_undef - u2
            mask &= inside
        stats.add_filtered("other_instrument", n_other)
        stats.add_dropped("undef_price", n_undef)
        return None if n_in == n and n_other + n_undef == 0 else mask

    def normalize(self, raw: np.ndarray, kind: str) -> np.ndarray:
        """Raw TRADE / BOOK records of one chunk → the kept records of the chosen contract."""
        if raw.shape[0] == 0:
            return raw
        mask = self.select(raw["ts_recv"].astype(np.int64), raw["instrument_id"], raw["price"], kind)
        out = raw if mask is None else _rows(raw, mask)
        (self.trade_stats if kind == "trades" else self.book_stats).add_kept(out["ts_recv"])
        return out

    def normalize_index(self, idx: RecordIndex, kind: str) -> np.ndarray:
        """As :meth:`normalize` for records still in the parsed buffer: only the kept ones are copied."""
        if len(idx) == 0:
            return EMPTY_TRADES if kind == "trades" else EMPTY_BOOKS
        mask = self.select(idx.ts_recv, idx.instrument_id, idx.price, kind)
        out = idx.take(mask)
        (self.trade_stats if kind == "trades" else self.book_stats).add_kept(out["ts_recv"])
        return out


# ---------------------------------------------------------------------------------------- options
class LiveOptionSource:
    """OPRA definitions → the session's 0DTE contract table; raw trades → OPTION records.

    A trade joins the latest definition of its instrument_id with ts_recv ≤ its own (the historical
    join kernel over the definitions still pending, state kept across chunks); ``'D'`` deletes.
    Counters as the historical stream: ``no_definition``, ``definition_deleted``, ``undef_price``
    dropped; ``not_0dte``, ``outside_session`` filtered.
    """

    def __init__(self, session: Session, config: Config) -> None:
        self.session = session
        self.root = config.instrument.option_root
        self.multiplier = config.instrument.option_multiplier
        self.contracts = opra_mod.ContractTable()        # numbered by first kept trade (as the historical source)
        self._defined = opra_mod.ContractTable()         # numbered by definition arrival
        self._remap = np.full(0, -1, dtype=np.int32)     # definition number → contract index (−1: not traded yet)
        self.def_stats = opra_mod.DefinitionStats()
        self.stats = StreamStats()
        self._prefix = f"{self.root:<6}{session.date:%y%m%d}".encode()
        self._d_epoch = (session.date - dt.date(1970, 1, 1)).days
        self._uids = np.zeros(0, np.uint32)
        self._state = np.zeros(0, np.int32)
        self._p_ts = np.zeros(0, np.int64)     # pending definitions (sorted by ts_recv, arrival order on ties)
        self._p_id = np.zeros(0, np.uint32)
        self._p_code = np.zeros(0, np.int32)

    def add_definitions(self, arr: np.ndarray) -> None:
        n = arr.shape[0]
        if n == 0:
            return
        st = self.def_stats
        st.read += n
        code = np.full(n, opra_mod.CODE_OTHER, dtype=np.int32)
        exp = arr["expiration"]
        cand = np.char.startswith(arr["raw_symbol"], self._prefix)
        cand |= (arr["underlying"] == self.root.encode()) & (exp < np.uint64(2**63)) & \
                ((exp // np.uint64(opra_mod.DAY_NS)).astype(np.int64) == self._d_epoch)
        deleted = arr["security_update_action"] == b"D"
        for i in np.flatnonzero(cand & ~deleted).tolist():
            got = opra_mod._classify(arr[i], self.root, self.session.date, self.multiplier, st)
            if got is not None:
                code[i] = self._defined.add(*got)
                st.zero_dte_rows += 1
        code[deleted] = opra_mod.CODE_DELETED
        st.deletes += int(deleted.sum())
        ids = arr["instrument_id"].astype(np.uint32)
        new = np.setdiff1d(ids, self._uids)
        if new.size:
            uids = np.union1d(self._uids, new).astype(np.uint32)
            state = np.full(uids.shape[0], opra_mod.CODE_NO_DEF, dtype=np.int32)
            state[np.searchsorted(uids, self._uids)] = self._state
            self._uids, self._state = uids, state
        ts = np.concatenate([self._p_ts, arr["ts_recv"].astype(np.int64)])
        order = np.argsort(ts, kind="stable")
        self._p_ts = ts[order]
        self._p_id = np.concatenate([self._p_id, ids])[order]
        self._p_code = np.concatenate([self._p_code, code])[order]

    def normalize(self, raw: np.ndarray) -> np.ndarray:
        """Raw OPRA TRADE records of one chunk (ts_recv ascending) → OPTION records."""
        stats = self.stats
        n = raw.shape[0]
        if n == 0:
            return EMPTY_OPTIONS
        stats.read += n
        ts = raw["ts_recv"]
        inside = (ts > self.session.start_ns) & (ts <= self.session.end_ns)
        n_in = int(inside.sum())
        stats.add_filtered("outside_session", n - n_in)
        part = raw if n_in == n else raw[inside]
        if part.shape[0] == 0:
            return EMPTY_OPTIONS
        t_ts = np.ascontiguousarray(part["ts_recv"], dtype=np.int64)
        uids = self._uids
        iid = part["instrument_id"]
        if uids.shape[0]:
            pos = np.minimum(np.searchsorted(uids, iid), uids.shape[0] - 1)
            dense = np.where(uids[pos] == iid, pos, -1).astype(np.int64)
            d_dense = np.searchsorted(uids, self._p_id).astype(np.int32)
        else:
            dense = np.full(part.shape[0], -1, dtype=np.int64)
            d_dense = np.zeros(0, np.int32)
        codes = np.empty(part.shape[0], dtype=np.int32)
        ptr = opra_mod._join(t_ts, dense, self._p_ts, d_dense, self._p_code, self._state, 0, codes)
        if ptr:
            self._p_ts, self._p_id, self._p_code = self._p_ts[ptr:], self._p_id[ptr:], self._p_code[ptr:]
        stats.add_dropped("no_definition", int((codes == opra_mod.CODE_NO_DEF).sum()))
        stats.add_dropped("definition_deleted", int((codes == opra_mod.CODE_DELETED).sum()))
        stats.add_filtered("not_0dte", int((codes == opra_mod.CODE_OTHER).sum()))
        good = codes >= 0
        undef = good & (part["price"] == np.int64(2**63 - 1))
        stats.add_dropped("undef_price", int(undef.sum()))
        good &= ~undef
        if not good.any():
            return EMPTY_OPTIONS
        out = opra_mod.option_records(part[good], self._number(codes[good]), self.contracts)
        stats.add_kept(out["ts_recv"])
        return out

    def _number(self, codes: np.ndarray) -> np.ndarray:
        """Definition numbers → contract indices, numbering contracts by their first kept trade."""
        if self._remap.shape[0] < len(self._defined):
            grown = np.full(len(self._defined), -1, dtype=np.int32)
            grown[: self._remap.shape[0]] = self._remap
            self._remap = grown
        fresh = codes[self._remap[codes] < 0]
        if fresh.size:
            uniq, first = np.unique(fresh, return_index=True)
            strike, is_call = self._defined.strike, self._defined.is_call
            for c in uniq[np.argsort(first, kind="stable")].tolist():
                self._remap[c] = self.contracts.add(self._defined.raw_symbols[c], float(strike[c]), bool(is_call[c]))
        return self._remap[codes]


# ---------------------------------------------------------------------------------------- decoding
@dataclass
class Decoded:
    """What one segment of a client's bytes yields for the merge."""

    trades: np.ndarray
    books: np.ndarray
    options: np.ndarray
    data_ts: int | None          # largest ts_recv of the market-data records received (kept or not)
    first_ts: int | None         # smallest index ts of the market-data records and heartbeats
    heartbeat_ts: int | None     # latest heartbeat ts_event
    records: int                 # records parsed


class LiveDecoder:
    """Turns one connection's collected bytes into normalized arrays (ES or options, by dataset)."""

    def __init__(self, dataset: str, *, es: LiveEsSource | None = None, options: LiveOptionSource | None = None) -> None:
        self.dataset = dataset
        self.es = es
        self.options = options
        self.system_counts: dict[str, int] = {}
        self.error_messages: list[str] = []
        self.other_records = 0
        self.records = 0

    def decode(self, data: bytes, where: str) -> Decoded:
        p = parse_records(data, where=where, lazy=self.es is not None)
        n = p.count
        self.records += n
        self.other_records += p.other
        if p.system.shape[0]:
            codes, counts = np.unique(p.system["code"], return_counts=True)
            for code, c in zip(codes.tolist(), counts.tolist()):
                name = SYSTEM_CODE_NAMES.get(int(code), f"code_{int(code)}")
                self.system_counts[name] = self.system_counts.get(name, 0) + int(c)
            for row in p.system[p.system["code"] != SYSTEM_HEARTBEAT]:
                code = int(row["code"])
                text = _text(bytes(row["msg"]))
                name = SYSTEM_CODE_NAMES.get(code, f"code_{code}")
                (log.warning if code == 2 else log.info)("live_system_message", where=where, code=name, msg=text)
        for row in p.errors:
            text = _text(bytes(row["err"]))
            self.error_messages.append(text)
            log.error("live_error_message", where=where, err=text, code=int(row["code"]))
        trades, books, options = EMPTY_TRADES, EMPTY_BOOKS, EMPTY_OPTIONS
        if self.es is not None:
            self.es.add_mappings(p.mappings)
            self.es.add_definitions(p.definitions)
            trades = self.es.normalize(p.trades, "trades") if p.trade_index is None else \
                self.es.normalize_index(p.trade_index, "trades")
            books = self.es.normalize(p.books, "mbp-10") if p.book_index is None else \
                self.es.normalize_index(p.book_index, "mbp-10")
        if self.options is not None:
            self.options.add_definitions(p.definitions)
            options = self.options.normalize(p.trades)
        data_ts = p.data_max_ts
        d0 = p.data_min_ts
        first = [] if d0 is None else [d0]
        hbs = p.heartbeat_ts
        hb_ts = int(hbs.max()) if hbs.shape[0] else None
        if hbs.shape[0]:
            first.append(int(hbs.min()))
        return Decoded(trades, books, options, data_ts, min(first) if first else None, hb_ts, n)
