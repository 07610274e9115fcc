"""``generate()``: write synthetic Bronze sessions into a lake (SPEC §12 layout).

For each requested XNYS trading date D (others are skipped with a log line) the generator
simulates the whole Globex session (:mod:`.es`, :mod:`.options`) and writes

* ``bronze/glbx-mdp3/{definition,trades,mbp-10}/glbx-mdp3-YYYYMMDD.*.dbn.zst`` for every UTC day
  the session overlaps (a UTC-day file holds the records of every session generated into it:
  records of sessions not regenerated now are kept from the existing file, so the union is
  always there and a session's records never depend on the requested range or order);
* ``bronze/opra-pillar/{definition,trades}/opra-pillar-YYYYMMDD.*.dbn.zst`` (UTC day D);
* optionally ``bronze/options/spy/date=YYYY-MM-DD/spy-options-YYYYMMDD.parquet``;
* ground truth ``synth/truth-YYYY-MM-DD.parquet`` (1 s grid: ``ts_ns``, ``es_fair`` latent front
  fair, ``es_mid`` front committed mid, ``es_last`` front last trade, ``basis``, ``spy_spot`` =
  es_mid / ratio − basis, the spot options are priced from) and
  ``synth/truth-options-YYYY-MM-DD.parquet`` (per option trade: ts_recv_ns, instrument_id,
  symbol, expiration, strike, right, price, size, spot, sigma, t_years, theo);
* ``synth/manifest.json``: per generated date its parameters, contracts and counts.

Determinism: every random stream is keyed by (seed, date, stream); zstd runs single-threaded;
headers carry no wall-clock value — reruns are byte-identical. A date already in the manifest
with the same parameters is skipped unless ``force``; with other parameters it is refused
unless ``force``. Files are written atomically (temp + rename); the manifest is updated last.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from spymaster.calendar import NS, UTC, holiday_reason, parse_date, session_for, sessions_covering_utc_day, to_ns
from spymaster.config import Config
from spymaster.errors import CalendarError, ConfigError, OutputError
from spymaster.events import BOOK, TRADE
from spymaster.logs import get_logger
from spymaster.sources.lake import GLBX, OPRA, Lake
from spymaster.synth import check, es, options
from spymaster.synth.dbnfile import write_dbn
from spymaster.synth.scenarios import ACTION_NAMES, ScenarioAction, ScenarioEvent

log = get_logger("synth")

SYNTH_VERSION = 1
ZSTD_LEVEL = 2     # single-threaded (deterministic bytes); ~60 % faster than 3 at the same ratio
DATASET = {GLBX: "GLBX.MDP3", OPRA: "OPRA.PILLAR"}


@dataclass(frozen=True)
class Scale:
    """Target counts per session (ES trades / MBP-10 records over all three ES instruments;
    option trades of both expiries). Actual counts land within a few percent."""

    name: str
    es_trades: int
    es_mbp: int
    option_trades: int

    @property
    def events(self) -> float:
        """Ambient ES events to simulate so the trade count lands near ``es_trades`` (small
        scales trade a little more per event: their books are thinner)."""
        e0 = self.es_trades / es.TRADES_PER_EVENT
        return self.es_trades / (es.TRADES_PER_EVENT + 0.24 * (1.0 - es.vol_scale(e0)))


SCALES = {
    "demo": Scale("demo", 25_000, 75_000, 12_000),
    "day": Scale("day", 500_000, 1_500_000, 300_000),
    "heavy": Scale("heavy", 1_000_000, 3_000_000, 1_000_000),
}


@dataclass
class FileWritten:
    path: Path
    dataset: str
    schema: str
    records: int


@dataclass
class SessionReport:
    date: str
    seed: int
    scale: str
    front: str
    next: str
    spread: str
    counts: dict[str, int]
    scenarios: list[ScenarioEvent]
    seconds: float


@dataclass
class GenerationReport:
    lake: Path
    files: list[FileWritten] = field(default_factory=list)
    sessions: list[SessionReport] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (date, reason)
    seconds: float = 0.0

    @property
    def scenario_events(self) -> list[ScenarioEvent]:
        return [e for s in self.sessions for e in s.scenarios]

    def summary(self) -> list[str]:
        lines = []
        for s in self.sessions:
            c = s.counts
            lines.append(f"{s.date}: front {s.front} · ES trades {c['es_trades']:,} · MBP-10 {c['es_mbp']:,} · "
                         f"option trades {c['option_trades']:,} · {s.seconds:.1f} s")
            for e in s.scenarios:
                m = e.measured
                what = m.get("barrier_state") or ("sweep" if m.get("tape_sweep_detected") else "") or ""
                lines.append(f"  scenario {e.kind} at {e.at_et} price {e.price} → {what}")
        for d, why in self.skipped:
            lines.append(f"{d}: skipped ({why})")
        lines.append(f"{len(self.files)} files written in {self.seconds:.1f} s")
        return lines


# ------------------------------------------------------------------ inputs

def resolve_dates(dates) -> tuple[list[dt.date], list[tuple[str, str]]]:
    """Dates from ``a..b`` ranges, ``a,b,c`` lists, date objects or iterables of those; returns
    (sorted XNYS trading days, skipped (date, reason))."""
    items: list = []
    if isinstance(dates, (str, dt.date)):
        dates = [dates]
    for d in dates:
        if isinstance(d, str):
            for part in filter(None, (p.strip() for p in d.split(","))):
                if ".." in part:
                    a, _, b = part.partition("..")
                    lo, hi = parse_date(a.strip()), parse_date(b.strip())
                    if hi < lo:
                        raise CalendarError(f"empty date range {part!r}")
                    items += [lo + dt.timedelta(days=i) for i in range((hi - lo).days + 1)]
                else:
                    items.append(parse_date(part))
        else:
            items.append(parse_date(d))
    days, skipped = [], []
    for d in sorted(set(items)):
        why = holiday_reason(d)
        if why:
            skipped.append((d.isoformat(), f"not an XNYS trading day: {why}"))
            log.info("synth.skip_date", date=d.isoformat(), reason=why)
        else:
            days.append(d)
    return days, skipped


def resolve_scale(scale: str | Scale) -> Scale:
    if isinstance(scale, Scale):
        return scale
    try:
        return SCALES[scale]
    except KeyError:
        raise ConfigError(f"unknown scale {scale!r} (known: {', '.join(SCALES)})") from None


# ------------------------------------------------------------------ manifest

def _manifest_path(lake: Lake) -> Path:
    return lake.root / "synth" / "manifest.json"


def _load_manifest(lake: Lake) -> dict:
    p = _manifest_path(lake)
    if not p.exists():
        return {"version": SYNTH_VERSION, "sessions": {}}
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise OutputError(f"unreadable synth manifest ({exc}); delete it and regenerate", path=p) from None


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fingerprint(seed: int, scale: Scale, scenarios: list, config: Config) -> dict:
    sc = [dict(kind=type(s).__name__, **asdict(s)) for s in scenarios]
    cfg = {"instrument": config.to_dict()["instrument"], "barrier": config.to_dict()["barrier"],
           "tape": config.to_dict()["tape"], "fuel_rate": config.fuel.rate}
    body = dict(version=SYNTH_VERSION, seed=int(seed), scale=asdict(scale), scenarios=sc, config=cfg)
    body["hash"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    return body


# ------------------------------------------------------------------ main entry

def generate(lake: Lake | str | Path, dates, *, scale: str | Scale = "demo", seed: int = 7,
             scenarios: Sequence = (), parquet_options: bool = False, force: bool = False,
             config: Config | None = None) -> GenerationReport:
    """Generate synthetic Bronze sessions for ``dates`` into ``lake`` (see module docstring)."""
    t_start = time.perf_counter()
    lake = lake if isinstance(lake, Lake) else Lake.at(lake)
    config = config or Config()
    sc_ = resolve_scale(scale)
    days, skipped = resolve_dates(dates)
    report = GenerationReport(lake=lake.root, skipped=list(skipped))
    manifest = _load_manifest(lake)
    todo: list[dt.date] = []
    for d in days:
        session = session_for(d)
        mine = [s for s in scenarios if s.date is None or str(s.date) == d.isoformat()]
        fp = _fingerprint(seed, sc_, mine, config)
        old = manifest["sessions"].get(d.isoformat())
        if old and not force:
            if old.get("fingerprint", {}).get("hash") != fp["hash"]:
                raise OutputError(f"{d} was already generated with other parameters "
                                  f"(seed {old['fingerprint'].get('seed')}, scale {old['fingerprint'].get('scale', {}).get('name')}); "
                                  "use --force to regenerate it", path=_manifest_path(lake))
            if _session_files_exist(lake, session):
                report.skipped.append((d.isoformat(), "already generated (use --force to regenerate)"))
                log.info("synth.already_generated", date=d.isoformat())
                continue
        todo.append(d)
    if not todo:
        report.seconds = time.perf_counter() - t_start
        return report

    work = lake.root / "synth" / f".work-{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        results = {}
        for d in todo:
            results[d] = _generate_session(lake, d, seed=seed, scale=sc_, scenarios=scenarios, config=config,
                                           work=work, parquet_options=parquet_options, report=report)
        _assemble_es(lake, results, config, report)
        for d, r in results.items():
            session_rep = r["report"]
            manifest["sessions"][d.isoformat()] = dict(
                fingerprint=_fingerprint(seed, sc_, r["scenarios"], config), front=session_rep.front,
                next=session_rep.next, spread=session_rep.spread, counts=session_rep.counts,
                scenarios=[_jsonable(e.to_dict()) for e in session_rep.scenarios])
        manifest["version"] = SYNTH_VERSION
        _write_atomic(_manifest_path(lake), json.dumps(manifest, indent=1, sort_keys=True).encode())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.seconds = time.perf_counter() - t_start
    return report


def _session_files_exist(lake: Lake, session) -> bool:
    for u in session.utc_days():
        for schema in ("definition", "trades", "mbp-10"):
            if lake.find_bronze(GLBX, schema, u) is None:
                return False
    for schema in ("definition", "trades"):
        if lake.find_bronze(OPRA, schema, session.date) is None:
            return False
    return (lake.root / "synth" / f"truth-{session.iso}.parquet").exists()


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


# ------------------------------------------------------------------ one session

def _generate_session(lake: Lake, d: dt.date, *, seed: int, scale: Scale, scenarios, config: Config, work: Path,
                      parquet_options: bool, report: GenerationReport) -> dict:
    t0 = time.perf_counter()
    session = session_for(d)
    mine = [s for s in scenarios if s.date is None or str(s.date) == d.isoformat()]
    ratio = config.instrument.es_spy_ratio
    res, compiled = es.simulate_session(session, seed=seed, events=scale.events, scenarios=mine, config=config,
                                        workdir=work)
    paths = res.paths

    def spot_at(ts):
        mid = es.step_lookup(res.mid_ts, res.mid_px, ts)
        return mid / ratio - paths.at(paths.basis, ts)

    # ---- options
    def_ts = options.definitions_ts(d)
    center = int(round(float(spot_at(np.array([def_ts]))[0])))
    chain = options.build_chain(session, seed, center, root=config.instrument.option_root)
    defs = options.definition_array(chain, session, root=config.instrument.option_root)
    smile = options.smile_for(seed, d)
    otr = options.simulate_trades(session, chain, seed=seed, n_target=scale.option_trades, spot_at=spot_at,
                                  rate=config.fuel.rate, smile=smile)
    day_start = to_ns(dt.datetime(d.year, d.month, d.day, tzinfo=UTC))
    mappings = options.chain_mappings(chain, d)
    for schema, arr in (("definition", defs), ("trades", otr.records)):
        path = lake.bronze_path(OPRA, schema, d)
        write_dbn(path, arr, dataset=DATASET[OPRA], schema=schema, start_ns=day_start, end_ns=day_start + 86_400 * NS,
                  symbols=[f"{config.instrument.option_root}.OPT"], mappings=mappings, stype_in="parent",
                  level=ZSTD_LEVEL)
        report.files.append(FileWritten(path, DATASET[OPRA], schema, int(arr.shape[0])))
    if parquet_options:
        _write_parquet_options(lake, d, chain, otr, report)

    # ---- truth
    sdir = lake.root / "synth"
    grid = paths.t0 + np.arange(paths.seconds, dtype=np.int64) * NS
    es_mid = es.step_lookup(res.mid_ts, res.mid_px, grid)
    es_last = es.step_lookup(res.last_ts, res.last_px, grid)
    basis = paths.basis
    meta = dict(seed=seed, scale=scale.name, date=d.isoformat(), front=res.front.raw_symbol, next=res.next.raw_symbol,
                spread=res.spread.raw_symbol, es_spy_ratio=ratio, rate=config.fuel.rate, smile=smile.to_dict(),
                daily_vol=paths.daily_vol, version=SYNTH_VERSION)
    truth = pa.table({
        "ts_ns": pa.array(grid, pa.int64()),
        "es_fair": pa.array(paths.front[: grid.size], pa.float64()),
        "es_mid": pa.array(es_mid, pa.float64(), from_pandas=True),
        "es_last": pa.array(es_last, pa.float64(), from_pandas=True),
        "basis": pa.array(basis[: grid.size], pa.float64()),
        "spy_spot": pa.array(es_mid / ratio - basis[: grid.size], pa.float64(), from_pandas=True),
    }).replace_schema_metadata({"spymaster.synth": json.dumps(meta, sort_keys=True)})
    _write_parquet(sdir / f"truth-{d.isoformat()}.parquet", truth)
    rec = otr.records
    opt_truth = pa.table({
        "ts_recv_ns": pa.array(rec["ts_recv"], pa.int64()),
        "instrument_id": pa.array(rec["instrument_id"], pa.uint32()),
        "symbol": pa.array([chain.raw_symbol[i] for i in otr.contract.tolist()], pa.string()),
        "expiration": pa.array([chain.expiry[i] for i in otr.contract.tolist()], pa.date32()),
        "strike": pa.array(chain.strike[otr.contract], pa.float64()),
        "right": pa.array(np.where(chain.is_call[otr.contract], "C", "P"), pa.string()),
        "price": pa.array(rec["price"] / 1e9, pa.float64()),
        "size": pa.array(rec["size"].astype(np.int64), pa.int64()),
        "spot": pa.array(otr.spot, pa.float64()),
        "sigma": pa.array(otr.sigma, pa.float64()),
        "t_years": pa.array(otr.t_years, pa.float64()),
        "theo": pa.array(otr.theo, pa.float64()),
    }).replace_schema_metadata({"spymaster.synth": json.dumps(meta, sort_keys=True)})
    _write_parquet(sdir / f"truth-options-{d.isoformat()}.parquet", opt_truth)

    # ---- scenarios: what was written, and the SPEC §7 features of its window
    events = compiled.events
    log_arr = res.script_log
    for row_i, owner in enumerate(compiled.row_owner):
        ev = events[owner]
        ts_e, ts_r, size, ntr, first, last = (int(x) for x in log_arr[row_i])
        typ = compiled.rows[row_i][1]
        if ts_r == 0:
            continue
        sim_base = es.BookSim.base_for(float(paths.front[0]), res.front.tick)
        px = None if first < 0 else (first + sim_base) * res.front.tick
        lpx = None if last < 0 else (last + sim_base) * res.front.tick
        ev.actions.append(ScenarioAction(ACTION_NAMES[typ], ts_e, ts_r, ev.side, px, size, ntr, lpx))
    for i, ev in enumerate(events):
        if ev.kind == "Drive":
            ev.measured = dict(es_mid_at=float(es.step_lookup(res.mid_ts, res.mid_px, [ev.at_ns])[0]),
                               es_fair_at=float(paths.at(paths.front, ev.at_ns)))
            continue
        books = res.window_books.get(i, np.zeros(0, BOOK))
        trades = res.window_trades.get(i, np.zeros(0, TRADE))
        m: dict = {}
        if ev.price is not None and ev.kind != "Sweep":
            m.update(check.barrier(books, trades, int(round(ev.price * 1e9)), 1 if ev.direction == "UP" else -1,
                                   ev.bar_close_ns, config))
        walked = [a for a in ev.actions if a.action == "sweep" and a.price is not None]
        level = ev.level if ev.level is not None else (walked[0].price / ratio if walked else 0.0)
        tp = check.tape(trades, level, ev.bar_close_ns, config)
        m.update({k: v for k, v in tp.items()})
        ev.measured = _jsonable(m)

    counts = {
        "es_trades": int(sum(v for (u, s), v in res.counts.items() if s == "trades")),
        "es_mbp": int(sum(v for (u, s), v in res.counts.items() if s == "mbp-10")),
        "option_trades": int(otr.records.shape[0]),
        "option_definitions": int(defs.shape[0]),
    }
    srep = SessionReport(d.isoformat(), seed, scale.name, res.front.raw_symbol, res.next.raw_symbol,
                         res.spread.raw_symbol, counts, events, time.perf_counter() - t0)
    report.sessions.append(srep)
    log.info("synth.session", date=d.isoformat(), front=res.front.raw_symbol, seconds=round(srep.seconds, 2), **counts)
    return dict(session=session, es=res, report=srep, scenarios=mine)


def _write_parquet(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def _write_parquet_options(lake: Lake, d: dt.date, chain, otr, report: GenerationReport) -> None:
    rec = otr.records
    price = rec["price"] / 1e9
    aggr = options.tick_rule(otr.contract, price)
    t = pa.table({
        "ts_recv_ns": pa.array(rec["ts_recv"], pa.int64()),
        "ts_event_ns": pa.array(rec["ts_event"], pa.int64()),
        "symbol": pa.array([chain.raw_symbol[i] for i in otr.contract.tolist()], pa.string()),
        "expiration": pa.array([chain.expiry[i] for i in otr.contract.tolist()], pa.date32()),
        "strike": pa.array(chain.strike[otr.contract], pa.float64()),
        "right": pa.array(np.where(chain.is_call[otr.contract], "C", "P"), pa.string()),
        "price": pa.array(price, pa.float64()),
        "size": pa.array(rec["size"].astype(np.int64), pa.int64()),
        "aggressor": pa.array(aggr, pa.int8()),
    })
    path = lake.options_parquet_dir(d) / f"spy-options-{d:%Y%m%d}.parquet"
    _write_parquet(path, t)
    report.files.append(FileWritten(path, "parquet", "options", t.num_rows))


# ------------------------------------------------------------------ UTC-day ES files

def _assemble_es(lake: Lake, results: dict, config: Config, report: GenerationReport) -> None:
    roll = config.instrument.roll_days_before_expiry
    days: set[dt.date] = set()
    for r in results.values():
        days.update(r["session"].utc_days())
    for u in sorted(days):
        start = to_ns(dt.datetime(u.year, u.month, u.day, tzinfo=UTC))
        end = start + 86_400 * NS
        mappings = es.day_mappings(u, roll)
        defs = es.definitions_for_day(u, roll)
        path = lake.bronze_path(GLBX, "definition", u)
        write_dbn(path, defs, dataset=DATASET[GLBX], schema="definition", start_ns=start, end_ns=end,
                  symbols=["ES.FUT"], mappings=mappings, stype_in="parent")
        report.files.append(FileWritten(path, DATASET[GLBX], "definition", int(defs.shape[0])))
        covering = sessions_covering_utc_day(u)
        for schema, dtype in (("trades", TRADE), ("mbp-10", BOOK)):
            windows = []
            for sd in covering:
                if sd in results:
                    s = results[sd]["session"]
                    part = results[sd]["es"].parts.get((u, schema))
                    windows.append((s.start_ns, s.end_ns, part))
            windows.sort(key=lambda w: w[0])
            existing = lake.find_bronze(GLBX, schema, u)
            out_path = lake.bronze_path(GLBX, schema, u)
            counter = [0]
            records = _merge_stream(existing, schema, dtype, windows, counter)
            write_dbn(out_path, records, dataset=DATASET[GLBX], schema=schema, start_ns=start, end_ns=end,
                      symbols=["ES.FUT"], mappings=mappings, stype_in="parent", level=ZSTD_LEVEL)
            if existing is not None and existing != out_path:
                existing.unlink()
            report.files.append(FileWritten(out_path, DATASET[GLBX], schema, counter[0]))


def _read_existing(path: Path, schema: str, dtype) -> Iterator[np.ndarray]:
    import databento as db

    try:
        store = db.DBNStore.from_file(path)
        if store.metadata.schema is None or str(store.metadata.schema) != schema:
            raise OutputError(f"existing file holds schema {store.metadata.schema}, not {schema}; "
                              "cannot merge into it (move it away)", path=path)
        for chunk in store.to_ndarray(count=200_000):
            yield np.frombuffer(chunk.tobytes(), dtype=dtype)
    except OutputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decode failure of a foreign file
        raise OutputError(f"existing file cannot be read for merging ({exc}); move it away", path=path) from None


def _read_part(path: Path | None, dtype, rows: int = 200_000) -> Iterator[np.ndarray]:
    if path is None or not path.exists():
        return
    with open(path, "rb") as f:
        while True:
            buf = f.read(rows * dtype.itemsize)
            if not buf:
                break
            yield np.frombuffer(buf, dtype=dtype)


def _merge_stream(existing: Path | None, schema: str, dtype, windows: list, counter: list) -> Iterator[np.ndarray]:
    """Existing records outside the regenerated windows, interleaved in time with the new parts.

    ``windows`` = sorted (start_ns exclusive, end_ns inclusive, part path) of the sessions
    generated now; an existing record with ts_recv inside one of them is replaced.
    """
    old = _read_existing(existing, schema, dtype) if existing is not None else iter(())
    buf = np.zeros(0, dtype=dtype)

    def take_until(limit: int) -> Iterator[np.ndarray]:
        """Yield existing records with ts_recv <= limit (buffering the rest)."""
        nonlocal buf
        while True:
            if buf.size:
                k = int(np.searchsorted(buf["ts_recv"], limit, side="right"))
                if k:
                    yield buf[:k]
                if k < buf.size:
                    buf = buf[k:]
                    return
                buf = buf[:0]
            nxt = next(old, None)
            if nxt is None:
                return
            buf = nxt

    def emit(arr):
        counter[0] += arr.shape[0]
        return arr

    for start, end, part in windows:
        for arr in take_until(start):
            yield emit(arr)
        for _ in take_until(end):   # replaced: the regenerated session's old records
            pass
        for arr in _read_part(part, dtype):
            yield emit(arr)
    for arr in take_until(np.iinfo(np.int64).max):
        yield emit(arr)
