"""Live records from ``databento.Live`` → the same normalized arrays the historical sources produce.

Two clients, one dataset each (a live session carries one dataset): GLBX.MDP3 (ES ``definition``,
``trades``, ``mbp-10``; parent symbol ``ES.FUT``) and OPRA.PILLAR (SPY ``definition`` and ``trades``;
parent symbol ``SPY.OPT``). Each is a :class:`LiveConnection`:

* the client's raw record bytes are collected through ``Live.add_stream`` — the library already
  serializes every record for its user streams, so the consumer costs one ``list.append`` per
  record on the client's thread; the main thread takes the bytes in bulk (:meth:`take`) and parses
  them with one numba pass (:func:`parse_records`) into per-rtype numpy arrays (TradeMsg → TRADE,
  MBP10Msg → BOOK, definitions, SystemMsg, ErrorMsg, SymbolMappingMsg);
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
@numba.njit(cache=True)
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


@numba.njit(cache=True)
def _gather(buf, offs, size, out):  # pragma: no cover - compiled
    for i in range(offs.shape[0]):
        o = offs[i]
        for b in range(size):
            out[i, b] = buf[o + b]


@dataclass
class ParsedRecords:
    """One parse of a client's bytes: arrays per record type, in arrival order within each type."""

    trades: np.ndarray = field(default_factory=lambda: EMPTY_TRADES)
    books: np.ndarray = field(default_factory=lambda: EMPTY_BOOKS)
    definitions: np.ndarray = field(default_factory=lambda: np.zeros(0, DEFINITION))
    system: np.ndarray = field(default_factory=lambda: np.zeros(0, SYSTEM))
    errors: np.ndarray = field(default_factory=lambda: np.zeros(0, ERROR))
    mappings: np.ndarray = field(default_factory=lambda: np.zeros(0, MAPPING))
    other: int = 0

    @property
    def heartbeat_ts(self) -> np.ndarray:
        s = self.system
        return s["ts_event"][s["code"] == SYSTEM_HEARTBEAT].astype(np.int64)

    @property
    def data_max_ts(self) -> int | None:
        """Largest ts_recv of the market-data records (trades, mbp-10), or None."""
        m = [int(a["ts_recv"].max()) for a in (self.trades, self.books) if a.shape[0]]
        return max(m) if m else None


def parse_records(data: bytes | bytearray | memoryview, *, where: str = "live stream") -> ParsedRecords:
    """Split back-to-back DBN v3 records (no metadata header, no ts_out) into per-rtype arrays.

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
        if present.shape[0] == 1:
            arr = buf[: k * size].view(DTYPES[rt]).copy()
        else:
            raw = np.empty((sel.shape[0], size), np.uint8)
            _gather(buf, sel, size, raw)
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


def _text(b: bytes) -> str:
    return b.split(b"\x00", 1)[0].decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------- collector
class RecordCollector:
    """The user stream given to ``Live.add_stream``: keeps each record's bytes for the main thread.

    ``write`` runs on the client's event-loop thread (one call per record; a metadata header when a
    connection starts). :meth:`take` (main thread) returns the bytes received so far as segments,
    each starting where a connection started (its :class:`databento_dbn.Metadata`, None for the
    continuation of the previous connection). Lock-free: the list is only appended to by the writer
    and only trimmed at the front by the reader.
    """

    def __init__(self) -> None:
        self._parts: list[Any] = []
        self.closed = False
        self.error_texts: list[str] = []
        self.records = 0

    # --- BinaryIO surface used by databento's ClientStream
    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def write(self, b: bytes) -> int:
        if b[:3] == b"DBN":
            self._parts.append(_Header(b))
        else:
            if b[1] == RTYPE_ERROR:
                self.error_texts.append(_text(bytes(b[16:318])))
            self._parts.append(b)
        return len(b)

    # --- consumer side
    def take(self) -> list[tuple[dbn.Metadata | None, bytes]]:
        n = len(self._parts)
        if n == 0:
            return []
        parts = self._parts[:n]
        del self._parts[:n]
        segments: list[tuple[dbn.Metadata | None, list[bytes]]] = [(None, [])]
        for p in parts:
            if isinstance(p, _Header):
                segments.append((p.metadata(), []))
            else:
                segments[-1][1].append(p)
        self.records += n - sum(1 for p in parts if isinstance(p, _Header))
        return [(md, b"".join(chunks)) for md, chunks in segments if md is not None or chunks]


class _Header:
    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        self.raw = bytes(raw)

    def metadata(self) -> dbn.Metadata:
        return dbn.Metadata.decode(self.raw)


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
                 key: str | None = None, client_factory: Callable[..., Any] | None = None) -> None:
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
        self.collector = RecordCollector()
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
        client.add_stream(self.collector)
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

    def normalize(self, raw: np.ndarray, kind: str) -> np.ndarray:
        """Raw TRADE / BOOK records of one chunk → the kept records of the chosen contract (copy)."""
        stats = self.trade_stats if kind == "trades" else self.book_stats
        n = raw.shape[0]
        if n == 0:
            return raw
        stats.read += n
        if self.choice is None and not self._choose():
            stats.add_dropped("before_contract", n)
            return raw[:0]
        ts = raw["ts_recv"]
        inside = (ts > self.session.start_ns) & (ts <= self.session.end_ns)
        n_in = int(inside.sum())
        stats.add_filtered("outside_session", n - n_in)
        part = raw if n_in == n else raw[inside]
        if part.shape[0] == 0:
            return part
        mask = np.empty(part.shape[0], dtype=np.bool_)
        n_other, n_undef = es_mod._select(part["instrument_id"], part["price"], self._ids, kind == "trades", mask)
        stats.add_filtered("other_instrument", n_other)
        stats.add_dropped("undef_price", n_undef)
        out = part[mask]
        stats.add_kept(out["ts_recv"])
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

    @property
    def kept(self) -> int:
        return int(self.trades.shape[0] + self.books.shape[0] + self.options.shape[0])


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
        p = parse_records(data, where=where)
        n = int(p.trades.shape[0] + p.books.shape[0] + p.definitions.shape[0] + p.system.shape[0]
                + p.errors.shape[0] + p.mappings.shape[0]) + p.other
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
            trades = self.es.normalize(p.trades, "trades")
            books = self.es.normalize(p.books, "mbp-10")
        if self.options is not None:
            self.options.add_definitions(p.definitions)
            options = self.options.normalize(p.trades)
        data_ts = p.data_max_ts
        first = [int(a["ts_recv"].min()) for a in (p.trades, p.books) if a.shape[0]]
        hbs = p.heartbeat_ts
        hb_ts = int(hbs.max()) if hbs.shape[0] else None
        if hbs.shape[0]:
            first.append(int(hbs.min()))
        return Decoded(trades, books, options, data_ts, min(first) if first else None, hb_ts, n)


def _cat(parts: list[np.ndarray], empty: np.ndarray) -> np.ndarray:
    parts = [p for p in parts if p.shape[0]]
    if not parts:
        return empty
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
