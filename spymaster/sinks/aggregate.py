"""``signals_multi_day.parquet``: the per-date Gold files concatenated in date order (SPEC §11).

Streaming: one source row group is in memory at a time (``pyarrow.parquet.ParquetWriter``), so
the aggregate of a year of dates needs no more memory than its largest row group. Atomic like
every Gold write: a hidden temporary file in the Gold directory, fsynced, renamed into place
(stale temporaries of an interrupted aggregate are removed first).

Every per-date file must have the same Arrow schema (column names, order, types, nullability;
metadata ignored). The reference is the schema most files share (ties → the earliest date); any
file that differs raises :class:`~spymaster.errors.OutputError` naming it and the difference,
before anything is written. Rows keep the per-date order (``ts_event_ns``, then ``level_id``),
so the whole file is sorted by (date, ts_event_ns, level_id).

The file's ``spymaster`` key-value metadata (JSON) lists the dates, and for each source file
its name, rows, code version and config hash; nothing wall-clock-dependent, so rebuilding from
the same per-date files gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from spymaster.errors import OutputError
from spymaster.logs import get_logger
from spymaster.sinks.parquet import META_KEY, clean_stale_temporaries, publish, tmp_name

log = get_logger("aggregate")

FORMAT = "spymaster.gold.multi_day.v1"
_PER_DATE = re.compile(r"^signals_(\d{4}-\d{2}-\d{2})\.parquet$")


@dataclass(frozen=True)
class AggregateResult:
    path: Path
    dates: list[str]
    rows: int
    row_groups: int


def per_date_files(gold_dir: Path, dates: Iterable[dt.date | str] | None = None) -> list[tuple[dt.date, Path]]:
    """``(date, path)`` of the per-date Gold files in ``gold_dir`` (optionally only ``dates``), by date."""
    want = None if dates is None else {d if isinstance(d, str) else d.isoformat() for d in dates}
    out = []
    if gold_dir.is_dir():
        for p in gold_dir.iterdir():
            m = _PER_DATE.match(p.name)
            if m and p.is_file() and (want is None or m[1] in want):
                out.append((dt.date.fromisoformat(m[1]), p))
    return sorted(out)


@dataclass(frozen=True)
class _Source:
    date: dt.date
    path: Path
    schema: pa.Schema          # without metadata
    rows: int
    meta: dict[str, Any]       # the per-date file's ``spymaster`` metadata


def _inspect(day: dt.date, path: Path) -> _Source:
    """Schema, row count and metadata from the footer (the file is closed again)."""
    try:
        md = pq.read_metadata(path)
        schema = md.schema.to_arrow_schema()
    except (OSError, pa.ArrowInvalid) as exc:
        raise OutputError(f"per-date Gold file is not a readable Parquet file: {exc}", path=path) from None
    raw = (schema.metadata or {}).get(META_KEY)
    try:
        meta = json.loads(raw) if raw else {}
    except ValueError:
        meta = {}
    return _Source(day, path, schema.remove_metadata(), md.num_rows, meta)


def _open_source(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise OutputError(f"per-date Gold file is not a readable Parquet file: {exc}", path=path) from None


def _read_group(pf: pq.ParquetFile, i: int, path: Path) -> pa.Table:
    try:
        return pf.read_row_group(i)
    except (OSError, pa.ArrowInvalid) as exc:
        raise OutputError(f"cannot read row group {i}: {exc}", path=path) from None


def _describe_difference(schema: pa.Schema, ref: pa.Schema) -> str:
    have, want = {f.name: f for f in schema}, {f.name: f for f in ref}
    parts = []
    missing = [n for n in want if n not in have]
    extra = [n for n in have if n not in want]
    if missing:
        parts.append("missing columns " + ", ".join(missing))
    if extra:
        parts.append("extra columns " + ", ".join(extra))
    for n in want:
        if n in have and not have[n].equals(want[n]):
            parts.append(f"{n}: {have[n].type}{'' if have[n].nullable else ' not null'} "
                         f"instead of {want[n].type}{'' if want[n].nullable else ' not null'}")
    if not parts and schema.names != ref.names:
        parts.append("columns in another order")
    return "; ".join(parts) or "different schema"


def aggregate(gold_dir: str | Path, out: str | Path | None = None, *,
              dates: Iterable[dt.date | str] | None = None) -> AggregateResult:
    """Concatenate the per-date files of ``gold_dir`` into ``out`` (default ``signals_multi_day.parquet``)."""
    gold_dir = Path(gold_dir)
    out = Path(out) if out is not None else gold_dir / "signals_multi_day.parquet"
    sources = per_date_files(gold_dir, dates)
    if not sources:
        raise OutputError("no per-date Gold files (signals_YYYY-MM-DD.parquet) to aggregate", path=gold_dir)

    files = [_inspect(d, p) for d, p in sources]
    keys = [f.schema.to_string(show_schema_metadata=False) for f in files]
    counts = Counter(keys)
    best = max(counts.values())
    ref_src = files[next(i for i, k in enumerate(keys) if counts[k] == best)]
    ref = ref_src.schema
    bad = [(f.path, _describe_difference(f.schema, ref)) for f in files if not f.schema.equals(ref)]
    if bad:
        listing = "; ".join(f"{p.name} ({why})" for p, why in bad)
        raise OutputError(f"per-date Gold files with a different schema than {ref_src.path.name} "
                          f"(shared by {best} of {len(files)} files): {listing}; rewrite them with --force",
                          path=bad[0][0])

    meta = {
        "format": FORMAT,
        "dates": [f.date.isoformat() for f in files],
        "rows": sum(f.rows for f in files),
        "sources": [{"date": f.date.isoformat(), "file": f.path.name, "rows": f.rows,
                     "code_version": f.meta.get("code_version"),
                     "config_sha256": hashlib.sha256(json.dumps(f.meta.get("config"), sort_keys=True)
                                                     .encode()).hexdigest()[:16]}
                    for f in files],
    }
    schema = ref.with_metadata({META_KEY: json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()})
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(out)
    tmp = tmp_name(out)
    n_groups = 0
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd", use_dictionary=True, write_statistics=True) as w:
            for f in files:
                with _open_source(f.path) as pf:
                    for i in range(pf.num_row_groups):
                        rg = _read_group(pf, i, f.path)
                        if rg.num_rows:
                            w.write_table(rg.replace_schema_metadata(None))
                            n_groups += 1
        publish(tmp, out)
    except OSError as exc:
        raise OutputError(f"cannot write: {exc}", path=out) from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info("aggregated", path=str(out), dates=len(files), rows=meta["rows"], row_groups=n_groups)
    return AggregateResult(out, meta["dates"], int(meta["rows"]), n_groups)
