"""SPY 0DTE option trades from OPRA DBN files, joined to their definitions (SPEC §3, §8).

A contract is a session 0DTE contract when its OCC raw symbol has the configured root
(``config.instrument.option_root``) and expiry date D (fallback for a non-OCC symbol: the
definition's ``underlying`` and the UTC date of ``expiration``, which is midnight UTC of the
expiry day); strike = ``strike_price`` / 1e9 (SPY $), right from ``instrument_class`` (C/P),
multiplier 100 (an undefined ``contract_multiplier`` — i32 max in real files — counts as 100;
a defined multiplier other than ``config.instrument.option_multiplier`` excludes the contract).

Contracts get a dense index in order of their first kept trade of the session (found by a
pre-scan of the trades files when the session is opened, which also validates them), so the
OPRA DBN and Bronze Parquet sources number contracts alike; the same raw symbol keeps its index
across UTC days although instrument_ids are per day. Defined contracts that never trade in the
session are not in the table. A trade is joined to the latest definition of its instrument_id in
the *same UTC day's* definition file with ``ts_recv`` ≤ its own (a numba merge-walk over both
ts-sorted sequences, state carried across chunks, so any chunking gives the same result);
``security_update_action`` 'D' deletes the id's definition. Trades with no definition in force
are dropped and counted (``no_definition`` / ``definition_deleted``); trades on other
contracts are filtered (``not_0dte``); 0DTE trades with an UNDEF price are dropped
(``undef_price``).

Output: :data:`~spymaster.events.OPTION` records — price SPY $ per share, size contracts, side
+1 'B' / −1 'A' / 0 otherwise with ``tick_rule`` = 1 when the side is unknown.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numba
import numpy as np

from spymaster.calendar import DAY_NS, Session
from spymaster.events import OPTION, PRICE_SCALE, SIDE_ASK, SIDE_BID, UNDEF_PRICE
from spymaster.instruments import parse_occ
from spymaster.logs import get_logger
from spymaster.sources.dbn import DbnHeader, OrderCheck, StreamStats, session_parts

log = get_logger("sources.opra")

I32_UNDEF = 2**31 - 1
CODE_OTHER = -1       # defined, but not a session 0DTE contract
CODE_NO_DEF = -2      # no definition yet
CODE_DELETED = -3     # definition deleted ('D')


@dataclass
class ContractTable:
    """The session's 0DTE contracts: dense index → raw symbol, strike (SPY $), call/put."""

    raw_symbols: list[str] = field(default_factory=list)
    _strike: list[float] = field(default_factory=list)
    _is_call: list[bool] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)

    def add(self, raw_symbol: str, strike: float, is_call: bool) -> int:
        """The index of ``raw_symbol`` (appended on first appearance)."""
        i = self.index.get(raw_symbol)
        if i is None:
            i = len(self.raw_symbols)
            self.index[raw_symbol] = i
            self.raw_symbols.append(raw_symbol)
            self._strike.append(float(strike))
            self._is_call.append(bool(is_call))
        return i

    def __len__(self) -> int:
        return len(self.raw_symbols)

    @property
    def strike(self) -> np.ndarray:
        """float64 SPY $ per contract index."""
        return np.array(self._strike, dtype=np.float64)

    @property
    def is_call(self) -> np.ndarray:
        """uint8 1 = call, 0 = put, per contract index."""
        return np.array(self._is_call, dtype=np.uint8)

    def summary(self) -> dict:
        k = self.strike
        calls = int(self.is_call.sum())
        return {"count": len(self), "calls": calls, "puts": len(self) - calls,
                "strike_min": float(k.min()) if len(self) else None,
                "strike_max": float(k.max()) if len(self) else None}

    def to_list(self) -> list[dict]:
        return [{"contract": i, "raw_symbol": s, "strike": k, "is_call": c}
                for i, (s, k, c) in enumerate(zip(self.raw_symbols, self._strike, self._is_call))]


@dataclass
class DefTable:
    """One UTC day's definitions for the join, sorted by ts_recv (stable)."""

    day: dt.date
    uids: np.ndarray    # uint32 sorted unique instrument_ids
    ts: np.ndarray      # int64 ts_recv
    dense: np.ndarray   # int32 index into uids
    code: np.ndarray    # int32 contract index (>= 0), CODE_OTHER or CODE_DELETED

    def __len__(self) -> int:
        return int(self.ts.shape[0])


@dataclass
class DefinitionStats:
    read: int = 0
    zero_dte_rows: int = 0
    deletes: int = 0
    skipped: dict[str, int] = field(default_factory=dict)     # candidate rows excluded, by reason
    anomalies: dict[str, int] = field(default_factory=dict)   # rows kept despite an inconsistency

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def note(self, reason: str) -> None:
        self.anomalies[reason] = self.anomalies.get(reason, 0) + 1

    def to_dict(self) -> dict:
        return {"read": self.read, "zero_dte_rows": self.zero_dte_rows, "deletes": self.deletes,
                "skipped": dict(sorted(self.skipped.items())), "anomalies": dict(sorted(self.anomalies.items()))}


def _classify(row: np.void, root: str, day: dt.date, multiplier: float, stats: DefinitionStats
              ) -> tuple[str, float, bool] | None:
    """(raw_symbol, strike, is_call) if the definition row is a session 0DTE contract, else None."""
    cls = bytes(row["instrument_class"])
    if cls not in (b"C", b"P"):
        stats.skip("not_an_option")
        return None
    raw = row["raw_symbol"].decode("ascii", "replace")
    exp_ns = int(row["expiration"])
    exp_day = dt.date(1970, 1, 1) + dt.timedelta(days=exp_ns // DAY_NS) if exp_ns < 2**63 else None
    try:
        occ = parse_occ(raw)
        sym_root, sym_exp, occ_strike = occ.root, occ.expiration, occ.strike
        if exp_day is not None and exp_day != sym_exp:
            stats.note("expiration_disagrees_with_symbol")  # the OCC symbol wins (SPEC §3)
    except ValueError:
        sym_root = row["underlying"].decode("ascii", "replace").strip()
        sym_exp, occ_strike = exp_day, None
    if sym_root != root or sym_exp != day:
        return None
    mult = int(row["contract_multiplier"])
    if mult != I32_UNDEF and float(mult) != multiplier:
        stats.skip("nonstandard_multiplier")
        return None
    px = int(row["strike_price"])
    if px == int(UNDEF_PRICE):
        if occ_strike is None:
            stats.skip("no_strike")
            return None
        strike = occ_strike
    else:
        strike = px / PRICE_SCALE
    return raw, strike, cls == b"C"


def load_definitions(files: Iterable[tuple[dt.date, DbnHeader]], session: Session, *, root: str,
                     multiplier: float, count: int) -> tuple[ContractTable, dict[dt.date, DefTable], DefinitionStats]:
    """Read the session's OPRA definition files (bounded memory; only compact columns kept)."""
    contracts = ContractTable()
    tables: dict[dt.date, DefTable] = {}
    stats = DefinitionStats()
    prefix = f"{root:<6}{session.date:%y%m%d}".encode()
    d_epoch = (session.date - dt.date(1970, 1, 1)).days
    for day, header in files:
        ts_parts, id_parts, code_parts = [], [], []
        for arr in header.chunks(count):
            n = arr.shape[0]
            stats.read += n
            code = np.full(n, CODE_OTHER, dtype=np.int32)
            exp = arr["expiration"]
            cand = np.char.startswith(arr["raw_symbol"], prefix)
            cand |= (arr["underlying"] == root.encode()) & (exp < np.uint64(2**63)) & \
                    ((exp // np.uint64(DAY_NS)).astype(np.int64) == d_epoch)
            deleted = arr["security_update_action"] == b"D"
            for i in np.flatnonzero(cand & ~deleted).tolist():
                got = _classify(arr[i], root, session.date, multiplier, stats)
                if got is not None:
                    code[i] = contracts.add(*got)
                    stats.zero_dte_rows += 1
            code[deleted] = CODE_DELETED
            stats.deletes += int(deleted.sum())
            ts_parts.append(arr["ts_recv"].astype(np.int64))
            id_parts.append(arr["instrument_id"].astype(np.uint32))
            code_parts.append(code)
        ts = np.concatenate(ts_parts) if ts_parts else np.zeros(0, np.int64)
        ids = np.concatenate(id_parts) if id_parts else np.zeros(0, np.uint32)
        codes = np.concatenate(code_parts) if code_parts else np.zeros(0, np.int32)
        order = np.argsort(ts, kind="stable")
        ts, ids, codes = ts[order], ids[order], codes[order]
        uids = np.unique(ids)
        tables[day] = DefTable(day, uids, ts, np.searchsorted(uids, ids).astype(np.int32), codes)
    return contracts, tables, stats


@numba.njit(cache=True, nogil=True)
def _join(t_ts, t_dense, d_ts, d_dense, d_code, state, ptr, out):  # pragma: no cover - compiled
    """Latest definition (ts_recv <= trade's) per trade; ``state``/``ptr`` carry across chunks."""
    nd = d_ts.shape[0]
    for i in range(t_ts.shape[0]):
        t = t_ts[i]
        while ptr < nd and d_ts[ptr] <= t:
            state[d_dense[ptr]] = d_code[ptr]
            ptr += 1
        k = t_dense[i]
        out[i] = state[k] if k >= 0 else -2
    return ptr


class Joiner:
    """Join state for one UTC day's trades file."""

    def __init__(self, table: DefTable) -> None:
        self.table = table
        self.state = np.full(table.uids.shape[0], CODE_NO_DEF, dtype=np.int32)
        self.ptr = 0

    def codes(self, ts: np.ndarray, iid: np.ndarray) -> np.ndarray:
        """Contract index (>= 0) or a CODE_* per trade (``ts`` ascending, continuing the last call)."""
        uids = self.table.uids
        n = ts.shape[0]
        if uids.shape[0]:
            pos = np.minimum(np.searchsorted(uids, iid), uids.shape[0] - 1)
            dense = np.where(uids[pos] == iid, pos, -1).astype(np.int64)
        else:
            dense = np.full(n, -1, dtype=np.int64)
        out = np.empty(n, dtype=np.int32)
        self.ptr = _join(np.ascontiguousarray(ts, dtype=np.int64), dense, self.table.ts, self.table.dense,
                         self.table.code, self.state, self.ptr, out)
        return out


def option_records(part: np.ndarray, codes: np.ndarray, contracts: ContractTable) -> np.ndarray:
    """DBN trade rows (all 0DTE, defined price) + their contract indices → OPTION records."""
    n = part.shape[0]
    out = np.empty(n, dtype=OPTION)
    out["ts_recv"] = part["ts_recv"]
    out["ts_event"] = part["ts_event"]
    out["instrument_id"] = part["instrument_id"]
    out["contract"] = codes
    out["strike"] = contracts.strike[codes]
    out["is_call"] = contracts.is_call[codes]
    out["price"] = part["price"].astype(np.float64) / PRICE_SCALE
    out["size"] = part["size"]
    side = part["side"].view(np.uint8)
    sgn = np.zeros(n, dtype=np.int8)
    sgn[side == SIDE_BID] = 1
    sgn[side == SIDE_ASK] = -1
    out["side"] = sgn
    out["tick_rule"] = (sgn == 0).astype(np.uint8)
    return out


def _kept(files: Iterable[tuple[dt.date, DbnHeader]], tables: dict[dt.date, DefTable], session: Session, count: int,
          stats: StreamStats, *, log_drops: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(DBN trade rows, definition codes) of the kept 0DTE trades, chunk by chunk, with the checks and counts."""
    order = OrderCheck()
    stats.reset()
    for day, header in files:
        joiner = Joiner(tables[day])
        before = dict(stats.dropped)
        for part, ts in session_parts(header, count, session.start_ns, session.end_ns, order, stats):
            codes = joiner.codes(ts, part["instrument_id"])
            stats.add_dropped("no_definition", int((codes == CODE_NO_DEF).sum()))
            stats.add_dropped("definition_deleted", int((codes == CODE_DELETED).sum()))
            stats.add_filtered("not_0dte", int((codes == CODE_OTHER).sum()))
            good = codes >= 0
            undef = good & (part["price"] == UNDEF_PRICE)
            stats.add_dropped("undef_price", int(undef.sum()))
            good &= ~undef
            if good.any():
                kept = part[good]
                stats.add_kept(kept["ts_recv"].view(np.int64))
                yield kept, codes[good]
        for reason, total in sorted(stats.dropped.items()):
            delta = total - before.get(reason, 0)
            if delta and log_drops:
                log.warning("option_trades_dropped", file=str(header.path), reason=reason, count=delta)
    stats.complete = True


def traded_order(files: Iterable[tuple[dt.date, DbnHeader]], tables: dict[dt.date, DefTable], session: Session,
                 count: int, n_contracts: int) -> np.ndarray:
    """Definition-table indices of the contracts in order of their first kept trade (a pre-scan).

    Also validates the trades files (ordering, truncation, records) before any consumer reads them.
    """
    seen = np.zeros(n_contracts, dtype=np.bool_)
    order: list[int] = []
    for _, codes in _kept(files, tables, session, count, StreamStats(), log_drops=False):
        fresh = codes[~seen[codes]]
        if fresh.size:
            uniq, first = np.unique(fresh, return_index=True)
            new = uniq[np.argsort(first, kind="stable")]
            seen[new] = True
            order.extend(new.tolist())
    return np.array(order, dtype=np.int64)


def restrict(contracts: ContractTable, tables: dict[dt.date, DefTable], order: np.ndarray) -> ContractTable:
    """The contracts of ``order`` re-indexed 0..n−1 in that order; ``tables`` codes remapped in place
    (a defined contract that never traded becomes CODE_OTHER: it has no trade to map)."""
    out = ContractTable()
    strike, is_call = contracts.strike, contracts.is_call
    for i in order.tolist():
        out.add(contracts.raw_symbols[i], float(strike[i]), bool(is_call[i]))
    remap = np.full(len(contracts), CODE_OTHER, dtype=np.int32)
    remap[order] = np.arange(order.shape[0], dtype=np.int32)
    for t in tables.values():
        sel = t.code >= 0
        t.code[sel] = remap[t.code[sel]]
    return out


def opra_chunks(files: Iterable[tuple[dt.date, DbnHeader]], tables: dict[dt.date, DefTable], contracts: ContractTable,
                session: Session, count: int, stats: StreamStats) -> Iterator[np.ndarray]:
    """OPTION chunks of the session's 0DTE trades, in ts_recv order (checked across files)."""
    for part, codes in _kept(files, tables, session, count, stats):
        yield option_records(part, codes, contracts)
