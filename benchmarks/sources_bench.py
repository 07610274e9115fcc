"""Decode speed of the sources vs databento's plain ``to_ndarray(count=…)`` loop (notes §1.7).

Run: ``python benchmarks/sources_bench.py [--books 1000000] [--trades 3000000] [--count 100000]``.
Generates (once, under ``benchmarks/out/``) an ES MBP-10 ``.dbn.zst`` with random sizes/counts,
an ES trades ``.dbn.zst`` and ``.dbn``, all of one instrument inside the session of 2025-12-17,
plus a minimal OPRA pair, laid out as a lake. Prints M records/s for:

* ``to_ndarray``: ``for a in DBNStore.from_file(p).to_ndarray(count=N)`` (no checks);
* ``read_dbn``: :func:`spymaster.sources.dbn.read_dbn` (strict: truncation, record checks);
* ``stream``: the session stream from :func:`open_session` (ordering check, window and
  instrument filter, TRADE/BOOK view; UNDEF drop for trades);
* ``sha256``: :func:`file_sha256` of the compressed file (MB/s).

Each figure is the best of ``--repeat`` interleaved runs with the files in the page cache.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out" / "sources_lake"


def _gen(n_books: int, n_trades: int) -> None:
    from spymaster.calendar import et_ns, session_for
    from spymaster.sources.lake import GLBX, OPRA, Lake
    from spymaster.synth.dbnfile import definition_records, new_records, write_dbn

    lake = Lake.at(OUT)
    s = session_for("2025-12-17")
    d_prev, d = s.utc_days()
    rng = np.random.default_rng(7)
    t0, t1 = et_ns(d, 9, 30), et_ns(d, 16, 0)

    def ts(n: int) -> np.ndarray:
        return np.sort(rng.integers(t0, t1, n)).astype(np.uint64)

    marker = OUT / f".done-{n_books}-{n_trades}"
    if marker.exists():
        return
    for day in (d_prev, d):
        defs = definition_records([{"instrument_id": 200, "raw_symbol": "ESH6", "instrument_class": "F",
                                    "expiration": et_ns(day.replace(year=2026, month=3, day=20), 9, 30),
                                    "ts_recv": et_ns(day, 0, 0), "security_update_action": "A"}])
        write_dbn(lake.bronze_path(GLBX, "definition", day), defs, dataset="GLBX.MDP3", schema="definition", start_ns=0)
        empty_t, empty_b = new_records("trades", 0), new_records("mbp-10", 0)
        if day == d_prev:
            write_dbn(lake.bronze_path(GLBX, "trades", day), empty_t, dataset="GLBX.MDP3", schema="trades", start_ns=0)
            write_dbn(lake.bronze_path(GLBX, "mbp-10", day), empty_b, dataset="GLBX.MDP3", schema="mbp-10", start_ns=0)
    b = new_records("mbp-10", n_books)
    b["ts_recv"] = ts(n_books)
    b["ts_event"] = b["ts_recv"] - 20_000
    b["instrument_id"] = 200
    b["flags"] = 128
    mid = np.round((6850 + np.cumsum(rng.normal(0, 0.02, n_books))) * 4) / 4
    for k in range(10):
        b[f"bid_px_{k:02d}"] = np.round((mid - 0.25 * k) * 1e9).astype(np.int64)
        b[f"ask_px_{k:02d}"] = np.round((mid + 0.25 * (k + 1)) * 1e9).astype(np.int64)
        for side in ("bid", "ask"):
            b[f"{side}_sz_{k:02d}"] = rng.integers(1, 400, n_books)
            b[f"{side}_ct_{k:02d}"] = rng.integers(1, 40, n_books)
    write_dbn(lake.bronze_path(GLBX, "mbp-10", d), b, dataset="GLBX.MDP3", schema="mbp-10", start_ns=0)
    del b
    t = new_records("trades", n_trades)
    t["ts_recv"] = ts(n_trades)
    t["ts_event"] = t["ts_recv"] - 20_000
    t["instrument_id"] = 200
    t["price"] = np.round((6850 + np.cumsum(rng.normal(0, 0.02, n_trades))) * 4).astype(np.int64) * 250_000_000
    t["size"] = rng.integers(1, 20, n_trades)
    t["side"] = rng.choice(np.array([b"A", b"B", b"N"]), n_trades)
    t["flags"] = 128
    write_dbn(lake.bronze_path(GLBX, "trades", d), t, dataset="GLBX.MDP3", schema="trades", start_ns=0)
    write_dbn(OUT / "trades_plain.dbn", t, dataset="GLBX.MDP3", schema="trades", start_ns=0)
    raw = "SPY   251217C00680000"
    od = definition_records([{"instrument_id": 7, "raw_symbol": raw, "instrument_class": "C", "underlying": "SPY",
                              "strike_price": 680_000_000_000, "ts_recv": et_ns(d, 6, 30),
                              "expiration": int(np.datetime64("2025-12-17", "ns").astype(np.int64)),
                              "security_update_action": "A"}])
    write_dbn(lake.bronze_path(OPRA, "definition", d), od, dataset="OPRA.PILLAR", schema="definition", start_ns=0)
    ot = new_records("trades", 1)
    ot["ts_recv"] = et_ns(d, 10, 0)
    ot["instrument_id"] = 7
    ot["price"] = 1_000_000_000
    write_dbn(lake.bronze_path(OPRA, "trades", d), ot, dataset="OPRA.PILLAR", schema="trades", start_ns=0)
    marker.touch()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--books", type=int, default=1_000_000)
    ap.add_argument("--trades", type=int, default=3_000_000)
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args(argv)

    import warnings

    import databento as db
    import structlog

    from spymaster.config import Config
    from spymaster.events import KIND_BOOK, KIND_TRADE
    from spymaster.sources import dbn as dbn_mod
    from spymaster.sources.dbn import file_sha256, read_dbn
    from spymaster.sources.lake import GLBX, Lake
    from spymaster.sources.session import open_session

    warnings.simplefilter("ignore")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    t = time.perf_counter()
    _gen(a.books, a.trades)
    print(f"# data ready in {time.perf_counter() - t:.1f} s under {OUT}", file=sys.stderr)
    lake = Lake.at(OUT)
    d = "2025-12-17"
    files = {"mbp-10 .dbn.zst": lake.bronze_path(GLBX, "mbp-10", dt.date(2025, 12, 17)),
             "trades .dbn.zst": lake.bronze_path(GLBX, "trades", dt.date(2025, 12, 17)),
             "trades .dbn": OUT / "trades_plain.dbn"}
    cfg = Config().replace(**{"io.chunk_records": a.count})
    print(f"count={a.count}  (M records/s, best of {a.repeat})")
    print(f"{'file':18} {'records':>10} {'to_ndarray':>11} {'read_dbn':>9} {'stream':>8} {'sha256 MB/s':>12}")
    for name, p in files.items():
        def plain() -> int:
            return sum(len(x) for x in db.DBNStore.from_file(p).to_ndarray(count=a.count))

        def ours() -> int:
            return sum(len(x) for x in read_dbn(p, count=a.count))

        fns = {"to_ndarray": plain, "read_dbn": ours}
        if name != "trades .dbn":
            kind = KIND_BOOK if name.startswith("mbp") else KIND_TRADE
            si = open_session(lake, d, cfg)
            fns["stream"] = lambda si=si, kind=kind: sum(len(x) for x in si.stream(kind).chunks())
        size = p.stat().st_size

        def hashing() -> int:
            dbn_mod.clear_hash_cache()
            file_sha256(p)
            return size

        fns["sha256"] = hashing
        best = {k: float("inf") for k in fns}
        counts = {}
        for _ in range(a.repeat):  # interleaved, so a busy machine slows every method alike
            for k, fn in fns.items():
                t = time.perf_counter()
                counts[k] = fn()
                best[k] = min(best[k], time.perf_counter() - t)
        n = counts["to_ndarray"]
        assert counts["read_dbn"] == n and counts.get("stream", n) == n
        rate = {k: n / best[k] / 1e6 for k in ("to_ndarray", "read_dbn", "stream") if k in best}
        stream_s = f"{rate['stream']:8.2f}" if "stream" in rate else f"{'-':>8}"
        print(f"{name:18} {n:>10,} {rate['to_ndarray']:11.2f} {rate['read_dbn']:9.2f} {stream_s} "
              f"{size / best['sha256'] / 1e6:12.0f}")

if __name__ == "__main__":
    main()
