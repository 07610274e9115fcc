"""The live sink: Parquet part files while the session runs, compacted into the day file at its end.

Rows (Gold touch rows whose labels resolved, SPEC §11) are collected and flushed as one part file
every ``live.flush_seconds`` seconds (wall clock) or every ``live.flush_rows`` rows, whichever
comes first. Each part is a complete Parquet file written atomically by
:func:`spymaster.sinks.parquet.write_parquet` (temp + fsync + rename), so everything flushed is
readable mid-session and after a crash; a crash loses only the rows not yet flushed (and the
touches whose labels were still pending — re-running the session re-derives them).

Layout under ``Lake.live_parts_dir(date)`` (``{lake}/gold/live/date=YYYY-MM-DD/``)::

    part-r0001-000000.parquet   run 1, part 0
    part-r0001-000001.parquet
    part-r0002-000000.parquet   a second run of the same date (after a crash / restart)

:func:`compact` reads every part of the date, keeps one row per ``event_id`` (a row with a complete
label beats an incomplete one; otherwise the later part wins — a rerun re-emits what a crashed run
already wrote), rebuilds the table exactly as the replay builds it
(:func:`spymaster.touches.schema.table_from_rows`: same schema, dictionary encoding and sort order
by ``ts_event_ns``, ``level_id``) and writes ``Lake.gold_path(date)`` atomically with the given
metadata; the parts are removed afterwards unless asked to keep them.

Part metadata (``spymaster`` key, JSON): ``{"part": {"run", "seq", "rows", "first_ts_event_ns",
"last_ts_event_ns"}, "live": <what the runner reports at flush time: gaps so far, counts>}``.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spymaster.errors import OutputError
from spymaster.logs import get_logger
from spymaster.sinks.parquet import read_metadata, write_parquet
from spymaster.touches.schema import SCHEMA, table_from_rows

log = get_logger("sinks.parts")

_PART = re.compile(r"^part-r(?P<run>\d{4,})-(?P<seq>\d{6,})\.parquet$")


def part_files(directory: str | Path) -> list[Path]:
    """The part files of a parts directory in (run, seq) order (temporaries and strays ignored)."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = []
    for p in d.iterdir():
        m = _PART.match(p.name)
        if m:
            found.append((int(m["run"]), int(m["seq"]), p))
    return [p for _, _, p in sorted(found)]


def _next_run(directory: Path) -> int:
    runs = [int(_PART.match(p.name)["run"]) for p in part_files(directory)]  # type: ignore[index]
    return max(runs) + 1 if runs else 1


@dataclass
class PartSink:
    """Collects rows and flushes them as atomic Parquet parts (see the module doc).

    ``meta`` (optional) returns the ``live`` section of each part's metadata at flush time.
    ``clock`` is a monotonic clock in seconds (tests).
    """

    directory: Path
    flush_seconds: float
    flush_rows: int
    meta: Callable[[], dict[str, Any]] | None = None
    clock: Callable[[], float] = time.monotonic
    run: int = 0
    seq: int = 0
    rows_written: int = 0
    parts: list[Path] = field(default_factory=list)
    _pending: list[dict] = field(default_factory=list)
    _last_flush: float = 0.0

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the live parts directory: {exc}", path=self.directory) from exc
        if self.run == 0:
            self.run = _next_run(self.directory)
        self._last_flush = self.clock()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, row: dict) -> None:
        """One resolved touch row (the engine's ``on_row``); flushes when ``flush_rows`` are pending."""
        self._pending.append(row)
        if len(self._pending) >= self.flush_rows:
            self.flush()

    def maybe_flush(self) -> Path | None:
        """Flush if ``flush_seconds`` passed since the last flush and rows are pending."""
        if self._pending and self.clock() - self._last_flush >= self.flush_seconds:
            return self.flush()
        return None

    def flush(self) -> Path | None:
        """Write the pending rows as the next part (atomic); None if nothing is pending."""
        self._last_flush = self.clock()
        if not self._pending:
            return None
        rows, self._pending = self._pending, []
        table = table_from_rows(rows)
        ts = table.column("ts_event_ns")
        path = self.directory / f"part-r{self.run:04d}-{self.seq:06d}.parquet"
        md = {"part": {"run": self.run, "seq": self.seq, "rows": table.num_rows,
                       "first_ts_event_ns": int(pc.min(ts).as_py()),
                       "last_ts_event_ns": int(pc.max(ts).as_py())}}
        if self.meta is not None:
            md["live"] = self.meta()
        write_parquet(table, path, md)
        self.seq += 1
        self.rows_written += table.num_rows
        self.parts.append(path)
        log.info("live_part_written", path=str(path), rows=table.num_rows, total_rows=self.rows_written)
        return path


def read_parts(directory: str | Path) -> pa.Table:
    """Every part of the directory concatenated (part order; no deduplication), Gold schema."""
    tables = []
    for p in part_files(directory):
        try:
            t = pq.read_table(p)
        except (OSError, pa.ArrowInvalid) as exc:
            raise OutputError(f"unreadable live part file: {exc}", path=p) from exc
        tables.append(t.replace_schema_metadata(None).cast(SCHEMA))
    if not tables:
        return table_from_rows([])
    return pa.concat_tables(tables)


def dedupe_rows(rows: list[dict]) -> list[dict]:
    """One row per event_id: a complete label beats an incomplete one, else the later row wins."""
    best: dict[str, dict] = {}
    for r in rows:
        prev = best.get(r["event_id"])
        if prev is None or bool(r["label_complete"]) or not bool(prev["label_complete"]):
            best[r["event_id"]] = r
    return list(best.values())


def compact(directory: str | Path, gold_path: str | Path, metadata: dict[str, Any] | None = None, *,
            keep_parts: bool = False) -> tuple[Path, pa.Table]:
    """Compact the parts of ``directory`` into the day file ``gold_path`` (atomic); returns (path, table)."""
    directory = Path(directory)
    files = part_files(directory)
    table = read_parts(directory)
    rows = dedupe_rows(table.to_pylist())
    duplicates = table.num_rows - len(rows)
    out = table_from_rows(rows)
    path = write_parquet(out, gold_path, metadata)
    log.info("live_compacted", path=str(path), parts=len(files), rows=out.num_rows, duplicates_dropped=duplicates)
    if not keep_parts:
        for p in files:
            p.unlink(missing_ok=True)
        for p in directory.glob(".part-*.tmp-*"):
            p.unlink(missing_ok=True)
        try:
            directory.rmdir()
        except OSError:
            pass  # other files present: leave the directory
    return path, out


def part_metadata(path: str | Path) -> dict[str, Any]:
    """The ``spymaster`` metadata of one part file."""
    return read_metadata(path)


def remove_parts(directory: str | Path) -> int:
    """Delete a parts directory (after a successful compaction elsewhere); returns files removed."""
    d = Path(directory)
    if not d.is_dir():
        return 0
    n = sum(1 for _ in d.iterdir())
    shutil.rmtree(d)
    return n
