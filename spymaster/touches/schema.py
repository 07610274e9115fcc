"""The Gold schema (SPEC §11): exact column names, types and order.

Enums are dictionary-encoded strings; missing values are nulls (never NaN). Prices are on the
SPY-equivalent axis ($); gamma in shares per SPY $; notional in $; volumes in contracts.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

ENUM = pa.dictionary(pa.int32(), pa.string())
F64 = pa.float64()
I64 = pa.int64()
STR = pa.string()
BOOL = pa.bool_()

COLUMNS: list[tuple[str, pa.DataType]] = [
    # identity
    ("event_id", STR), ("ts_event_ns", I64), ("date", STR), ("symbol", STR),
    # level
    ("level_price", F64), ("level_kind", ENUM), ("level_id", STR), ("direction", ENUM), ("distance", F64),
    # context
    ("spot", F64), ("basis", F64), ("is_first_15m", BOOL), ("is_opening_range", BOOL),
    ("dist_to_sma_200", F64), ("dist_to_sma_400", F64), ("dist_to_vwap", F64), ("session_position", F64),
    # barrier
    ("barrier_state", ENUM), ("barrier_delta_liq", F64), ("barrier_replenishment_ratio", F64),
    ("barrier_added", I64), ("barrier_canceled", I64), ("barrier_filled", I64), ("wall_ratio", F64),
    ("depth_in_zone", I64), ("churn", F64),
    # tape
    ("tape_imbalance", F64), ("tape_buy_vol", I64), ("tape_sell_vol", I64), ("tape_velocity", F64),
    ("tape_sweep_detected", BOOL), ("tape_sweep_direction", ENUM), ("tape_sweep_notional", F64),
    # fuel
    ("gamma_exposure", F64), ("fuel_effect", ENUM), ("fuel_net_dealer_gamma", F64), ("fuel_call_wall", F64),
    ("fuel_put_wall", F64), ("fuel_hvl", F64), ("fuel_call_gamma", F64), ("fuel_put_gamma", F64),
    # scores
    ("break_score_raw", F64), ("break_score_smooth", F64), ("liquidity_score", F64), ("hedge_score", F64),
    ("tape_score", F64), ("signal", ENUM), ("confidence", ENUM),
    # runway
    ("runway_direction", ENUM), ("runway_next_level_price", F64), ("runway_distance", F64), ("runway_quality", ENUM),
    # labels
    ("outcome", ENUM), ("future_price_5min", F64), ("excursion_max", F64), ("excursion_min", F64),
    ("label_complete", BOOL),
]

SCHEMA = pa.schema([pa.field(name, typ, nullable=True) for name, typ in COLUMNS])
COLUMN_NAMES = [c for c, _ in COLUMNS]
LABEL_COLUMNS = ("outcome", "future_price_5min", "excursion_max", "excursion_min", "label_complete")
FEATURE_COLUMNS = tuple(c for c in COLUMN_NAMES if c not in LABEL_COLUMNS)

# Columns that may be null, and when (SPEC): everything else is always set.
NULLABLE = {
    "basis": "until the ES-SPY basis is known",
    "dist_to_sma_200": "until 200 two-minute closes exist", "dist_to_sma_400": "until 400 two-minute closes exist",
    "dist_to_vwap": "before the first RTH trade",
    "fuel_call_wall": "while CALL_WALL is inactive", "fuel_put_wall": "while PUT_WALL is inactive",
    "fuel_hvl": "while GAMMA_FLIP is inactive",
    "runway_next_level_price": "when no strong level lies beyond", "runway_distance": "when no strong level lies beyond",
    "excursion_max": "for an empty label path", "excursion_min": "for an empty label path",
}


def table_from_rows(rows: list[dict]) -> pa.Table:
    """Rows (dicts keyed by column) → a Table with the exact schema, sorted by (ts_event_ns, level_id).

    Columns are built from numpy buffers (:func:`column`), not with ``pa.array`` on Python
    lists: that path makes pyarrow import pandas (~0.3 s per process) for its null checks."""
    rows = sorted(rows, key=lambda r: (r["ts_event_ns"], r["level_id"]))
    arrays = [column([r.get(name) for r in rows], typ, name) for name, typ in COLUMNS]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


_NUMPY = {F64: (np.float64, "fiu"), I64: (np.int64, "iu")}


def column(values: list, typ: pa.DataType, name: str = "") -> pa.Array:
    """One Gold column from Python / numpy scalars, ``None`` = null (NaN stays a value, as with
    ``pa.array``): float64, int64, bool, string, or a dictionary-encoded string (enums)."""
    n = len(values)
    missing = np.fromiter((v is None for v in values), dtype=bool, count=n)
    nulls = int(missing.sum())
    validity = pa.py_buffer(np.packbits(~missing, bitorder="little")) if nulls else None
    if typ == STR or pa.types.is_dictionary(typ):
        try:
            enc = [b"" if v is None else v.encode() for v in values]
        except AttributeError:
            raise TypeError(f"column {name!r}: expected str values, got "
                            f"{next(type(v).__name__ for v in values if not isinstance(v, (str, type(None))))}") from None
        offsets = np.zeros(n + 1, np.int32)
        np.cumsum(np.fromiter(map(len, enc), dtype=np.int64, count=n), out=offsets[1:])
        arr = pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(enc))],
                                    null_count=nulls)
        return arr.dictionary_encode() if pa.types.is_dictionary(typ) else arr
    filled = [0 if v is None else v for v in values]
    if typ == BOOL:
        bits = np.packbits(np.array(filled, dtype=bool), bitorder="little")
        return pa.Array.from_buffers(BOOL, n, [validity, pa.py_buffer(bits)], null_count=nulls)
    dtype, kinds = _NUMPY[typ]
    raw = np.asarray(filled)
    if n and raw.dtype.kind not in kinds:
        raise TypeError(f"column {name!r}: cannot store {raw.dtype} values as {typ}")
    return pa.Array.from_buffers(typ, n, [validity, pa.py_buffer(np.ascontiguousarray(raw, dtype=dtype))],
                                 null_count=nulls)


def empty_table() -> pa.Table:
    return table_from_rows([])
