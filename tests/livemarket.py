"""A small hand-built trading morning for the live tests (not the synthetic market: a fixture).

Trading date 2025-12-17, 09:20–10:05 ET: ESH6 trades every ~1.5 s on a seeded random walk that
oscillates around ES 6800 (so ROUND@680.00 and neighbours are touched), MBP-10 books around it,
ESZ5 / spread records to be filtered out, and SPY 0DTE calls and puts at 676..684 traded so the
ES–SPY basis, the fuel engine and STRIKE levels come alive; plus non-0DTE option records. Written
as Bronze DBN files (``write_lake``), so the historical replay and the live path read the same
records.
"""

from __future__ import annotations

import math

import numpy as np

from bronze import D, D_PREV, ESH6, ESZ5, GLBX, OPRA, SPREAD, es_definitions, opra_definitions, px, utc_ns, write
from spymaster.calendar import et_ns
from spymaster.events import UNDEF_PRICE
from spymaster.synth.dbnfile import new_records

NS = 1_000_000_000
T_OPEN = et_ns(D, 9, 20)
T_END = et_ns(D, 10, 5)
STRIKES = list(range(676, 685))
BASIS = 4.5


def es_path(rng: np.random.Generator, n: int) -> np.ndarray:
    """ES prices on the 0.25 grid oscillating around 6800 with noise."""
    t = np.arange(n)
    base = 6800.0 + 9.0 * np.sin(t / 180.0) + np.cumsum(rng.normal(0, 0.35, n)) * 0.3
    return np.round(base * 4) / 4


def build(seed: int = 11) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    span = T_END - T_OPEN
    n = int(span / (1.5 * NS))
    ts = np.sort(T_OPEN + rng.integers(0, span, n)).astype(np.int64)
    ts[1:] = np.maximum(ts[1:], ts[:-1])
    price = es_path(rng, n)
    trades = new_records("trades", n)
    trades["ts_recv"] = ts.astype(np.uint64)
    trades["ts_event"] = (ts - 20_000).astype(np.uint64)
    trades["instrument_id"] = ESH6
    trades["price"] = np.round(price * 1e9).astype(np.int64)
    trades["size"] = rng.integers(1, 40, n)
    trades["action"] = b"T"
    trades["side"] = np.where(rng.random(n) < 0.5, b"B", b"A")
    trades["flags"] = 128
    # noise: another contract, a spread, an UNDEF price, and a burst at one instant (ties)
    trades["instrument_id"][5::97] = ESZ5
    trades["instrument_id"][7::131] = SPREAD
    trades["price"][11::503] = UNDEF_PRICE
    trades["ts_recv"][200:204] = trades["ts_recv"][200]

    nb = int(span / NS)
    bts = np.sort(T_OPEN + rng.integers(0, span, nb)).astype(np.int64)
    books = new_records("mbp-10", nb)
    books["ts_recv"] = bts.astype(np.uint64)
    books["ts_event"] = (bts - 20_000).astype(np.uint64)
    books["instrument_id"] = ESH6
    books["action"] = np.where(rng.random(nb) < 0.7, b"A", b"C")
    books["side"] = np.where(rng.random(nb) < 0.5, b"B", b"A")
    books["flags"] = 128
    mid = np.interp(bts, ts, price)
    best_bid = np.floor(mid * 4) / 4
    books["price"] = np.round(best_bid * 1e9).astype(np.int64)
    books["size"] = 1
    for k in range(10):
        books[f"bid_px_{k:02d}"] = np.round((best_bid - 0.25 * k) * 1e9).astype(np.int64)
        books[f"ask_px_{k:02d}"] = np.round((best_bid + 0.25 * (k + 1)) * 1e9).astype(np.int64)
        books[f"bid_sz_{k:02d}"] = rng.integers(5, 400, nb)
        books[f"ask_sz_{k:02d}"] = rng.integers(5, 400, nb)
        books[f"bid_ct_{k:02d}"] = rng.integers(1, 20, nb)
        books[f"ask_ct_{k:02d}"] = rng.integers(1, 20, nb)
    books["ts_recv"][300:303] = books["ts_recv"][300]
    books["ts_recv"][1:] = np.maximum.accumulate(books["ts_recv"])[1:]
    books["instrument_id"][9::211] = ESZ5
    # a book and a trade sharing one ts_recv (the tie rule: trades before books)
    books["ts_recv"][400] = trades["ts_recv"][np.searchsorted(trades["ts_recv"], books["ts_recv"][400])]
    books["ts_recv"][1:] = np.maximum.accumulate(books["ts_recv"])[1:]

    # options: definitions at 06:30 ET; trades 09:30 .. 10:05
    rows, iid = [], 5000
    raw_of = {}
    for k in STRIKES:
        for right in "CP":
            raw = f"SPY   251217{right}{k * 1000:08d}"
            rows.append({"raw": raw, "iid": iid, "ts": et_ns(D, 6, 30)})
            raw_of[iid] = (raw, k, right)
            iid += 1
    rows.append({"raw": "SPY   251218C00680000", "iid": 6000, "ts": et_ns(D, 6, 30)})
    defs = opra_definitions(rows)
    no = 700
    ots = np.sort(et_ns(D, 9, 30) + rng.integers(0, T_END - et_ns(D, 9, 30), no)).astype(np.int64)
    ids = rng.integers(5000, iid, no)
    ids[::53] = 6000
    spot = np.interp(ots, ts, price) / 10.0 - BASIS
    oprice = np.empty(no)
    for j in range(no):
        if ids[j] == 6000:
            oprice[j] = 2.0
            continue
        _, k, right = raw_of[int(ids[j])]
        intrinsic = max(spot[j] - k, 0.0) if right == "C" else max(k - spot[j], 0.0)
        oprice[j] = round(intrinsic + 0.35 * math.exp(-abs(spot[j] - k) / 2.5) + 0.05, 2)
    otr = new_records("trades", no)
    otr["ts_recv"] = ots.astype(np.uint64)
    otr["ts_event"] = (ots - 5_000).astype(np.uint64)
    otr["publisher_id"] = 23
    otr["instrument_id"] = ids
    otr["price"] = np.round(oprice * 1e9).astype(np.int64)
    otr["size"] = rng.integers(1, 60, no)
    otr["action"] = b"T"
    otr["side"] = np.where(rng.random(no) < 0.2, b"B", b"N")
    otr["flags"] = 194
    return {"trades": trades, "books": books, "opra_defs": defs, "opra_trades": otr}


def write_lake(lake, seed: int = 11):
    """Write the morning as Bronze files of the 2025-12-17 session (UTC days 12-16 and 12-17)."""
    m = build(seed)
    es_defs = [("ESZ5", ESZ5, D.replace(day=19)), ("ESH6", ESH6, D.replace(year=2026, month=3, day=20)),
               ("ESZ5-ESH6", SPREAD, D.replace(day=19))]
    for day in (D_PREV, D):
        write(lake, GLBX, "definition", day, es_definitions([(r, i, e, utc_ns(day, 0, 0, 1)) for r, i, e in es_defs]))
    # the previous UTC day holds one evening trade and book of the session (and one before it)
    ev = et_ns(D_PREV, 19, 0)
    pre = new_records("trades", 2)
    pre["ts_recv"] = np.array([et_ns(D_PREV, 16, 0), ev], dtype=np.uint64)
    pre["ts_event"] = pre["ts_recv"]
    pre["instrument_id"] = ESH6
    pre["price"] = px(6795.0)
    pre["size"] = 1
    pre["action"] = b"T"
    pre["side"] = b"B"
    pre["flags"] = 128
    write(lake, GLBX, "trades", D_PREV, pre)
    pb = m["books"][:1].copy()
    pb["ts_recv"] = ev + 1
    write(lake, GLBX, "mbp-10", D_PREV, pb)
    write(lake, GLBX, "trades", D, m["trades"])
    write(lake, GLBX, "mbp-10", D, m["books"])
    write(lake, OPRA, "definition", D, m["opra_defs"])
    write(lake, OPRA, "trades", D, m["opra_trades"])
    return lake
