"""``spymaster live``: the Databento live feed through the replay engine, written as labels resolve.

Wiring (the same code path as replay — only the batch producer differs):

    databento.Live (GLBX.MDP3)  ─┐  LiveConnection → RecordCollector → LiveDecoder (LiveEsSource)
    databento.Live (OPRA.PILLAR) ─┘  LiveConnection → RecordCollector → LiveDecoder (LiveOptionSource)
            → LiveMerger (bounded lateness, replay order) → ReplayEngine.feed / advance_clock
            → on_row → PartSink (atomic Parquet parts) → compact → signals_{date}.parquet

:class:`LiveRunner` is the Python API (tests and benchmarks use it); the click command wraps it.
The main thread polls the collectors every few milliseconds, so the client threads only append
bytes. The run ends when both streams have closed (end of session), when the released horizon
passes the session end, on SIGINT / SIGTERM, or on a fatal :class:`~spymaster.errors.LiveError`.
In every case the buffered records are fed, the engine finishes (pending touches resolve with
``label_complete = false``) and every row is flushed to a part. The day file is compacted when the
session ended (streams closed or session end passed); after a signal or an error only with
``compact_on_stop`` (``--compact-on-stop``), because a partial day must not look complete —
``spymaster live --date D --compact`` compacts later.

Gaps: when a connection is re-established, the interval between the last timestamp seen before and
the first one after is a gap. The Gold schema is fixed, so gaps are flagged in the file metadata:
``live.gaps`` (stream, start_ns, end_ns, ET strings) and ``live.gap_affected_event_ids`` — touches
whose feature or label window [t − W, t + label_horizon] intersects a gap, W the longest trailing
feature window (:func:`gap_window_s`).
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click

from spymaster.calendar import ET, NS, Session, fmt_et, from_ns, parse_date, session_from_config, trading_days
from spymaster.config import Config
from spymaster.errors import LiveError
from spymaster.logs import get_logger

log = get_logger("live")

DAY_NS = 86_400 * NS
PUMP_BYTES = 8 << 20   # bytes taken per connection per loop round: bounded batches, frequent releases


@dataclass
class Gap:
    """Event time with no records from one stream (a reconnect), ns; ``end_ns`` None while open."""

    stream: str
    start_ns: int | None
    end_ns: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"stream": self.stream, "start_ns": self.start_ns, "end_ns": self.end_ns,
                "start_et": fmt_et(self.start_ns) if self.start_ns is not None else None,
                "end_et": fmt_et(self.end_ns) if self.end_ns is not None else None,
                "seconds": (self.end_ns - self.start_ns) / NS if self.start_ns is not None and self.end_ns is not None
                else None}


@dataclass
class LiveResult:
    date: str
    stopped_by: str                    # "end_of_stream" | "session_end" | "signal" | "error"
    gold_path: Path | None
    parts: list[Path]
    rows: int
    metadata: dict[str, Any]
    records: int = 0
    seconds: float = 0.0
    error: LiveError | None = None
    table: Any = None

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def gap_window_s(config: Config) -> tuple[float, float]:
    """(W before t, after t) in s: the longest trailing feature window and the label horizon."""
    b, tp, ba = config.barrier, config.tape, config.basis
    before = max(b.barrier_window_s, b.baseline_window_s, tp.tape_window_s + tp.sweep_lookback_s,
                 tp.velocity_window_s, ba.parity_window_s)
    return before, config.labels.label_horizon_s


def gap_affected(rows: list[tuple[str, int]], gaps: list[dict], before_s: float, after_s: float) -> list[str]:
    """event_ids whose [t − before, t + after] intersects a gap (open ends count as unbounded)."""
    out = []
    bn, an = int(round(before_s * NS)), int(round(after_s * NS))
    for eid, t in rows:
        for g in gaps:
            lo = g["start_ns"] if g["start_ns"] is not None else -(2**62)
            hi = g["end_ns"] if g["end_ns"] is not None else 2**62
            if lo < t + an and hi > t - bn:
                out.append(eid)
                break
    return sorted(out)


def current_trading_date(now_ns: int | None = None) -> dt.date:
    """The trading date whose session contains now (17:00 ET rolls to the next trading day)."""
    now = from_ns(time.time_ns() if now_ns is None else now_ns, ET)
    day = now.date() + (dt.timedelta(days=1) if now.hour >= 17 else dt.timedelta(0))
    return trading_days(day, day + dt.timedelta(days=10))[0]


def default_start_ns(session: Session, now_ns: int | None = None) -> int | None:
    """Replay the session from its start when it has begun (clamped to the gateway's 24 h replay
    window); None (live from now) before it begins or when it ended more than 24 h ago."""
    now = time.time_ns() if now_ns is None else now_ns
    earliest = now - DAY_NS + 60 * NS
    if now <= session.start_ns or earliest > session.end_ns:
        return None
    return max(session.start_ns + 1, earliest)


class LiveRunner:
    """One trading date from two ``databento.Live`` clients to Gold part files and the day file.

    ``gateway`` / ``port`` override ``live.gateway`` / ``live.port``; ``start_ns`` is the subscriptions'
    intraday-replay start (None: from now); ``bulk`` picks the record consumer (None: the bulk
    protocol when the installed databento supports it). Hooks: ``on_bar`` (the engine's), ``on_batch``
    (every batch fed, clock ticks included). ``wall_ns`` is the wall clock of the merge's timer.
    """

    def __init__(self, config: Config, date: str | dt.date, *, gateway: str | None = None, port: int | None = None,
                 start_ns: int | None = None, lake: str | Path | None = None, client_factory: Callable | None = None,
                 on_bar: Callable | None = None, on_batch: Callable | None = None,
                 wall_ns: Callable[[], int] = time.time_ns, poll_s: float = 0.005, compact_on_stop: bool = False,
                 keep_parts: bool = False, install_signals: bool = True, bulk: bool | None = None,
                 max_backlog_bytes: int | None = None) -> None:
        from spymaster.replay.clock import LiveMerger
        from spymaster.replay.engine import ReplayEngine
        from spymaster.sinks.parts import PartSink
        from spymaster.sources import live as src
        from spymaster.sources.lake import Lake

        self.config = config
        self.session = session_from_config(parse_date(date), config)
        self.lake = Lake.at(lake if lake is not None else config.io.lake)
        self.poll_s = poll_s
        self.on_batch = on_batch
        self.compact_on_stop = compact_on_stop
        self.keep_parts = keep_parts
        self.install_signals = install_signals
        key = src.api_key()
        live = config.live
        backlog = src.MAX_BACKLOG_BYTES if max_backlog_bytes is None else max_backlog_bytes
        self.es = src.LiveEsSource(self.session, config)
        self.options = src.LiveOptionSource(self.session, config)
        self.connections = {
            src.GLBX_DATASET: src.LiveConnection(src.GLBX_DATASET, src.glbx_subscriptions(config), config, gateway=gateway,
                                                 port=port, start_ns=start_ns, key=key, client_factory=client_factory,
                                                 bulk=bulk, max_backlog_bytes=backlog),
            src.OPRA_DATASET: src.LiveConnection(src.OPRA_DATASET, src.opra_subscriptions(config), config, gateway=gateway,
                                                 port=port, start_ns=start_ns, key=key, client_factory=client_factory,
                                                 bulk=bulk, max_backlog_bytes=backlog),
        }
        del key
        self.decoders = {src.GLBX_DATASET: src.LiveDecoder(src.GLBX_DATASET, es=self.es),
                         src.OPRA_DATASET: src.LiveDecoder(src.OPRA_DATASET, options=self.options)}
        lateness = int(round(live.lateness_ms * 1e6))
        self.merger = LiveMerger(list(self.connections), lateness,
                                 realtime_window_ns=(live.heartbeat_interval_s + 10) * NS + lateness, wall_ns=wall_ns)
        self.sink = PartSink(self.lake.live_parts_dir(self.session.date), live.flush_seconds, live.flush_rows,
                             meta=self._part_meta)
        self._rows_seen: list[tuple[str, int]] = []
        self.engine = ReplayEngine(config, self.session, on_row=self._on_row, keep_rows=False, on_bar=on_bar)
        self.gaps: list[Gap] = []
        self._open_gap: dict[str, Gap] = {}
        self._first_md: dict[str, bool] = {}
        self._last_ts: dict[str, int | None] = {n: None for n in self.connections}
        self._stop = threading.Event()
        self.stop_reason: str | None = None
        self.ticks = 0
        self.records = 0
        self.fed = 0

    # ------------------------------------------------------------------ control
    def request_stop(self, reason: str = "signal") -> None:
        """Stop cleanly at the next poll (signal handlers call this)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop.set()

    def _on_row(self, row: dict) -> None:
        self._rows_seen.append((row["event_id"], int(row["ts_event_ns"])))
        self.sink.add(row)

    # ------------------------------------------------------------------ main loop
    def run(self) -> LiveResult:
        t0 = time.perf_counter()
        old = self._signals()
        error: LiveError | None = None
        try:
            started = []
            try:
                for c in self.connections.values():
                    c.start()
                    started.append(c)
            except LiveError:
                for c in started:
                    c.terminate()
                raise
            log.info("live_started", date=self.session.iso, session_start=fmt_et(self.session.start_ns),
                     session_end=fmt_et(self.session.end_ns), connections=[c.where for c in self.connections.values()])
            while not self._stop.is_set():
                done = {n: c.done.is_set() for n, c in self.connections.items()}
                moved = self._pump()
                # a stream ended once its connection is done *and* everything it received is decoded
                ended = {n: done[n] and not c.collector.pending for n, c in self.connections.items()}
                for n, c in self.connections.items():
                    if ended[n]:
                        if c.error is not None:
                            self.request_stop("error")
                        elif not self.merger.streams[n].closed:
                            self.merger.close(n)
                moved |= self._advance()
                if all(ended.values()):
                    self.request_stop("end_of_stream")
                elif self.merger.released_ns > self.session.end_ns:
                    self.request_stop("session_end")
                self.sink.maybe_flush()
                if not moved:
                    time.sleep(self.poll_s)
        finally:
            self._restore(old)
            error = self._shutdown()
        reason = self.stop_reason or "end_of_stream"
        complete = reason in ("end_of_stream", "session_end") and error is None
        metadata = self.metadata(reason)
        gold, table = None, None
        if complete or self.compact_on_stop:
            gold, table = self.compact(metadata)
        secs = time.perf_counter() - t0
        log.info("live_finished", date=self.session.iso, stopped_by=reason, rows=self.sink.rows_written,
                 parts=len(self.sink.parts), gold=str(gold) if gold else None, records=self.records,
                 seconds=round(secs, 3), late=self.merger.summary()["late_total"], gaps=len(self.gaps))
        result = LiveResult(self.session.iso, reason, gold, list(self.sink.parts), self.sink.rows_written, metadata,
                            self.records, secs, error, table)
        if error is not None:
            raise error
        return result

    def _pump(self) -> bool:
        """Take every connection's bytes, decode, push into the merge; True if anything arrived."""
        moved = False
        for name, conn in self.connections.items():
            segments = conn.collector.take(max_bytes=PUMP_BYTES, limit=PUMP_BYTES)
            if not segments:
                continue
            moved = True
            dec = self.decoders[name]
            for md, data in segments:
                if md is not None:
                    if self._first_md.get(name):
                        gap = Gap(name, self._last_ts[name], None)
                        self._open_gap[name] = gap
                        self.gaps.append(gap)
                    self._first_md[name] = True
                if not data:
                    continue
                d = dec.decode(data, conn.where)
                self.records += d.records
                if name in self._open_gap and d.first_ts is not None:
                    gap = self._open_gap.pop(name)
                    gap.end_ns = d.first_ts
                    log.warning("live_gap", **gap.to_dict())
                self.merger.push(name, trades=d.trades, books=d.books, options=d.options, data_ts=d.data_ts,
                                 heartbeat_ts=d.heartbeat_ts)
                latest = [v for v in (d.data_ts, d.heartbeat_ts, self._last_ts[name]) if v is not None]
                self._last_ts[name] = max(latest) if latest else None
        return moved

    def _advance(self) -> bool:
        """Release what the merge allows, feed it, tick the clock if that closes a bar / a label."""
        from spymaster.replay.clock import step

        batches, t = step(self.merger, self.engine, self.session.end_ns, feed=self._feed)
        if t is not None:
            self.ticks += 1
            if self.on_batch is not None:
                from spymaster.events import EventBatch

                self.on_batch(EventBatch.clock(t))
        return bool(batches)

    def _feed(self, batch) -> None:
        if len(batch):
            self.engine.feed(batch)
            self.fed += len(batch)
            if self.on_batch is not None:
                self.on_batch(batch)

    def _shutdown(self) -> LiveError | None:
        from spymaster.replay.clock import POS_INF

        for c in self.connections.values():
            c.stop()
        for c in self.connections.values():
            c.join(timeout=5.0)
            if not c.done.is_set():
                c.terminate()
                c.join(timeout=2.0)
        while self._pump():
            pass
        errors = [c.error for c in self.connections.values() if c.error is not None]
        for batch in self.merger.release_batches(POS_INF):
            self._feed(batch)
        for st, name in ((self.es.trade_stats, src_glbx()), (self.es.book_stats, src_glbx()),
                         (self.options.stats, src_opra())):
            st.complete = self.merger.streams[name].closed
        self.engine.finish()
        self.sink.flush()
        return errors[0] if errors else None

    # ------------------------------------------------------------------ signals
    def _signals(self) -> dict:
        if not self.install_signals or threading.current_thread() is not threading.main_thread():
            return {}
        old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, lambda signum, frame: self._on_signal(signum))
        return old

    def _on_signal(self, signum: int) -> None:
        log.warning("live_signal", signal=signal.Signals(signum).name, action="stopping cleanly")
        self.request_stop("signal")

    @staticmethod
    def _restore(old: dict) -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)

    # ------------------------------------------------------------------ metadata and compaction
    def live_section(self, stopped_by: str | None = None) -> dict[str, Any]:
        before, after = gap_window_s(self.config)
        gaps = [g.to_dict() for g in self.gaps]
        last = self.engine.stats.last_ts
        return {
            "stopped_by": stopped_by,
            "last_event_ts_ns": last,
            "last_event_et": fmt_et(last) if last is not None else None,
            "gaps": gaps,
            "gap_window_s": {"before": before, "after": after},
            "gap_affected_event_ids": gap_affected(self._rows_seen, gaps, before, after),
            "merge": self.merger.summary(),
            "clock_ticks": self.ticks,
            "connections": {n: {"where": c.where, "reconnects": c.reconnects, "bulk": c.bulk,
                                "backpressure_pauses": c.collector.pauses,
                                "events": [e.kind for e in c.events],
                                "system_messages": dict(sorted(self.decoders[n].system_counts.items())),
                                "error_messages": list(self.decoders[n].error_messages),
                                "other_records": self.decoders[n].other_records}
                            for n, c in self.connections.items()},
            "part_run": self.sink.run,
        }

    def _part_meta(self) -> dict[str, Any]:
        return self.live_section(None)

    def inputs_manifest(self) -> dict[str, Any]:
        s = self.session
        es = self.es.choice.to_dict(self.config.instrument.roll_days_before_expiry) if self.es.choice else None
        if es is not None:
            es["session_trades"] = self.es.trade_stats.kept
        return {
            "source": "live",
            "date": s.iso,
            "session": {"start_ns": s.start_ns, "end_ns": s.end_ns, "start_et": fmt_et(s.start_ns),
                        "end_et": fmt_et(s.end_ns)},
            "subscriptions": {n: [f"{x.schema}:{x.stype_in}:{x.symbols}" for x in c.subscriptions]
                              for n, c in self.connections.items()},
            "es_contract": es,
            "options": {"source": "opra-live", "root": self.config.instrument.option_root,
                        "contracts": self.options.contracts.summary(), "definitions": self.options.def_stats.to_dict()},
            "streams": {"es_trade": self.es.trade_stats.to_dict(), "es_mbp10": self.es.book_stats.to_dict(),
                        "option_trade": self.options.stats.to_dict()},
        }

    def metadata(self, stopped_by: str | None = None) -> dict[str, Any]:
        from spymaster.pipeline import code_version

        st = self.engine.stats
        return {
            "format": "spymaster.gold.v1",
            "code_version": code_version(),
            "date": self.session.iso,
            "symbol": self.config.instrument.option_root,
            "es_spy_ratio": self.config.instrument.es_spy_ratio,
            "config": self.config.to_dict(),
            "inputs": self.inputs_manifest(),
            "events": st.events,
            "bars": st.bars,
            "touches": st.touches,
            "labels_incomplete": st.labels_incomplete,
            "live": self.live_section(stopped_by),
        }

    def compact(self, metadata: dict[str, Any]):
        return compact_day(self.lake, self.session.date, metadata, self.config, keep_parts=self.keep_parts)


def compact_day(lake, date: dt.date, metadata: dict[str, Any] | None, config: Config, *, keep_parts: bool = False):
    """Compact the live parts of ``date`` into the Gold day file; gaps listed in the parts' metadata
    (earlier runs) are merged into ``live.gaps`` and the affected event_ids recomputed."""
    from spymaster.sinks.parts import compact, part_files, part_metadata, read_parts

    directory = lake.live_parts_dir(date)
    md = dict(metadata or {"format": "spymaster.gold.v1", "date": date.isoformat(), "config": config.to_dict()})
    live = dict(md.get("live") or {})
    gaps = list(live.get("gaps") or [])
    for p in part_files(directory):
        for g in (part_metadata(p).get("live") or {}).get("gaps") or []:
            if g not in gaps:
                gaps.append(g)
    table = read_parts(directory)
    rows = list(zip(table.column("event_id").to_pylist(), table.column("ts_event_ns").to_pylist()))
    before, after = gap_window_s(config)
    live["gaps"] = gaps
    live["gap_window_s"] = {"before": before, "after": after}
    live["gap_affected_event_ids"] = gap_affected(sorted(set(rows)), gaps, before, after)
    md["live"] = live
    return compact(directory, lake.gold_path(date), md, keep_parts=keep_parts)


def src_glbx() -> str:
    from spymaster.sources.live import GLBX_DATASET

    return GLBX_DATASET


def src_opra() -> str:
    from spymaster.sources.live import OPRA_DATASET

    return OPRA_DATASET


# ---------------------------------------------------------------------------------------- CLI
@click.command("live")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="Replay config TOML (default: built-in defaults).")
@click.option("--gateway", default=None, help="Gateway host (default: live.gateway, else Databento's per-dataset gateway).")
@click.option("--port", type=int, default=None, help="Gateway port (default: live.port).")
@click.option("--date", "date", default=None, help="Trading date YYYY-MM-DD (default: the session running now).")
@click.option("--lake", type=click.Path(file_okay=False), help="Lake root (overrides io.lake).")
@click.option("--from-now", is_flag=True, help="Do not replay the session from its start (subscribe from now).")
@click.option("--compact-on-stop", is_flag=True, help="Also write the day file when stopped by a signal or an error.")
@click.option("--keep-parts", is_flag=True, help="Keep the part files after compaction.")
@click.option("--compact", "compact_only", is_flag=True, help="Only compact the existing part files of --date.")
@click.option("--record-objects", is_flag=True,
              help="Consume records through databento's per-record objects (Live.add_stream) instead of bulk blocks.")
def live_cmd(config: str | None, gateway: str | None, port: int | None, date: str | None, lake: str | None,
             from_now: bool, compact_on_stop: bool, keep_parts: bool, compact_only: bool, record_objects: bool) -> None:
    """Stream ES + SPY 0DTE options from Databento Live; write touches as their labels resolve.

    Needs DATABENTO_API_KEY. Part files go to {lake}/gold/live/date=D/ and are compacted into
    {lake}/gold/research/signals_D.parquet when the session ends. SIGINT / SIGTERM stop cleanly.
    """
    from spymaster.sources.lake import Lake

    cfg = Config.load(config)
    if lake is not None:
        cfg = cfg.replace(**{"io.lake": lake})
    day = parse_date(date) if date else current_trading_date()
    if compact_only:
        path, table = compact_day(Lake.at(cfg.io.lake), day, None, cfg, keep_parts=keep_parts)
        click.echo(f"{day}: {table.num_rows} touches compacted -> {path}")
        return
    session = session_from_config(day, cfg)
    start = None if from_now else default_start_ns(session)
    runner = LiveRunner(cfg, day, gateway=gateway, port=port, start_ns=start, compact_on_stop=compact_on_stop,
                        keep_parts=keep_parts, bulk=False if record_objects else None)
    res = runner.run()
    where = res.gold_path if res.gold_path else f"{len(res.parts)} part file(s) in {runner.sink.directory}"
    click.echo(f"{res.date}: stopped by {res.stopped_by}; {res.rows} touches, {res.records:,} records in "
               f"{res.seconds:.2f} s ({res.records_per_s:,.0f} records/s) -> {where}")


COMMANDS = [live_cmd]
