"""Speed of the MarketState components and the barrier / tape queries.

Run: ``python benchmarks/state_bench.py [--events 2000000] [--hours 6.5] [--levels 20]``.

Builds a synthetic ES stream (numba, no per-event Python): a 10-level MBP-10 book whose records
each change one level (or shift the whole book by a tick), ~20 % of events trades with random
aggressors near the touch, ~5 % of book records without F_LAST and ~10 % T/F records. Prints:

* events/s of ``BookState.apply`` and ``TradeTape.apply`` fed in 100k-event batches (best of 3,
  by wall clock and by this process's CPU time — the machine may be shared), and fed one event
  per call for a 200k-event slice (the live / debugger path, Python call overhead included);
* µs per ``BarrierEngine.features`` / ``TapeEngine.features`` call (median, best, max) for
  ``--levels`` levels at each 1-minute decision time of the stream (buffers as full as the
  stream makes them);
* the buffers' capacity at the end (memory bounded by the trailing windows).

Kernels are compiled (and cached) before timing.
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

from spymaster.config import Config
from spymaster.engines.barrier import BarrierEngine, level_es_units
from spymaster.engines.tape import TapeEngine
from spymaster.events import BOOK, F_LAST, KIND_BOOK, KIND_TRADE, EventBatch, make_trades
from spymaster.state.book import BookState
from spymaster.state.trades import TradeTape

TICK = 250_000_000  # 0.25 ES points in 1e-9 units


@numba.njit(cache=True)
def _gen_book(n, seed, mid0, bpx, apx, bsz, asz, action, flags, side, price):
    """Fill n MBP-10 records: each changes one level's size or shifts the book one tick."""
    np.random.seed(seed)
    mid = mid0
    sb = np.empty(10, np.int64)
    sa = np.empty(10, np.int64)
    for j in range(10):
        sb[j] = 50 + np.random.randint(0, 200)
        sa[j] = 50 + np.random.randint(0, 200)
    for i in range(n):
        u = np.random.random()
        if u < 0.03:  # shift down: the best bid leaves
            mid -= TICK
            for j in range(9):
                sb[j] = sb[j + 1]
            sb[9] = 50 + np.random.randint(0, 200)
            for j in range(9, 0, -1):
                sa[j] = sa[j - 1]
            sa[0] = 1 + np.random.randint(0, 50)
        elif u < 0.06:  # shift up
            mid += TICK
            for j in range(9):
                sa[j] = sa[j + 1]
            sa[9] = 50 + np.random.randint(0, 200)
            for j in range(9, 0, -1):
                sb[j] = sb[j - 1]
            sb[0] = 1 + np.random.randint(0, 50)
        else:
            j = np.random.randint(0, 10)
            if np.random.random() < 0.5:
                sb[j] = max(1, sb[j] + np.random.randint(-40, 41))
            else:
                sa[j] = max(1, sa[j] + np.random.randint(-40, 41))
        for j in range(10):
            bpx[i, j] = mid - j * TICK
            apx[i, j] = mid + (j + 1) * TICK
            bsz[i, j] = sb[j]
            asz[i, j] = sa[j]
        r = np.random.random()
        action[i] = 84 if r < 0.05 else (70 if r < 0.10 else 77)  # T, F, M
        flags[i] = 0 if np.random.random() < 0.05 else F_LAST
        side[i] = 66
        price[i] = mid


def market(n_events: int, hours: float, seed: int = 0) -> EventBatch:
    rng = np.random.default_rng(seed)
    t0 = 1_765_981_800 * 1_000_000_000
    ts = np.sort(t0 + rng.integers(0, int(hours * 3600e9), n_events)).astype(np.int64)
    kind = np.where(rng.random(n_events) < 0.2, KIND_TRADE, KIND_BOOK).astype(np.uint8)
    is_tr = kind == KIND_TRADE
    n_tr, n_bk = int(is_tr.sum()), int((~is_tr).sum())
    books = np.zeros(n_bk, dtype=BOOK)
    lv = books["levels"]
    bpx, apx = np.zeros((n_bk, 10), np.int64), np.zeros((n_bk, 10), np.int64)
    bsz, asz = np.zeros((n_bk, 10), np.uint32), np.zeros((n_bk, 10), np.uint32)
    action, flags = np.zeros(n_bk, np.uint8), np.zeros(n_bk, np.uint8)
    side, price = np.zeros(n_bk, np.uint8), np.zeros(n_bk, np.int64)
    _gen_book(n_bk, seed, 6850 * 1_000_000_000, bpx, apx, bsz, asz, action, flags, side, price)
    lv["bid_px"], lv["ask_px"], lv["bid_sz"], lv["ask_sz"] = bpx, apx, bsz, asz
    books["action"], books["flags"], books["side"], books["price"] = action, flags, side, price
    books["ts_recv"] = ts[~is_tr]
    # trades at the touch of the book in effect (the previous book record)
    book_idx = np.maximum(np.cumsum(~is_tr) - 1, 0)[is_tr]
    buy = rng.random(n_tr) < 0.5
    tpx = np.where(buy, apx[book_idx, 0], bpx[book_idx, 0]) / 1e9
    trades = make_trades(ts[is_tr], tpx, rng.integers(1, 20, n_tr), np.where(buy, ord("B"), ord("A")).astype(np.uint8))
    pos = np.zeros(n_events, np.int64)
    pos[is_tr] = np.arange(n_tr)
    pos[~is_tr] = np.arange(n_bk)
    return EventBatch(kind, pos, ts, trades=trades, books=books)


def _throughput(make, batch: EventBatch, chunk: int, limit: int | None = None, repeat: int = 3) -> tuple[float, float, object]:
    """Best-of-``repeat`` events/s by wall clock and by this process's CPU time (shared machine)."""
    n = len(batch) if limit is None else min(limit, len(batch))
    best_wall = best_cpu = float("inf")
    comp = None
    for _ in range(repeat):
        comp = make()
        w, c = time.perf_counter(), time.process_time()
        for lo in range(0, n, chunk):
            comp.apply(batch, lo, min(n, lo + chunk))
        best_wall = min(best_wall, time.perf_counter() - w)
        best_cpu = min(best_cpu, time.process_time() - c)
    return n / best_wall, n / best_cpu, comp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--hours", type=float, default=6.5)
    ap.add_argument("--levels", type=int, default=20)
    a = ap.parse_args()
    cfg = Config()
    batch = market(a.events, a.hours)
    small = batch.slice(0, 20_000)
    for make in (lambda: BookState(cfg), lambda: TradeTape(cfg)):  # compile / load the cache
        _throughput(make, small, 1000)
    print(f"stream: {len(batch):,} events over {a.hours} h ({batch.counts()})")
    for name, make in (("BookState", lambda: BookState(cfg)), ("TradeTape", lambda: TradeTape(cfg))):
        wall, cpu, _ = _throughput(make, batch, 100_000)
        print(f"{name}.apply, 100k-event batches: {wall / 1e6:8.2f} M events/s wall, {cpu / 1e6:8.2f} M events/s CPU")
        wall, cpu, _ = _throughput(make, batch, 1, limit=200_000, repeat=1)
        print(f"{name}.apply, 1 event per call:    {wall / 1e6:8.2f} M events/s wall, {cpu / 1e6:8.2f} M events/s CPU")
    book, tape = BookState(cfg), TradeTape(cfg)
    barrier, tape_eng = BarrierEngine(cfg), TapeEngine(cfg)
    rng = np.random.default_rng(1)
    minute = 60 * 1_000_000_000
    t_first = int(batch.ts[0]) + 6 * minute
    times = np.arange(t_first, int(batch.ts[-1]), minute)
    bt, tt = [], []
    lo = 0
    warm = True
    for t in times:
        hi = int(np.searchsorted(batch.ts, t, side="left"))
        book.apply(batch, lo, hi)
        tape.apply(batch, lo, hi)
        lo = hi
        mid = tape.last_price() / 1e9 / cfg.instrument.es_spy_ratio
        levels = np.round(mid + rng.uniform(-1.0, 1.0, a.levels), 2)
        dirs = np.where(levels > mid, 1, -1).astype(np.int8)
        les = level_es_units(levels, cfg.instrument.es_spy_ratio)
        if warm:  # compile / load the cached kernels outside the timing
            barrier.features(book, les, dirs, int(t))
            tape_eng.features(tape, levels, int(t))
            warm = False
        s = time.perf_counter()
        barrier.features(book, les, dirs, int(t))
        bt.append(time.perf_counter() - s)
        s = time.perf_counter()
        tape_eng.features(tape, levels, int(t))
        tt.append(time.perf_counter() - s)
    w0 = int(times[-1]) - 60 * 1_000_000_000
    n_entries = book.entries.index_range(w0, int(times[-1]))
    n_trades = tape.buf.index_range(w0 - 240 * 1_000_000_000, int(times[-1]))
    n_commits = book.commits.index_range(int(times[-1]) - 300 * 1_000_000_000, int(times[-1]))
    print(f"BarrierEngine.features, {a.levels} levels: median {np.median(bt) * 1e6:6.1f} us, "
          f"best {np.min(bt) * 1e6:6.1f} us, max {np.max(bt) * 1e6:7.1f} us "
          f"per call ({len(bt)} calls; at the last one: {n_entries[1] - n_entries[0]} entries in 60 s, "
          f"{n_commits[1] - n_commits[0]} states in 300 s)")
    print(f"TapeEngine.features, {a.levels} levels:    median {np.median(tt) * 1e6:6.1f} us, "
          f"best {np.min(tt) * 1e6:6.1f} us, max {np.max(tt) * 1e6:7.1f} us "
          f"per call (at the last one: {n_trades[1] - n_trades[0]} trades in 300 s)")
    print(f"buffers at the end: commits {book.commits.capacity:,} rows ({book.commits.nbytes() / 1e6:.1f} MB), "
          f"entries {book.entries.capacity:,} rows ({book.entries.nbytes() / 1e6:.1f} MB), "
          f"tape {tape.buf.capacity:,} rows ({tape.buf.nbytes() / 1e6:.1f} MB); "
          f"{book.commit_count:,} commits and {tape.appended:,} trades applied")


if __name__ == "__main__":
    main()
