"""Bronze Parquet options (SPEC §12): the alternative source of the session's 0DTE option trades.

Files: ``Lake.options_parquet_dir(D)/*.parquet``, read in name order as one stream that must be
sorted by ``ts_recv_ns`` (checked across batches and files). Columns (SPEC §12):
``ts_recv_ns`` int64, ``ts_event_ns`` int64, ``symbol`` (OCC raw symbol), ``expiration`` date,
``strike`` f64 (SPY $), ``right`` 'C'/'P', ``price`` f64 (SPY $ per share), ``size`` int64
(contracts), ``aggressor`` int8 (+1 buy, −1 sell, 0 unknown).

A row is a session 0DTE trade when its OCC symbol has the configured root and expiry D (a
non-OCC symbol: the ``expiration`` column). Contracts get dense indices in order of their first
kept trade (a pre-pass when the source is opened, which also checks the ordering), exactly as
the OPRA DBN source numbers them; strike and right come from the ``strike`` / ``right`` columns. Output records are :data:`~spymaster.events.OPTION`
with ``side`` = aggressor as given and ``tick_rule`` = 0; ``instrument_id`` = 0 (Parquet has no
instrument ids). A null or NaN price is dropped (``undef_price``); rows outside the session
window are filtered. Reading is in row-group batches of at most ``count`` rows (pyarrow).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spymaster.calendar import Session
from spymaster.errors import CorruptInputError, SchemaMismatchError
from spymaster.events import OPTION
from spymaster.instruments import parse_occ
from spymaster.logs import get_logger
from spymaster.sources.dbn import OrderCheck, StreamStats
from spymaster.sources.opra import ContractTable

log = get_logger("sources.parquet")

COLUMNS = ("ts_recv_ns", "ts_event_ns", "symbol", "expiration", "strike", "right", "price", "size", "aggressor")


def _is_int(t: pa.DataType) -> bool:
    return pa.types.is_integer(t)


def _is_str(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


_CHECKS = {
    "ts_recv_ns": (_is_int, "an integer (ns since the epoch)"),
    "ts_event_ns": (_is_int, "an integer (ns since the epoch)"),
    "symbol": (_is_str, "a string (OCC raw symbol)"),
    "expiration": (lambda t: pa.types.is_date(t) or pa.types.is_timestamp(t), "a date"),
    "strike": (pa.types.is_floating, "a float (SPY $)"),
    "right": (_is_str, "a string ('C' / 'P')"),
    "price": (pa.types.is_floating, "a float (SPY $)"),
    "size": (_is_int, "an integer (contracts)"),
    "aggressor": (_is_int, "an integer (+1 / -1 / 0)"),
}


def parquet_files(directory: Path) -> list[Path]:
    """``*.parquet`` files of a date directory, in name order (empty if the directory is absent)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix == ".parquet" and p.is_file())


def check_parquet(path: Path) -> pq.ParquetFile:
    """Open ``path`` and check the SPEC §12 columns; :class:`SchemaMismatchError` / :class:`CorruptInputError`."""
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise CorruptInputError(f"not a readable Parquet file: {exc}", path=path) from None
    schema = pf.schema_arrow
    for name in COLUMNS:
        if name not in schema.names:
            raise SchemaMismatchError(f"options Parquet lacks column {name!r} (SPEC §12 columns: {', '.join(COLUMNS)})",
                                      path=path)
        ok, want = _CHECKS[name]
        if not ok(schema.field(name).type):
            raise SchemaMismatchError(f"column {name!r} is {schema.field(name).type}, expected {want}", path=path)
    return pf


def _to_date(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Expiration column → numpy datetime64[D]."""
    t = col.type
    if pa.types.is_timestamp(t):
        col = pc.cast(col, pa.timestamp("ns"))
        return col.to_numpy(zero_copy_only=False).astype("datetime64[D]")
    return pc.cast(col, pa.date32()).to_numpy(zero_copy_only=False).astype("datetime64[D]")


def _batches(pf: pq.ParquetFile, path: Path, count: int, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """Row-group batches of at most ``count`` rows; a decoding failure becomes :class:`CorruptInputError`."""
    it = pf.iter_batches(batch_size=count, columns=columns)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:
            raise CorruptInputError(f"cannot decode Parquet data: {exc}", path=path) from None
        yield batch


def _ts(batch: pa.RecordBatch, path: Path, index: int) -> np.ndarray:
    """The batch's ``ts_recv_ns`` as int64 ns; nulls are refused."""
    col = batch.column("ts_recv_ns")
    if col.null_count:
        raise CorruptInputError(f"null ts_recv_ns in rows {index}..{index + batch.num_rows - 1}", path=path)
    return col.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def _strings(col: pa.Array) -> pa.Array:
    """A string column as plain ``string`` (dictionary-decoded, large_string cast)."""
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    return col if col.type == pa.string() else pc.cast(col, pa.string())


class ParquetOptions:
    """The session's 0DTE trades from Bronze Parquet files (contracts known after construction)."""

    def __init__(self, files: Sequence[Path], session: Session, *, root: str, count: int) -> None:
        self.files = list(files)
        self.session = session
        self.root = root
        self.count = count
        self._pf = {p: check_parquet(p) for p in self.files}
        self.contracts = ContractTable()
        self.anomalies: dict[str, int] = {}
        self._scan_contracts()

    def _classify(self, raw: str, exp: np.datetime64, strike: float, right: str | None, path: Path
                  ) -> tuple[float, bool] | None:
        """(strike, is_call) if ``raw`` is a session 0DTE contract of the root, else None."""
        day = np.datetime64(self.session.date.isoformat(), "D")
        try:
            occ = parse_occ(raw)
            root, exp_day = occ.root, np.datetime64(occ.expiration.isoformat(), "D")
            if exp != exp_day:
                self.anomalies["expiration_disagrees_with_symbol"] = \
                    self.anomalies.get("expiration_disagrees_with_symbol", 0) + 1
        except ValueError:
            root, exp_day = raw.strip().split(" ")[0], exp
        if root != self.root or exp_day != day:
            return None
        if right not in ("C", "P"):
            raise CorruptInputError(f"contract {raw!r} has right {right!r} (want 'C' or 'P')", path=path)
        if not np.isfinite(strike):
            raise CorruptInputError(f"contract {raw!r} has strike {strike!r}", path=path)
        return float(strike), right == "C"

    def _scan_contracts(self) -> None:
        """Contracts in order of their first kept trade (window, 0DTE, defined price); checks ordering early."""
        s = self.session
        known: dict[str, tuple[float, bool] | None] = {}
        order = OrderCheck()
        cols = ["ts_recv_ns", "symbol", "expiration", "strike", "right", "price"]
        for path in self.files:
            index = 0
            for batch in _batches(self._pf[path], path, self.count, cols):
                n = batch.num_rows
                ts = _ts(batch, path, index)
                order.check(ts, path, index)
                index += n
                lo = int(np.searchsorted(ts, s.start_ns, side="right"))
                hi = int(np.searchsorted(ts, s.end_ns, side="right"))
                if hi <= lo:
                    continue
                part = batch.slice(lo, hi - lo)
                enc = _strings(part.column("symbol")).dictionary_encode()
                idx = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
                uniq = enc.dictionary.to_pylist()
                is0 = np.zeros(len(uniq) + 1, dtype=np.bool_)  # last slot: null symbol
                exp = _to_date(part.column("expiration"))
                strike = part.column("strike").fill_null(np.nan).to_numpy(zero_copy_only=False)
                right = _strings(part.column("right")).to_pylist()
                _, first = np.unique(idx, return_index=True)
                for j in first.tolist():
                    k = int(idx[j])
                    if k < 0:
                        continue
                    raw = uniq[k]
                    if raw not in known:
                        known[raw] = self._classify(raw, exp[j], float(strike[j]), right[j], path)
                    is0[k] = known[raw] is not None
                price = part.column("price").fill_null(np.nan).to_numpy(zero_copy_only=False)
                keep = is0[idx] & np.isfinite(price)
                if keep.any():
                    u, f = np.unique(idx[keep], return_index=True)
                    for k in u[np.argsort(f, kind="stable")].tolist():
                        if uniq[k] not in self.contracts.index:
                            self.contracts.add(uniq[k], *known[uniq[k]])  # type: ignore[misc]

    def chunks(self, stats: StreamStats) -> Iterator[np.ndarray]:
        """OPTION chunks (ts_recv ascending), restricted to the session window and its 0DTE contracts."""
        stats.reset()
        order = OrderCheck()
        value_set = pa.array(self.contracts.raw_symbols, type=pa.string())
        strikes, calls = self.contracts.strike, self.contracts.is_call
        cols = ["ts_recv_ns", "ts_event_ns", "symbol", "price", "size", "aggressor"]
        s = self.session
        for path in self.files:
            index = 0
            before = dict(stats.dropped)
            for batch in _batches(self._pf[path], path, self.count, cols):
                n = batch.num_rows
                ts = _ts(batch, path, index)
                order.check(ts, path, index)
                stats.read += n
                lo = int(np.searchsorted(ts, s.start_ns, side="right"))
                hi = int(np.searchsorted(ts, s.end_ns, side="right"))
                stats.add_filtered("outside_session", n - (hi - lo))
                if hi > lo:
                    part = batch.slice(lo, hi - lo)
                    cidx = pc.index_in(_strings(part.column("symbol")), value_set=value_set)
                    code = cidx.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
                    stats.add_filtered("not_0dte", int((code < 0).sum()))
                    pcol = part.column("price")
                    price = pcol.fill_null(np.nan).to_numpy(zero_copy_only=False).astype(np.float64)
                    good = code >= 0
                    bad_px = good & ~np.isfinite(price)
                    stats.add_dropped("undef_price", int(bad_px.sum()))
                    good &= ~bad_px
                    agg = part.column("aggressor").fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
                    if ((agg < -1) | (agg > 1)).any():
                        i = int(np.argmax((agg < -1) | (agg > 1)))
                        raise CorruptInputError(f"row {index + lo + i} has aggressor {int(agg[i])} (want +1, -1 or 0)",
                                                path=path)
                    if good.any():
                        m = int(good.sum())
                        out = np.empty(m, dtype=OPTION)
                        c = code[good]
                        out["ts_recv"] = ts[lo:hi][good]
                        out["ts_event"] = part.column("ts_event_ns").fill_null(0).to_numpy(
                            zero_copy_only=False).astype(np.int64)[good]
                        out["instrument_id"] = 0
                        out["contract"] = c
                        out["strike"] = strikes[c]
                        out["is_call"] = calls[c]
                        out["price"] = price[good]
                        out["size"] = part.column("size").fill_null(0).to_numpy(zero_copy_only=False)[good]
                        out["side"] = agg[good]
                        out["tick_rule"] = 0
                        stats.add_kept(out["ts_recv"])
                        yield out
                index += n
            for reason, total in sorted(stats.dropped.items()):
                delta = total - before.get(reason, 0)
                if delta:
                    log.warning("option_trades_dropped", file=str(path), reason=reason, count=delta)
        stats.complete = True
