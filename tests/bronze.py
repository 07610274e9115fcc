"""Small hand-made Bronze lakes for the sources tests (DBN via spymaster.synth.dbnfile, Parquet via pyarrow).

:func:`standard_lake` writes one complete lake for trading date 2025-12-17 (Wednesday; session
(2025-12-16 17:00 ET, 2025-12-17 17:00 ET], UTC days 12-16 and 12-17) whose every record has a
known fate, listed in the constants below, so tests can state exact counts.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from spymaster.calendar import et_ns, to_ns
from spymaster.instruments import parse_occ
from spymaster.sources.lake import GLBX, OPRA, Lake
from spymaster.synth.dbnfile import mapping, new_records, write_dbn

GLBX_DS = "GLBX.MDP3"
OPRA_DS = "OPRA.PILLAR"
UNDEF = 2**63 - 1
I32_UNDEF = 2**31 - 1

D = dt.date(2025, 12, 17)
D_PREV = dt.date(2025, 12, 16)
START = et_ns(D_PREV, 17, 0)   # session start (exclusive)
END = et_ns(D, 17, 0)          # session end (inclusive)

# ES instruments of the standard lake
ESZ5, ESH6, SPREAD, NQH6 = 100, 200, 300, 400


def utc_ns(day: dt.date, hh: int = 0, mm: int = 0, ss: int = 0) -> int:
    return to_ns(dt.datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=dt.timezone.utc))


def px(points: float) -> int:
    """ES points or SPY $ → int64 1e-9 units."""
    return int(round(points * 1e9))


# ---------------------------------------------------------------------------------------- records
def es_definitions(rows: Sequence[tuple[str, int, dt.date | None, int]], cls: str | None = None) -> np.ndarray:
    """GLBX definitions from (raw_symbol, instrument_id, expiration ET date or None, ts_recv)."""
    a = new_records("definition", len(rows))
    for i, (raw, iid, exp, ts) in enumerate(rows):
        a["instrument_id"][i] = iid
        a["ts_recv"][i] = ts
        a["ts_event"][i] = ts
        a["raw_symbol"][i] = raw.encode()
        a["asset"][i] = raw[:2].encode()
        a["security_type"][i] = b"FUT"
        a["instrument_class"][i] = (cls or ("S" if "-" in raw else "F")).encode()
        a["expiration"][i] = et_ns(exp, 9, 30) if exp is not None else 2**64 - 1
        a["security_update_action"][i] = b"A"
    return a


def opra_definitions(rows: Sequence[dict]) -> np.ndarray:
    """OPRA definitions from dicts: raw, iid, ts, optional action ('A'/'M'/'D'), multiplier, strike, expiration."""
    a = new_records("definition", len(rows))
    for i, r in enumerate(rows):
        occ = parse_occ(r["raw"])
        a["publisher_id"][i] = 30
        a["instrument_id"][i] = r["iid"]
        a["ts_recv"][i] = r["ts"]
        a["ts_event"][i] = r["ts"]
        a["raw_symbol"][i] = r["raw"].encode()
        a["asset"][i] = occ.root.encode()
        a["underlying"][i] = occ.root.encode()
        a["security_type"][i] = b"OPT"
        a["instrument_class"][i] = b"C" if occ.is_call else b"P"
        a["strike_price"][i] = r.get("strike", px(occ.strike))
        exp = r.get("expiration", occ.expiration)
        a["expiration"][i] = utc_ns(exp)
        a["contract_multiplier"][i] = r.get("multiplier", I32_UNDEF)
        a["security_update_action"][i] = r.get("action", "A").encode()
    return a


def trades(ts: Sequence[int], price: Sequence[int], size: Sequence[int] | int = 1, side: str | Sequence[str] = "N",
           iid: Sequence[int] | int = ESH6) -> np.ndarray:
    """DBN TradeMsg records; ``price`` in int64 1e-9 units (use :func:`px`)."""
    n = len(ts)
    a = new_records("trades", n)
    a["ts_recv"] = np.asarray(ts, dtype=np.uint64)
    a["ts_event"] = a["ts_recv"] - 1000
    a["price"] = np.asarray(price, dtype=np.int64)
    a["size"] = size
    a["instrument_id"] = iid
    a["action"] = b"T"
    a["side"] = np.array([s.encode() for s in (side if not isinstance(side, str) else [side] * n)], dtype="S1")
    a["flags"] = 128
    return a


def mbp10(ts: Sequence[int], iid: Sequence[int] | int = ESH6, bid: float = 6850.0) -> np.ndarray:
    """DBN MBP10Msg records (action Add, 10 levels around ``bid`` with sizes 10..19, F_LAST)."""
    n = len(ts)
    a = new_records("mbp-10", n)
    a["ts_recv"] = np.asarray(ts, dtype=np.uint64)
    a["ts_event"] = a["ts_recv"] - 1000
    a["instrument_id"] = iid
    a["action"] = b"A"
    a["side"] = b"B"
    a["price"] = px(bid)
    a["size"] = 1
    a["flags"] = 128
    for k in range(10):
        a[f"bid_px_{k:02d}"] = px(bid - 0.25 * k)
        a[f"ask_px_{k:02d}"] = px(bid + 0.25 * (k + 1))
        a[f"bid_sz_{k:02d}"] = 10 + k
        a[f"ask_sz_{k:02d}"] = 10 + k
        a[f"bid_ct_{k:02d}"] = 1
        a[f"ask_ct_{k:02d}"] = 1
    return a


# ---------------------------------------------------------------------------------------- files
def write(lake: Lake, dataset_dir: str, schema: str, day: dt.date, records: np.ndarray, *, compressed: bool = True,
          mappings: list | None = None, header_schema: str | None | bool = True) -> Path:
    """Write a daily Bronze file; ``header_schema`` overrides the metadata schema (None = mixed)."""
    path = lake.bronze_path(dataset_dir, schema, day, compressed=compressed)
    ds = GLBX_DS if dataset_dir == GLBX else OPRA_DS
    sch = schema if header_schema is True else header_schema
    return write_dbn(path, records, dataset=ds, schema=sch, start_ns=utc_ns(day), end_ns=utc_ns(day + dt.timedelta(1)),
                     mappings=mappings)


def write_zst_with_checksum(path: Path, raw_dbn: bytes) -> Path:
    """zstd-compress DBN bytes with a content checksum, as Databento's own files are."""
    path.write_bytes(zstandard.ZstdCompressor(level=3, write_checksum=True).compress(raw_dbn))
    return path


def options_parquet(path: Path, rows: Sequence[dict]) -> Path:
    """A Bronze Parquet options file (SPEC §12 columns) from dicts with keys ts, symbol, price, size, aggressor."""
    syms = [r["symbol"] for r in rows]
    occ = [parse_occ(s) for s in syms]
    table = pa.table({
        "ts_recv_ns": pa.array([r["ts"] for r in rows], pa.int64()),
        "ts_event_ns": pa.array([r["ts"] - 1000 for r in rows], pa.int64()),
        "symbol": pa.array(syms, pa.string()),
        "expiration": pa.array([o.expiration for o in occ], pa.date32()),
        "strike": pa.array([o.strike for o in occ], pa.float64()),
        "right": pa.array(["C" if o.is_call else "P" for o in occ], pa.string()),
        "price": pa.array([r["price"] for r in rows], pa.float64()),
        "size": pa.array([r.get("size", 1) for r in rows], pa.int64()),
        "aggressor": pa.array([r.get("aggressor", 0) for r in rows], pa.int8()),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=3)
    return path


# ---------------------------------------------------------------------------------------- the standard lake
C680 = "SPY   251217C00680000"
P680 = "SPY   251217P00680000"
C685 = "SPY   251217C00685000"
P675 = "SPY   251217P00675000"
C680_TOMORROW = "SPY   251218C00680000"
QQQ = "QQQ   251217C00600000"

# ES trades of the chosen contract (ESH6) inside the window, and the other records' fates
ES_KEPT_TRADES = 6         # 3 on 12-16 evening, 3 on 12-17 (one at exactly END)
ES_UNDEF_TRADES = 1
ES_KEPT_BOOKS = 4          # 1 on 12-16 evening, 3 on 12-17 (one at exactly END)
OPTION_KEPT = 5            # C680 x2, P680, C685, P675


def standard_lake(lake: Lake, *, compressed: bool = True, with_options: bool = True) -> Lake:
    """The reference lake for trading date 2025-12-17 (see the module docstring)."""
    defs = [("ESZ5", ESZ5, dt.date(2025, 12, 19)), ("ESH6", ESH6, dt.date(2026, 3, 20)),
            ("ESZ5-ESH6", SPREAD, dt.date(2025, 12, 19)), ("NQH6", NQH6, dt.date(2026, 3, 20))]
    for day in (D_PREV, D):
        t0 = utc_ns(day, 0, 0, 1)
        write(lake, GLBX, "definition", day, es_definitions([(r, i, e, t0) for r, i, e in defs]), compressed=compressed)
    # day 1 (12-16): before START, at START (excluded), after START (kept: 3 ESH6)
    t_prev = [et_ns(D_PREV, 15, 0), START, START + 1, et_ns(D_PREV, 18, 0), et_ns(D_PREV, 18, 0), et_ns(D_PREV, 19, 0),
              et_ns(D_PREV, 19, 0) + 5]
    i_prev = [ESH6, ESH6, ESH6, ESZ5, ESH6, SPREAD, ESH6]
    write(lake, GLBX, "trades", D_PREV,
          trades(t_prev, [px(6850.0)] * 7, [1, 2, 3, 4, 5, 6, 7], ["B", "A", "B", "A", "N", "B", "A"], i_prev),
          compressed=compressed)
    # day 2 (12-17): 2 ESH6 in RTH (one UNDEF), ESZ5, ESH6 at END (kept), after END
    t_d = [et_ns(D, 10, 0), et_ns(D, 10, 0), et_ns(D, 10, 1), et_ns(D, 10, 2), END, END + 1]
    p_d = [px(6851.25), px(6851.0), UNDEF, px(6852.0), px(6853.0), px(6854.0)]
    write(lake, GLBX, "trades", D, trades(t_d, p_d, [1, 1, 1, 2, 3, 4], "B", [ESH6, ESZ5, ESH6, ESH6, ESH6, ESH6]),
          compressed=compressed)
    write(lake, GLBX, "mbp-10", D_PREV,
          mbp10([START, et_ns(D_PREV, 18, 0), et_ns(D_PREV, 18, 0) + 1, et_ns(D_PREV, 20, 0)],
                [ESH6, ESH6, SPREAD, ESZ5]), compressed=compressed)
    write(lake, GLBX, "mbp-10", D,
          mbp10([et_ns(D, 9, 30), et_ns(D, 9, 30), et_ns(D, 12, 0), END, END + 10], [ESH6, ESZ5, ESH6, ESH6, ESH6]),
          compressed=compressed)
    if with_options:
        write_standard_opra(lake, compressed=compressed)
    return lake


def write_standard_opra(lake: Lake, *, compressed: bool = True) -> None:
    """OPRA files of day D: definitions and trades with every join case."""
    t_def = et_ns(D, 6, 30)
    rows = [
        {"raw": C680, "iid": 1001, "ts": t_def},
        {"raw": P680, "iid": 1002, "ts": t_def},
        {"raw": C680_TOMORROW, "iid": 1003, "ts": t_def},
        {"raw": QQQ, "iid": 1004, "ts": t_def},
        {"raw": C680_TOMORROW, "iid": 1007, "ts": t_def},
        {"raw": C685, "iid": 1005, "ts": et_ns(D, 11, 0)},
        {"raw": C680_TOMORROW, "iid": 1007, "ts": et_ns(D, 12, 0), "action": "D"},
        {"raw": P675, "iid": 1007, "ts": et_ns(D, 12, 0) + 1},
        {"raw": P680, "iid": 1002, "ts": et_ns(D, 15, 0), "action": "D"},
    ]
    write(lake, OPRA, "definition", D, opra_definitions(rows), compressed=compressed)
    tr = [
        (et_ns(D, 9, 31), 1001, px(1.25), "N"),      # kept C680, tick rule
        (et_ns(D, 9, 32), 1002, px(0.95), "B"),      # kept P680, buy
        (et_ns(D, 9, 33), 1003, px(2.00), "A"),      # not 0DTE
        (et_ns(D, 9, 34), 1004, px(3.00), "A"),      # other root
        (et_ns(D, 10, 0), 1005, px(0.40), "A"),      # before its definition: no_definition
        (et_ns(D, 10, 1), 1006, px(0.40), "A"),      # never defined: no_definition
        (et_ns(D, 11, 0), 1005, px(0.45), "A"),      # at its definition's ts_recv: kept C685, sell
        (et_ns(D, 11, 30), 1007, px(0.10), "N"),     # 1007 still C680 tomorrow: not 0DTE
        (et_ns(D, 12, 0) + 1, 1007, px(0.70), "B"),  # 1007 redefined as P675: kept
        (et_ns(D, 12, 30), 1001, UNDEF, "N"),        # undef price
        (et_ns(D, 14, 0), 1001, px(1.10), "N"),      # kept
        (et_ns(D, 15, 30), 1002, px(0.50), "A"),     # deleted definition
    ]
    write(lake, OPRA, "trades", D, trades([r[0] for r in tr], [r[2] for r in tr], [1] * len(tr), [r[3] for r in tr],
                                          [r[1] for r in tr]), compressed=compressed)


def standard_parquet_rows() -> list[dict]:
    return [
        {"ts": et_ns(D, 9, 31), "symbol": C680, "price": 1.25, "size": 2, "aggressor": 1},
        {"ts": et_ns(D, 9, 32), "symbol": P680, "price": 0.95, "size": 3, "aggressor": -1},
        {"ts": et_ns(D, 9, 33), "symbol": C680_TOMORROW, "price": 2.0, "aggressor": 0},
        {"ts": et_ns(D, 9, 34), "symbol": QQQ, "price": 3.0},
        {"ts": et_ns(D, 10, 0), "symbol": C685, "price": float("nan")},
        {"ts": et_ns(D, 11, 0), "symbol": C685, "price": 0.45, "aggressor": 0},
        {"ts": et_ns(D, 14, 0), "symbol": C680, "price": 1.10, "size": 5, "aggressor": 1},
    ]


def mappings_for(symbols: dict[str, int], day: dt.date) -> list:
    return [mapping(raw, iid, day, day + dt.timedelta(1)) for raw, iid in symbols.items()]


def write_minimal_opra(lake: Lake, day: dt.date, root: str = "SPY") -> str:
    """One 0DTE call of ``day`` defined at 06:30 ET and traded once at 10:00 ET; returns its raw symbol."""
    raw = f"{root:<6}{day:%y%m%d}C00550000"
    write(lake, OPRA, "definition", day, opra_definitions([{"raw": raw, "iid": 7, "ts": et_ns(day, 6, 30)}]))
    write(lake, OPRA, "trades", day, trades([et_ns(day, 10, 0)], [px(1.0)], 1, "N", 7))
    return raw
