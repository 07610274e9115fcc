"""Running many trading dates: one per-date function, three executors.

The unit of work is :func:`run_date` (a :class:`DateTask` → a :class:`DateResult`). It is a
module-level function of an importable module whose argument is plain data (the config as the
nested dict of :meth:`Config.to_dict`, TOML-able), so it pickles by reference to any executor:

- ``workers=1``, no scheduler: in this process, one date after the other;
- ``workers=N``: N local processes (``spawn``; each worker imports the package once and stays
  up for many dates; a script calling :func:`run_batch` needs the usual
  ``if __name__ == "__main__":`` guard);
- ``scheduler=ADDRESS``: a dask.distributed cluster (``"local"`` starts a LocalCluster of
  ``workers`` single-threaded worker processes).

Every executor gives byte-identical Gold files: the per-date work is
:meth:`spymaster.pipeline.Pipeline.execute`, deterministic and written atomically (temp file +
fsync + rename), so a date killed half-way leaves no file that looks complete and a rerun
replays exactly the dates whose output is missing.

A failing date never stops the others: a :class:`~spymaster.errors.SpymasterError` (or any
other exception) becomes a ``failed`` result with the message; a local worker process that
dies (a signal, out of memory, a crash) fails only the date it held and is replaced; a Dask
worker's death is the cluster's to retry (``KilledWorker`` then fails that date).

Numba kernels are ``cache=True``: every process loads them from the on-disk cache beside the
sources (or ``NUMBA_CACHE_DIR``), so a worker compiles nothing once the cache is warm, and
compiles at most once per process (workers outlive dates). :attr:`DateResult.compiled` counts
the kernels a date had to compile (numba cache misses), so a recompile per date would show.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import sys
import time
import traceback
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Sequence

from spymaster.batch.dates import DatePlan, plan_dates
from spymaster.config import Config
from spymaster.errors import SpymasterError
from spymaster.logs import get_logger

log = get_logger("batch")

DONE, SKIPPED, FAILED = "done", "skipped", "failed"
DASK_CONNECT_TIMEOUT_S = 20    # how long Client(address) waits for the scheduler
WORKER_DIED = ("the worker process died while replaying this date (killed by a signal or crashed, "
               "e.g. out of memory)")
WORKER_GONE = "the worker process exited before it could take this date"


@dataclass(frozen=True)
class DateTask:
    """Everything a worker needs to replay one date: plain, picklable data.

    ``config`` is :meth:`Config.to_dict` (its ``io.lake`` is the lake); ``log_json`` /
    ``log_level`` configure structlog in the worker like in the parent.
    """

    date: str
    config: dict[str, dict[str, Any]]
    force: bool = False
    log_json: bool | None = None
    log_level: str = "info"


@dataclass
class DateResult:
    """The outcome of one date (what travels back from a worker: no tables)."""

    date: str
    status: str                  # done | skipped | failed
    touches: int = 0
    events: int = 0
    seconds: float = 0.0         # wall time of the replay + write in the worker
    path: str | None = None
    error: str | None = None
    error_type: str | None = None
    compiled: int = 0            # numba kernels compiled while replaying this date (cache misses)
    worker: str = ""             # host:pid

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------- numba cache
def compiled_kernels() -> int:
    """Numba compilations so far in this process: cache misses of the ``spymaster.*`` kernels.

    Counts the dispatchers reachable as module attributes of loaded ``spymaster`` modules; a
    kernel loaded from the on-disk cache is a hit and does not count.
    """
    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:  # pragma: no cover - numba is a dependency
        return 0
    seen: dict[int, Any] = {}
    for name, mod in list(sys.modules.items()):
        if mod is None or not (name == "spymaster" or name.startswith("spymaster.")):
            continue
        for obj in list(vars(mod).values()):
            if isinstance(obj, Dispatcher):
                seen[id(obj)] = obj
    return sum(sum(d.stats.cache_misses.values()) for d in seen.values())


def _worker_id() -> str:
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


# ---------------------------------------------------------------------------------------- unit of work
def run_date(task: DateTask) -> DateResult:
    """Replay ``task.date`` and write its Gold file; never raises (a failure is a result)."""
    from spymaster import logs

    if not logs.configured():   # a fresh worker process; in-process runs keep the caller's logging
        logs.configure(json=task.log_json, level=task.log_level)
    t0 = time.perf_counter()
    before = compiled_kernels()
    try:
        from spymaster.pipeline import Pipeline

        cfg = Config.from_mapping(task.config, source="<batch task>")
        res = Pipeline(cfg).execute(task.date, force=task.force, write=True)
        out = DateResult(task.date, SKIPPED if res.skipped else DONE,
                         touches=0 if res.skipped else int(res.table.num_rows), events=int(res.events),
                         seconds=time.perf_counter() - t0, path=str(res.path) if res.path else None)
    except SpymasterError as exc:
        out = DateResult(task.date, FAILED, seconds=time.perf_counter() - t0, error=str(exc),
                         error_type=type(exc).__name__)
    except Exception as exc:  # any bug in one date must not stop the batch
        log.error("date_crashed", date=task.date, error=repr(exc), traceback=traceback.format_exc())
        out = DateResult(task.date, FAILED, seconds=time.perf_counter() - t0,
                         error=f"{type(exc).__name__}: {exc}", error_type=type(exc).__name__)
    out.compiled = compiled_kernels() - before
    out.worker = _worker_id()
    return out


def _failed(task: DateTask, message: str, error_type: str) -> DateResult:
    return DateResult(task.date, FAILED, error=message, error_type=error_type)


# ---------------------------------------------------------------------------------------- executors
OnResult = Callable[[DateResult], None]


def run_serial(tasks: Sequence[DateTask], fn: Callable[[DateTask], DateResult] = run_date,
               on_result: OnResult | None = None) -> list[DateResult]:
    """One date after the other in this process."""
    out = []
    for t in tasks:
        r = fn(t)
        out.append(r)
        if on_result is not None:
            on_result(r)
    return out


def _warm() -> None:
    """What every replay needs first: the package's heavy imports, the exchange calendar and the
    replay kernels loaded from numba's disk cache (so the first date runs as fast as the others)."""
    import importlib

    from spymaster.calendar import session_for
    from spymaster.replay.warmup import warm_kernels

    for name in ("spymaster.pipeline", "spymaster.sources.session"):  # pyarrow, the engines
        importlib.import_module(name)
    session_for("2025-12-17")
    warm_kernels()


def _worker_main(conn, fn: Callable[[DateTask], DateResult], warm: bool) -> None:
    """A local worker process: warm up, then receive tasks and send results until ``None``.

    Ctrl-C is the parent's to handle (it kills its workers), so a worker ignores SIGINT.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if warm:
        try:
            _warm()
        except Exception:  # the first task reports whatever is wrong, with its date
            pass
    try:
        conn.send(_READY)
    except (OSError, BrokenPipeError):
        return
    while True:
        try:
            task = conn.recv()
        except EOFError:        # the parent is gone
            return
        if task is None:
            return
        try:
            result = fn(task)
        except BaseException as exc:  # fn is run_date (never raises) or a caller's function
            result = _failed(task, f"{type(exc).__name__}: {exc}", type(exc).__name__)
        conn.send(result)


_READY = "spymaster-worker-ready"  # a worker's first message: warmed up, waiting for dates


@dataclass
class _Worker:
    process: Any
    conn: Any
    task: DateTask | None = None
    used: bool = False            # has replayed a date (else it may still be warming up)
    ready: bool = False           # has sent _READY


class LocalPool:
    """``workers`` local processes (``spawn``), each holding one date at a time.

    :meth:`start` may be called before the dates are known, so the workers' imports overlap
    with the parent's planning. Dates are handed out in order; a worker that dies (signal, out
    of memory, crash) fails exactly the date it held (:data:`WORKER_DIED`) and a fresh worker
    takes its place.
    """

    def __init__(self, workers: int, fn: Callable[[DateTask], DateResult] = run_date, *, warm: bool = True) -> None:
        self.workers = max(1, workers)
        self.fn = fn
        self.warm = warm
        self._ctx = multiprocessing.get_context("spawn")
        self._idle: list[_Worker] = []

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, args=(child, self.fn, self.warm), daemon=True,
                                 name="spymaster-batch-worker")
        proc.start()
        child.close()
        return _Worker(proc, parent)

    def start(self, n: int | None = None) -> "LocalPool":
        """Start up to ``n`` (default ``workers``) processes now."""
        want = min(self.workers, self.workers if n is None else n)
        while len(self._idle) < want:
            self._idle.append(self._spawn())
        return self

    def wait_ready(self, timeout: float = 120.0) -> int:
        """Block until the started workers have warmed up (or ``timeout`` s); returns how many are ready.

        A worker that died meanwhile is left for :meth:`run`, which fails its date and replaces it.
        """
        deadline = time.monotonic() + timeout
        for w in self._idle:
            while not w.ready and w.process.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    if w.conn.poll(min(left, 0.5)):
                        w.ready = w.conn.recv() == _READY
                except (EOFError, OSError):
                    break
        return sum(w.ready for w in self._idle)

    def run(self, tasks: Sequence[DateTask], on_result: OnResult | None = None) -> list[DateResult]:
        from multiprocessing.connection import wait

        queue = list(reversed(tasks))                 # pop() hands out dates in order
        results: dict[str, DateResult] = {}
        busy: list[_Worker] = []

        def finish(r: DateResult) -> None:
            results[r.date] = r
            if on_result is not None:
                on_result(r)

        def assign(w: _Worker) -> None:
            w.task = queue.pop()
            w.used = True
            try:
                w.conn.send(w.task)
            except OSError:                  # the worker is already gone (e.g. it could not start)
                w.process.join(timeout=5)
                log.error("worker_died", date=w.task.date, exitcode=w.process.exitcode, when="before the date")
                w.conn.close()
                finish(_failed(w.task, f"{WORKER_GONE}; exit code {w.process.exitcode}",
                               "WorkerDied"))
                if queue:
                    assign(self._spawn())
                return
            busy.append(w)

        try:
            while queue and len(busy) < self.workers:
                assign(self._idle.pop() if self._idle else self._spawn())
            while busy:
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
                for w in list(busy):
                    if w.conn not in ready and w.process.sentinel not in ready:
                        continue
                    got = None
                    try:
                        if w.conn.poll():
                            got = w.conn.recv()
                    except (EOFError, OSError):
                        got = None
                    if got is None and w.process.is_alive():
                        continue          # EOF seen before the process is reaped: wait for its sentinel
                    if got == _READY:
                        w.ready = True    # warm-up finished while it already held its first date
                        continue
                    busy.remove(w)
                    if got is not None:
                        finish(got)
                        w.task = None
                        if queue:
                            assign(w)
                        else:
                            self._idle.append(w)
                        continue
                    w.process.join(timeout=5)   # the worker died holding its task
                    log.error("worker_died", date=w.task.date if w.task else None, exitcode=w.process.exitcode)
                    if w.task is not None:
                        finish(_failed(w.task, f"{WORKER_DIED}; exit code {w.process.exitcode}", "WorkerDied"))
                    w.conn.close()
                    if queue:
                        assign(self._spawn())
        except BaseException:
            for w in busy:
                w.used = False                # close() kills them
            self._idle.extend(busy)
            raise
        return [results[t.date] for t in tasks]

    def close(self) -> None:
        """Stop every worker: idle ones get ``None``; never-used or still busy ones are killed."""
        for w in self._idle:
            if not w.used:
                w.process.kill()      # still warming up, or waiting for a first date that never came
                continue
            try:
                w.conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        # every result is in (each date's file was written before its result was sent), so a
        # worker slow to tear its interpreter down (~0.5 s: numba, pyarrow) is simply killed
        deadline = time.monotonic() + 0.2
        for w in self._idle:
            w.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join(timeout=5)
            w.conn.close()
        self._idle.clear()

    def __enter__(self) -> "LocalPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def run_processes(tasks: Sequence[DateTask], workers: int, fn: Callable[[DateTask], DateResult] = run_date,
                  on_result: OnResult | None = None) -> list[DateResult]:
    """``workers`` local processes (see :class:`LocalPool`); results in task order."""
    with LocalPool(workers, fn) as pool:
        return pool.run(tasks, on_result)


def _probe_worker() -> str:
    """Run on each Dask worker: the code version it would write (it imports the package)."""
    from spymaster.pipeline import code_version

    return code_version()


def run_dask(tasks: Sequence[DateTask], scheduler: str, workers: int = 1,
             fn: Callable[[DateTask], DateResult] = run_date, on_result: OnResult | None = None) -> list[DateResult]:
    """A dask.distributed cluster at ``scheduler`` (``"local"``: a LocalCluster of ``workers`` processes)."""
    import logging

    from distributed import Client, LocalCluster
    from distributed import as_completed as dask_completed

    from spymaster.pipeline import code_version

    cluster = None
    try:
        if scheduler == "local":
            cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                                   dashboard_address=":0", silence_logs=logging.WARNING)
            client = Client(cluster)
        else:
            client = Client(scheduler, timeout=f"{DASK_CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise SpymasterError(f"cannot reach the Dask scheduler {scheduler!r}: {exc}") from None
    results: dict[str, DateResult] = {}
    try:
        versions = client.run(_probe_worker)
        mine = code_version()
        other = {w: v for w, v in versions.items() if v != mine}
        if other:
            log.warning("dask_workers_run_other_code", client=mine, workers=other)
        log.info("dask_cluster", scheduler=client.scheduler.address, workers=len(versions))
        token = uuid.uuid4().hex[:8]
        futures = client.map(fn, list(tasks), key=[f"spymaster-replay-{t.date}-{token}" for t in tasks],
                             pure=False, retries=0)
        by_key = {f.key: t for f, t in zip(futures, tasks)}
        for fut in dask_completed(futures):
            t = by_key[fut.key]
            try:
                r = fut.result()
            except Exception as exc:  # KilledWorker, CancelledError, ...
                r = _failed(t, f"{type(exc).__name__}: {exc}", type(exc).__name__)
            results[t.date] = r
            if on_result is not None:
                on_result(r)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return [results[t.date] for t in tasks]


# ---------------------------------------------------------------------------------------- batch
@dataclass
class BatchReport:
    """Plans of every candidate date and results of the dates that ran."""

    plans: list[DatePlan]
    results: list[DateResult] = field(default_factory=list)
    seconds: float = 0.0         # wall time of the run phase

    @property
    def done(self) -> list[DateResult]:
        return [r for r in self.results if r.status == DONE]

    @property
    def failed(self) -> list[DateResult]:
        return [r for r in self.results if r.status == FAILED]

    @property
    def skipped(self) -> list[DatePlan | DateResult]:
        return [p for p in self.plans if not p.runs] + [r for r in self.results if r.status == SKIPPED]

    @property
    def not_trading_days(self) -> int:
        return sum(1 for p in self.plans if p.session is None)

    @property
    def touches(self) -> int:
        return sum(r.touches for r in self.done)

    @property
    def events(self) -> int:
        return sum(r.events for r in self.done)

    @property
    def compiled(self) -> int:
        return sum(r.compiled for r in self.results)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def summary_line(self) -> str:
        n_skip = len(self.skipped)
        nt = self.not_trading_days
        skip = f"{n_skip} skipped" + (f" ({nt} not trading days)" if nt else "")
        return (f"batch: {len(self.done)} done, {skip}, {len(self.failed)} failed; "
                f"{self.touches:,} touches written; {self.events:,} events in {self.seconds:.2f} s "
                f"({self.events_per_s:,.0f} events/s)")


def make_tasks(plans: Iterable[DatePlan], config: Config, *, force: bool = False, log_json: bool | None = None,
               log_level: str = "info") -> list[DateTask]:
    cfg = config.to_dict()
    return [DateTask(p.iso, cfg, force=force, log_json=log_json, log_level=log_level) for p in plans if p.runs]


def execute(tasks: Sequence[DateTask], *, workers: int = 1, scheduler: str | None = None,
            fn: Callable[[DateTask], DateResult] = run_date, on_result: OnResult | None = None,
            pool: LocalPool | None = None) -> list[DateResult]:
    """Run ``tasks`` with the executor the options select; results in task order.

    ``scheduler`` → Dask; ``workers > 1`` → local processes (``pool`` if given, already
    started); otherwise this process.
    """
    if not tasks:
        return []
    if scheduler:
        return run_dask(tasks, scheduler, workers, fn, on_result)
    if pool is not None:
        return pool.run(tasks, on_result)
    if workers > 1:
        return run_processes(tasks, workers, fn, on_result)
    return run_serial(tasks, fn, on_result)


def run_batch(config: Config, *, start: dt.date | str | None = None, end: dt.date | str | None = None,
              dates: list[dt.date | str] | None = None, force: bool = False, workers: int = 1,
              scheduler: str | None = None, log_json: bool | None = None, log_level: str = "info",
              fn: Callable[[DateTask], DateResult] = run_date, on_plans: Callable[[list[DatePlan]], None] | None = None,
              on_result: OnResult | None = None) -> BatchReport:
    """Plan the candidate dates of ``config.io.lake`` and replay the runnable ones.

    ``on_plans`` sees the plans before anything runs; ``on_result`` sees every finished date
    (in completion order). Failures are logged (``date_failed`` with the date and the error) and
    collected in the report; nothing raises for one date.
    """
    from spymaster.sources.lake import Lake

    # local workers start first: their imports overlap with the planning below
    pool = LocalPool(workers, fn).start() if scheduler is None and workers > 1 else None
    try:
        return _run_batch(config, Lake.at(config.io.lake), start=start, end=end, dates=dates, force=force,
                          workers=workers, scheduler=scheduler, log_json=log_json, log_level=log_level, fn=fn,
                          on_plans=on_plans, on_result=on_result, pool=pool)
    finally:
        if pool is not None:
            pool.close()


def _run_batch(config: Config, lake, *, start, end, dates, force, workers, scheduler, log_json, log_level, fn,
               on_plans, on_result, pool) -> BatchReport:
    plans = plan_dates(lake, config, start=start, end=end, dates=dates, force=force)
    for p in plans:
        if not p.runs:
            log.info("date_skipped", date=p.iso, reason=p.reason)
    if on_plans is not None:
        on_plans(plans)
    tasks = make_tasks(plans, config, force=force, log_json=log_json, log_level=log_level)

    def seen(r: DateResult) -> None:
        if r.status == FAILED:
            log.error("date_failed", date=r.date, error=r.error, error_type=r.error_type, worker=r.worker)
        else:
            log.info("date_finished", date=r.date, status=r.status, touches=r.touches, events=r.events,
                     seconds=round(r.seconds, 3), compiled_kernels=r.compiled, worker=r.worker)
        if on_result is not None:
            on_result(r)

    # the run phase starts with warm executors: in-process, load the kernels now; local workers
    # warm up in parallel with the planning above and are waited for here
    if tasks and scheduler is None and pool is None and workers <= 1 and fn is run_date:
        _warm()
    elif tasks and pool is not None:
        pool.wait_ready()
    t0 = time.perf_counter()
    results = execute(tasks, workers=workers, scheduler=scheduler, fn=fn, on_result=seen, pool=pool)
    report = BatchReport(plans, results, time.perf_counter() - t0)
    log.info("batch_finished", done=len(report.done), skipped=len(report.skipped), failed=len(report.failed),
             failed_dates=[r.date for r in report.failed], touches=report.touches, events=report.events,
             seconds=round(report.seconds, 3), compiled_kernels=report.compiled)
    return report
