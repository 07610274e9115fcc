"""The Python API: one trading date from Bronze files to a Gold table.

    from spymaster import Config, Pipeline
    table = Pipeline(Config()).run(date="2025-12-17")          # writes the Gold file too
    table = Pipeline(Config()).run(date="2025-12-17", write=False)

``Pipeline.execute`` is the per-date unit of work every executor (CLI, batch processes, Dask)
calls; it returns a :class:`RunResult` with the table, the file's metadata and counts.
"""

from __future__ import annotations

import functools
import hashlib
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from spymaster import __version__
from spymaster.calendar import parse_date, session_from_config
from spymaster.config import Config
from spymaster.events import EventBatch
from spymaster.logs import get_logger
from spymaster.replay.engine import ReplayEngine
from spymaster.replay.merge import StreamSpec, merge
from spymaster.sinks.parquet import write_parquet
from spymaster.sources.lake import Lake
from spymaster.touches.schema import table_from_rows

log = get_logger("pipeline")


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``<version>+<hash of the package's source files>``: identifies the code that wrote a file."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


@dataclass
class RunResult:
    date: str
    table: pa.Table | None
    path: Path | None
    skipped: bool
    metadata: dict
    seconds: float = 0.0
    events: int = 0

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


class Pipeline:
    """Replays trading dates of a lake with one config."""

    def __init__(self, config: Config | None = None, *, lake: str | Path | None = None) -> None:
        self.config = config or Config()
        self.lake = Lake.at(lake if lake is not None else self.config.io.lake)

    def output_path(self, date) -> Path:
        return self.lake.gold_path(parse_date(date))

    def run(self, date, *, write: bool = True, force: bool = False, batch_size: int | None = None) -> pa.Table:
        """Replay ``date``; write ``signals_{date}.parquet`` (skipped if it exists, unless ``force``)."""
        res = self.execute(date, write=write, force=force, batch_size=batch_size)
        return res.table if res.table is not None else pq.read_table(res.path)

    def execute(self, date, *, write: bool = True, force: bool = False, batch_size: int | None = None,
                progress: Callable[[int], None] | None = None) -> RunResult:
        day = parse_date(date)
        out = self.lake.gold_path(day)
        if write and out.exists() and not force:
            log.info("output exists, skipped", date=day.isoformat(), path=str(out))
            return RunResult(day.isoformat(), None, out, True, {})
        t0 = time.perf_counter()
        table, metadata, n_events = self.replay(day, batch_size=batch_size, progress=progress)
        path = write_parquet(table, out, metadata) if write else None
        secs = time.perf_counter() - t0
        log.info("replayed", date=day.isoformat(), touches=table.num_rows, events=n_events,
                 seconds=round(secs, 3), path=str(path) if path else None)
        return RunResult(day.isoformat(), table, path, False, metadata, secs, n_events)

    def replay(self, date, *, batch_size: int | None = None,
               progress: Callable[[int], None] | None = None) -> tuple[pa.Table, dict, int]:
        """Replay without writing: (table, metadata, events). ``batch_size`` re-chunks the merged stream."""
        from spymaster.sources.session import open_session

        day = parse_date(date)
        session = session_from_config(day, self.config)
        inputs = open_session(self.lake, day, self.config)
        engine = ReplayEngine(self.config, session)
        n_events = 0
        for batch in self.batches(inputs, batch_size, prefetch=self.config.io.prefetch_batches):
            engine.feed(batch)
            n_events += len(batch)
            if progress is not None:
                progress(int(batch.ts[-1]))
        rows = engine.finish()
        table = table_from_rows(rows)
        metadata = self.metadata(inputs, engine)
        return table, metadata, n_events

    @staticmethod
    def batches(inputs, batch_size: int | None = None, prefetch: int = 0):
        """The merged event stream of ``inputs``; ``prefetch`` > 0 decodes and merges that many
        batches ahead on a reader thread (decompression and the kernels release the GIL)."""
        specs = [StreamSpec(s.kind, s.name, s.chunks) for s in inputs.streams()]
        stream = merge(specs) if prefetch <= 0 else read_ahead(merge(specs), prefetch)
        for batch in stream:
            if batch_size is None:
                yield batch
            else:
                yield from batch.chunks(batch_size)

    def metadata(self, inputs, engine: ReplayEngine) -> dict:
        st = engine.stats
        return {
            "format": "spymaster.gold.v1",
            "code_version": code_version(),
            "date": engine.session.iso,
            "symbol": self.config.instrument.option_root,
            "es_spy_ratio": self.config.instrument.es_spy_ratio,
            "config": self.config.to_dict(),
            "inputs": inputs.manifest(),
            "events": st.events,
            "bars": st.bars,
            "touches": st.touches,
            "labels_incomplete": st.labels_incomplete,
        }


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def read_ahead(iterator: Iterator, depth: int) -> Iterator:
    """Iterate ``iterator`` on a background thread, ``depth`` items ahead of the consumer.

    Items arrive in the same order; an exception in the producer is re-raised in the consumer;
    a consumer that stops early stops the producer (its thread ends at its next item).
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # handed to the consumer
            q.put(_Failure(exc))

    thread = threading.Thread(target=produce, name="spymaster-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


def replay_events(config: Config, date, batches: list[EventBatch] | EventBatch) -> pa.Table:
    """Replay already-merged batches (tests, the debugger): the Gold table without writing."""
    session = session_from_config(parse_date(date), config)
    engine = ReplayEngine(config, session)
    for b in [batches] if isinstance(batches, EventBatch) else batches:
        engine.feed(b)
    return table_from_rows(engine.finish())
