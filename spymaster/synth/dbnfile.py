"""Bulk-write DBN files straight from numpy record arrays (notes §2.3).

Used by the synthetic market and by tests that need hand-made Bronze files. The records use the
databento-dbn ``_dtypes`` layouts; :func:`new_records` returns zeroed arrays with ``length`` /
``rtype`` set and every field at the value databento-dbn itself uses for "undefined".
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Iterable, Mapping

import databento_dbn as dbn
import numpy as np
import zstandard

SCHEMAS = {
    "trades": (dbn.TradeMsg, dbn.RType.MBP_0, dbn.Schema.TRADES),
    "mbp-10": (dbn.MBP10Msg, dbn.RType.MBP_10, dbn.Schema.MBP_10),
    "definition": (dbn.InstrumentDefMsg, dbn.RType.INSTRUMENT_DEF, dbn.Schema.DEFINITION),
}


def dbn_dtype(schema: str) -> np.dtype:
    return np.dtype(SCHEMAS[schema][0]._dtypes)


def _template(schema: str) -> np.ndarray:
    cls = SCHEMAS[schema][0]
    if schema == "trades":
        msg = cls(0, 0, 0, 0, 0, dbn.Action.TRADE, dbn.Side.NONE, 0, 0)
    elif schema == "mbp-10":
        msg = cls(0, 0, 0, 0, 0, dbn.Action.ADD, dbn.Side.NONE, 0, 0)
    else:
        msg = cls(0, 0, 0, 0, dbn.UNDEF_PRICE, dbn.UNDEF_PRICE, "", "", "", dbn.InstrumentClass.FUTURE,
                  dbn.SecurityUpdateAction.ADD)
    return np.frombuffer(bytes(msg), dtype=dbn_dtype(schema)).copy()


def new_records(schema: str, n: int) -> np.ndarray:
    """``n`` records of ``schema`` ('trades' / 'mbp-10' / 'definition') with undefined defaults."""
    return np.repeat(_template(schema), n)


def mapping(raw_symbol: str, instrument_id: int, start: dt.date, end: dt.date) -> SimpleNamespace:
    """A metadata symbology mapping ``raw_symbol → instrument_id`` over [start, end)."""
    return SimpleNamespace(raw_symbol=raw_symbol,
                           intervals=[SimpleNamespace(start_date=start, end_date=end, symbol=str(instrument_id))])


def write_dbn(path: str | Path, records: np.ndarray | Iterable[np.ndarray], *, dataset: str, schema: str | None,
              start_ns: int, end_ns: int | None = None, symbols: list[str] | None = None,
              mappings: list[SimpleNamespace] | None = None, compress: bool | None = None,
              atomic: bool = True, stype_in: str | None = None, level: int = 3) -> Path:
    """Write a DBN v3 file: metadata header then the raw record bytes (zstd if ``.zst``).

    ``records`` is one array or an iterable of arrays (written in order, so a generator keeps
    memory bounded). ``schema=None`` writes a mixed-schema header. ``stype_in`` overrides the
    input symbology ('parent' for ``ES.FUT`` / ``SPY.OPT`` style daily files); by default it is
    raw_symbol when ``symbols`` are given, else instrument_id. ``level`` is the zstd level
    (single-threaded, so the bytes are deterministic).
    """
    path = Path(path)
    if compress is None:
        compress = path.suffix == ".zst"
    sch = None if schema is None else SCHEMAS[schema][2]
    st_in = dbn.SType(stype_in) if stype_in else (dbn.SType.RAW_SYMBOL if symbols else dbn.SType.INSTRUMENT_ID)
    md = dbn.Metadata(dataset, int(start_ns), st_in,
                      dbn.SType.INSTRUMENT_ID, sch, symbols=symbols or [], partial=[], not_found=[],
                      mappings=mappings or [], end=None if end_ns is None else int(end_ns))
    path.parent.mkdir(parents=True, exist_ok=True)
    target = path.with_name(path.name + ".tmp") if atomic else path
    chunks = [records] if isinstance(records, np.ndarray) else records
    with open(target, "wb") as f:
        if compress:
            cctx = zstandard.ZstdCompressor(level=level)
            with cctx.stream_writer(f, closefd=False) as w:
                w.write(md.encode())
                for arr in chunks:
                    _write_chunked(w, arr)
        else:
            f.write(md.encode())
            for arr in chunks:
                _write_chunked(f, arr)
        f.flush()
        os.fsync(f.fileno())
    if atomic:
        os.replace(target, path)
    return path


def _write_chunked(w, arr: np.ndarray, rows: int = 262_144) -> None:
    arr = np.ascontiguousarray(arr)
    for i in range(0, arr.shape[0], rows):
        w.write(memoryview(arr[i:i + rows]).cast("B"))


def definition_records(rows: list[Mapping[str, object]]) -> np.ndarray:
    """Definition records from dicts of field → value (strings encoded, others assigned)."""
    out = new_records("definition", len(rows))
    for i, row in enumerate(rows):
        for k, v in row.items():
            out[k][i] = v.encode() if isinstance(v, str) else v
    return out
