"""Summaries of Gold files: distributions of the enum columns and null counts (``spymaster summary``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from spymaster.errors import OutputError

DISTRIBUTION_COLUMNS = ("outcome", "barrier_state", "fuel_effect", "signal", "confidence", "level_kind")


def read_gold(path: str | Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise OutputError(f"not a readable Gold Parquet file: {exc}", path=path) from exc


def distributions(table: pa.Table, columns=DISTRIBUTION_COLUMNS) -> dict[str, dict[str, int]]:
    """value → count for each enum column (most frequent first; nulls as 'null')."""
    out = {}
    for c in columns:
        if c not in table.column_names:
            continue
        vals = table.column(c).to_pylist()
        out[c] = dict(Counter("null" if v is None else str(v) for v in vals).most_common())
    return out


def null_counts(table: pa.Table) -> dict[str, int]:
    return {name: table.column(name).null_count for name in table.column_names}


def crosstab(table: pa.Table, rows: str, cols: str) -> dict[str, dict[str, int]]:
    """Counts of (rows value, cols value) pairs, e.g. level_kind × outcome."""
    out: dict[str, dict[str, int]] = {}
    for r, c in zip(table.column(rows).to_pylist(), table.column(cols).to_pylist()):
        d = out.setdefault(str(r), {})
        d[str(c)] = d.get(str(c), 0) + 1
    return dict(sorted(out.items()))


def format_distributions(table: pa.Table) -> str:
    n = table.num_rows
    lines = [f"rows: {n}"]
    for col, dist in distributions(table).items():
        parts = ", ".join(f"{k} {v} ({100.0 * v / n:.1f}%)" for k, v in dist.items()) if n else "-"
        lines.append(f"{col}: {parts}")
    nulls = {k: v for k, v in null_counts(table).items() if v}
    lines.append("nulls: " + (", ".join(f"{k} {v}" for k, v in nulls.items()) if nulls else "none"))
    return "\n".join(lines)


def format_crosstab(tab: dict[str, dict[str, int]], col_order: tuple[str, ...]) -> str:
    width = max([len(k) for k in tab] + [10])
    head = " " * width + "".join(f"{c:>8}" for c in col_order) + f"{'total':>8}"
    lines = [head]
    for k, d in tab.items():
        lines.append(f"{k:<{width}}" + "".join(f"{d.get(c, 0):>8}" for c in col_order) + f"{sum(d.values()):>8}")
    return "\n".join(lines)
