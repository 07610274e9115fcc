"""Everything the replay of one trading date reads: :func:`open_session` → :class:`SessionInputs`.

Which files (SPEC §3, §12): for trading date D with session window (start_ns, end_ns] (ns, UTC),
the GLBX ``trades`` and ``mbp-10`` daily files of every UTC day in ``Session.utc_days()`` are
required; the GLBX ``definition`` file of a day is used when present and may only be absent if
that day's trades / MBP-10 metadata symbology maps ES outrights. Options come from OPRA DBN
(``trades`` + ``definition``, required for UTC day D — SPY options trade only inside D's
regular hours — and used for the session's other UTC days when both are present) or, when no
OPRA DBN file of day D exists, from the Bronze Parquet directory of D. If both exist, DBN wins
(the Parquet files are listed as ignored). ``.dbn`` is accepted wherever ``.dbn.zst`` is.

Everything is validated before a record reaches a consumer where that is possible: every
header is read and checked (schema, dataset, truncation of uncompressed files, completeness of
zstd frames) in :func:`open_session`; the ES trades files are pre-scanned (ordering, records,
trades of the chosen contract) and so are the option trades (ordering, records, the order in
which contracts first trade, which numbers them). Ordering and record checks of the MBP-10 files
run as their chunks stream.

Units: timestamps int64 ns since the epoch (UTC); ES prices int64 1e-9 index points (the
:data:`~spymaster.events.TRADE` / :data:`~spymaster.events.BOOK` layouts); option strike and
price float64 SPY $; sizes contracts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from spymaster.calendar import Session, fmt_et, parse_date, session_from_config
from spymaster.config import Config
from spymaster.errors import InstrumentError, MissingInputError
from spymaster.events import KIND_BOOK, KIND_NAMES, KIND_OPTION, KIND_TRADE
from spymaster.logs import get_logger
from spymaster.sources import es as es_mod
from spymaster.sources import opra as opra_mod
from spymaster.sources.dbn import (DbnHeader, StreamStats, check_schema, file_sha256, open_dbn, prefetch_sha256,
                                   record_dtype)
from spymaster.sources.lake import DATASET_NAMES, GLBX, OPRA, Lake
from spymaster.sources.parquet import ParquetOptions, parquet_files

log = get_logger("sources")

UNITS = {
    "timestamps": "int64 ns since the epoch, UTC (ts_recv is the ordering key)",
    "es_price": "int64, 1e-9 ES index points",
    "option_strike": "float64 SPY $",
    "option_price": "float64 SPY $ per share",
    "size": "contracts",
}


REASONS = {
    "outside_session": "filtered: ts_recv outside the session window (start_ns, end_ns]",
    "other_instrument": "filtered: an ES record of another instrument (other month, spread, other product)",
    "not_0dte": "filtered: an option trade of a contract that is not a session 0DTE contract of the root",
    "undef_price": "dropped (repair): price is UNDEF (i64 max) / null / NaN",
    "no_definition": "dropped: option trade whose instrument_id has no definition in force (ts_recv <= its own)",
    "definition_deleted": "dropped: option trade after its instrument's definition was deleted ('D')",
}


@dataclass
class InputFile:
    """One input file: where, what, how big; ``sha256`` is computed on first access (streamed, cached)."""

    path: Path
    role: str                 # es_definition | es_trades | es_mbp10 | opra_definition | opra_trades | options_parquet
    schema: str
    dataset: str
    utc_day: dt.date | None
    size: int
    lake_root: Path
    dbn_version: int | None = None
    compression: str = "none"

    @property
    def sha256(self) -> str:
        return file_sha256(self.path)

    @property
    def rel_path(self) -> str:
        try:
            return self.path.relative_to(self.lake_root).as_posix()
        except ValueError:
            return self.path.as_posix()

    def to_dict(self, *, with_hash: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.rel_path, "role": self.role, "schema": self.schema,
                             "dataset": self.dataset, "utc_day": self.utc_day.isoformat() if self.utc_day else None,
                             "size": self.size, "compression": self.compression, "dbn_version": self.dbn_version}
        if with_hash:
            d["sha256"] = self.sha256
        return d


@dataclass
class Stream:
    """One per-kind event stream: ``chunks()`` restarts from the beginning at every call.

    ``stats`` (records read / kept / filtered / dropped per reason, first / last kept ts_recv)
    belongs to the most recently started pass and fills as its chunks are consumed.
    """

    kind: int
    name: str
    files: list[InputFile]
    stats: StreamStats
    _factory: Callable[[StreamStats], Iterator[np.ndarray]] = field(repr=False)

    def chunks(self) -> Iterator[np.ndarray]:
        return self._factory(self.stats)


@dataclass
class SessionInputs:
    """The inputs of one trading date, validated and ready to stream."""

    session: Session
    config: Config
    lake: Lake
    es: es_mod.EsChoice
    files: list[InputFile]
    contracts: opra_mod.ContractTable
    options_source: str                      # "opra-dbn" | "parquet"
    options_ignored: list[InputFile]
    option_definitions: dict[str, Any]
    _streams: list[Stream] = field(repr=False)

    def streams(self) -> list[Stream]:
        """ES trades, ES MBP-10 and option trades (kinds KIND_TRADE, KIND_BOOK, KIND_OPTION)."""
        return list(self._streams)

    def stream(self, kind: int) -> Stream:
        for s in self._streams:
            if s.kind == kind:
                return s
        raise KeyError(kind)

    def manifest(self, *, with_hashes: bool = True) -> dict[str, Any]:
        """JSON-serializable description for output metadata (deterministic: no wall-clock values)."""
        s = self.session
        return {
            "date": s.iso,
            "session": {"start_ns": s.start_ns, "end_ns": s.end_ns, "start_et": fmt_et(s.start_ns),
                        "end_et": fmt_et(s.end_ns), "utc_days": [d.isoformat() for d in s.utc_days()]},
            "units": dict(UNITS),
            "files": [f.to_dict(with_hash=with_hashes) for f in self.files],
            "es_contract": self.es.to_dict(self.config.instrument.roll_days_before_expiry),
            "options": {"source": self.options_source, "root": self.config.instrument.option_root,
                        "ignored_files": [f.rel_path for f in self.options_ignored],
                        "contracts": self.contracts.summary(), "definitions": self.option_definitions},
            "streams": {st.name: st.stats.to_dict() for st in self._streams},
            "reasons": dict(REASONS),
        }


# ---------------------------------------------------------------------------------------- helpers
def _expected(lake: Lake, dataset: str, schema: str, day: dt.date) -> Path:
    return lake.bronze_path(dataset, schema, day)


def _missing(paths: list[Path], date: dt.date, what: str) -> MissingInputError:
    first, rest = paths[0], paths[1:]
    msg = f"{what} needed for trading date {date} is not in the lake (.dbn.zst or .dbn)"
    if rest:
        msg += "; also missing: " + ", ".join(str(p) for p in rest)
    return MissingInputError(msg, path=first)


def _input_file(h: DbnHeader, role: str, day: dt.date, lake: Lake) -> InputFile:
    return InputFile(path=h.path, role=role, schema=h.schema or "mixed", dataset=h.dataset, utc_day=day, size=h.size,
                     lake_root=lake.root, dbn_version=h.version, compression="zstd" if h.compressed else "none")


def _open_checked(path: Path, schema: str, dataset_dir: str) -> DbnHeader:
    h = open_dbn(path)
    check_schema(h, schema, DATASET_NAMES[dataset_dir])
    return h


# ---------------------------------------------------------------------------------------- entry point
def open_session(lake: Lake, date: str | dt.date, config: Config, *, prefetch_hashes: bool = True) -> SessionInputs:
    """Locate, validate and prepare every input of trading date ``date``.

    ``prefetch_hashes`` starts hashing the input files on a background thread (hashlib releases
    the GIL), so the sha256 values of :meth:`SessionInputs.manifest` are ready when the replay is.

    Raises :class:`MissingInputError`, :class:`CorruptInputError`, :class:`SchemaMismatchError`,
    :class:`OrderingError` (ES trades pre-scan) or :class:`InstrumentError` naming the file and
    the problem.
    """
    day0 = parse_date(date)
    session = session_from_config(day0, config)
    days = session.utc_days()
    count = config.io.chunk_records
    files: list[InputFile] = []

    # ---- GLBX: trades and mbp-10 required for every UTC day; definitions when present
    missing = [_expected(lake, GLBX, sch, d) for d in days for sch in ("trades", "mbp-10")
               if lake.find_bronze(GLBX, sch, d) is None]
    if missing:
        raise _missing(missing, session.date, "ES input file")
    es_files: dict[str, list[tuple[dt.date, DbnHeader]]] = {"trades": [], "mbp-10": []}
    headers_by_day: dict[dt.date, list[DbnHeader]] = {}
    defs_by_day: dict[dt.date, np.ndarray] = {}
    spreads = 0
    no_defs: list[tuple[dt.date, Path]] = []
    for d in days:
        dpath = lake.find_bronze(GLBX, "definition", d)
        if dpath is not None:
            h = _open_checked(dpath, "definition", GLBX)
            files.append(_input_file(h, "es_definition", d, lake))
            headers_by_day.setdefault(d, []).append(h)
            rows = []
            for arr in h.chunks(count):
                keep, n_spread = es_mod.outright_rows(arr)
                rows.append(keep[keep["ts_recv"] <= session.end_ns].copy())  # causal: nothing from after D
                spreads += n_spread
            defs_by_day[d] = np.concatenate(rows) if rows else np.zeros(0, dtype=record_dtype("definition"))
        else:
            no_defs.append((d, _expected(lake, GLBX, "definition", d)))
        for sch, role in (("trades", "es_trades"), ("mbp-10", "es_mbp10")):
            h = _open_checked(lake.find_bronze(GLBX, sch, d), sch, GLBX)  # type: ignore[arg-type]
            files.append(_input_file(h, role, d, lake))
            es_files[sch].append((d, h))
            headers_by_day.setdefault(d, []).append(h)
    lacking = [p for d, p in no_defs
               if not any(es_mod.is_es_outright(raw) and h.ids_for(raw, d)
                          for h in headers_by_day.get(d, []) for raw in h.mappings)]
    if lacking:
        raise _missing(lacking, session.date, "ES definition file (the trades / mbp-10 metadata maps no ES outright)")
    for d, p in no_defs:
        log.info("es_definitions_from_symbology", utc_day=d.isoformat(), missing=str(p))

    # ---- ES contract
    candidates = es_mod.collect_candidates(session, defs_by_day, headers_by_day)
    choice = es_mod.choose_contract(session, candidates, roll_days=config.instrument.roll_days_before_expiry,
                                    pinned=config.instrument.es_instrument, excluded_spreads=spreads)
    choice.session_trades = es_mod.prescan_trades(es_files["trades"], session, candidates, count)
    n_trades = choice.session_trades.get(choice.raw_symbol, 0)
    if n_trades == 0:
        raise InstrumentError(f"{session.iso}: the chosen ES contract {choice.raw_symbol} "
                              f"(instrument_id {choice.instrument_id}; {choice.reason}) has no trades in the session "
                              f"({fmt_et(session.start_ns)} .. {fmt_et(session.end_ns)}]",
                              path=es_files["trades"][-1][1].path)
    log.info("es_contract_chosen", date=session.iso, raw_symbol=choice.raw_symbol,
             instrument_id=choice.instrument_id, expiration=choice.contract.expiration.isoformat(),
             expiration_source=choice.expiration_source, reason=choice.reason, session_trades=n_trades,
             pinned=choice.pinned)

    # ---- options
    root = config.instrument.option_root
    opra_trades_d = lake.find_bronze(OPRA, "trades", session.date)
    opra_defs_d = lake.find_bronze(OPRA, "definition", session.date)
    pq_dir = lake.options_parquet_dir(session.date, root=root.lower())
    pq_files = parquet_files(pq_dir)
    ignored: list[InputFile] = []
    option_factory: Callable[[StreamStats], Iterator[np.ndarray]]
    option_files: list[InputFile] = []
    if opra_trades_d is not None or opra_defs_d is not None:
        if opra_trades_d is None or opra_defs_d is None:
            lack = _expected(lake, OPRA, "trades" if opra_trades_d is None else "definition", session.date)
            raise _missing([lack], session.date, "OPRA input file (trades and definition come as a pair)")
        pairs: list[tuple[dt.date, DbnHeader, DbnHeader]] = []
        for d in days:
            tp, dp = lake.find_bronze(OPRA, "trades", d), lake.find_bronze(OPRA, "definition", d)
            if tp is None and dp is None:
                continue
            if tp is None:
                log.info("opra_definitions_without_trades_skipped", utc_day=d.isoformat(), path=str(dp))
                continue
            if dp is None:
                raise _missing([_expected(lake, OPRA, "definition", d)], session.date,
                               f"OPRA definition file for the trades file {tp.name}")
            th, dh = _open_checked(tp, "trades", OPRA), _open_checked(dp, "definition", OPRA)
            pairs.append((d, th, dh))
        for d, th, dh in pairs:
            option_files += [_input_file(dh, "opra_definition", d, lake), _input_file(th, "opra_trades", d, lake)]
        defined, tables, dstats = opra_mod.load_definitions(
            [(d, dh) for d, _, dh in pairs], session, root=root,
            multiplier=config.instrument.option_multiplier, count=count)
        trade_files = [(d, th) for d, th, _ in pairs]
        order = opra_mod.traded_order(trade_files, tables, session, count, len(defined))
        contracts = opra_mod.restrict(defined, tables, order)

        def option_factory(stats: StreamStats) -> Iterator[np.ndarray]:
            return opra_mod.opra_chunks(trade_files, tables, contracts, session, count, stats)

        source = "opra-dbn"
        opt_defs = {**dstats.to_dict(), "defined_contracts": len(defined)}
        for p in pq_files:
            ignored.append(InputFile(p, "options_parquet", "options-parquet", "parquet", session.date,
                                     p.stat().st_size, lake.root))
        if pq_files:
            log.info("options_parquet_ignored", reason="OPRA DBN files exist for the date (DBN wins)",
                     files=[str(p) for p in pq_files])
    elif pq_files:
        pq_src = ParquetOptions(pq_files, session, root=root, count=count)
        contracts = pq_src.contracts
        option_files = [InputFile(p, "options_parquet", "options-parquet", "parquet", session.date, p.stat().st_size,
                                  lake.root) for p in pq_files]

        def option_factory(stats: StreamStats) -> Iterator[np.ndarray]:
            return pq_src.chunks(stats)

        source = "parquet"
        opt_defs = {"anomalies": dict(sorted(pq_src.anomalies.items()))}
    else:
        raise _missing([_expected(lake, OPRA, "trades", session.date), _expected(lake, OPRA, "definition", session.date),
                        pq_dir / "*.parquet"], session.date, "options input (OPRA DBN or Bronze Parquet)")
    files += option_files
    log.info("option_contracts", date=session.iso, source=source, **contracts.summary())

    def es_factory(sch: str) -> Callable[[StreamStats], Iterator[np.ndarray]]:
        def make(stats: StreamStats) -> Iterator[np.ndarray]:
            return es_mod.es_chunks(es_files[sch], sch, session, choice, count, stats)
        return make

    def role_files(*roles: str) -> list[InputFile]:
        return [f for f in files if f.role in roles]

    streams = [
        Stream(KIND_TRADE, KIND_NAMES[KIND_TRADE], role_files("es_trades"), StreamStats(), es_factory("trades")),
        Stream(KIND_BOOK, KIND_NAMES[KIND_BOOK], role_files("es_mbp10"), StreamStats(), es_factory("mbp-10")),
        Stream(KIND_OPTION, KIND_NAMES[KIND_OPTION], role_files("opra_trades", "options_parquet"), StreamStats(),
               option_factory),
    ]
    if prefetch_hashes:
        prefetch_sha256([f.path for f in files])
    return SessionInputs(session=session, config=config, lake=lake, es=choice, files=files, contracts=contracts,
                         options_source=source, options_ignored=ignored, option_definitions=opt_defs,
                         _streams=streams)
