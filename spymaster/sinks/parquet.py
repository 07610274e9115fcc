"""The Gold Parquet sink: atomic, deterministic, self-describing (SPEC §2.5, §11).

A file is written to a hidden temporary name in the target directory, fsynced, then renamed
into place, so a crash (even ``kill -9``) never leaves a file that looks complete; stale
temporaries are removed by the next write. ZSTD compression, dictionary-encoded enums, and the
run's metadata (config, code version, inputs with sizes and hashes, counts) as one JSON value
under the ``spymaster`` key of the Parquet key-value metadata. Nothing wall-clock-dependent goes
in, so reruns are byte-identical.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from spymaster.errors import OutputError

META_KEY = b"spymaster"


def tmp_name(path: Path) -> Path:
    """The hidden temporary a write of ``path`` goes through (never matches ``*.parquet``)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def publish(tmp: Path, path: Path) -> None:
    """Make a fully written ``tmp`` the file ``path``: fsync it, rename it, fsync the directory."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def clean_stale_temporaries(path: Path) -> int:
    """Remove leftovers of interrupted writes of ``path``; returns how many were removed."""
    n = 0
    for p in path.parent.glob(f".{path.name}.tmp-*"):
        try:
            p.unlink()
            n += 1
        except FileNotFoundError:
            pass
    return n


def write_parquet(table: pa.Table, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``table`` atomically to ``path`` (temp + fsync + rename) with JSON ``metadata``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temporaries(path)
        if metadata is not None:
            md = dict(table.schema.metadata or {})
            md[META_KEY] = json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode()
            table = table.replace_schema_metadata(md)
        tmp = tmp_name(path)
        pq.write_table(table, tmp, compression="zstd", use_dictionary=True, write_statistics=True,
                       row_group_size=64 * 1024)
        publish(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write: {exc}", path=path) from exc
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``spymaster`` metadata of a Gold file ({} if absent)."""
    try:
        md = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid) as exc:
        raise OutputError(f"not a readable Parquet file: {exc}", path=path) from exc
    raw = md.get(META_KEY)
    return json.loads(raw) if raw else {}
