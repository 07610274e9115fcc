"""Speed of the fuel engine: apply() throughput and the per-bar-close queries.

Run: ``python benchmarks/fuel_bench.py [--contracts 120] [--events 2000000]``. Prints
option trades/s and events/s of ``FuelEngine.apply`` on an option-heavy stream and on a mixed
stream (ES MBP-10 / ES trades / option trades), and µs per call of ``levels(t)``,
``features(levels, t)`` (20 levels) and ``volume_near`` — for the generated positions and for a
worst case with no GAMMA_FLIP in the band (every customer position long, so the whole ±3 % grid
is evaluated). Kernels are compiled (and cached) before timing; each figure is the best of
``--repeat`` runs of the process CPU time (``time.process_time``: robust on a shared machine;
the kernels are single-threaded).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from spymaster.calendar import session_for
from spymaster.config import Config
from spymaster.engines import greeks
from spymaster.engines.fuel import FuelEngine
from spymaster.events import BOOK, KIND_BOOK, KIND_OPTION, KIND_TRADE, EventBatch, make_options, make_trades


def market(n_events: int, n_contracts: int, mix: tuple[float, float, float], seed: int = 0,
           all_buys: bool = False):
    """A synthetic RTH stream: ES random walk, 0DTE calls/puts priced by Black–Scholes at
    S = px_es − 4.0 with a smile and 2 % vol noise, rounded to cents (≥ $0.01); kinds drawn with
    probabilities ``mix`` (book, ES trade, option); aggressors by the tick rule (or all buys)."""
    cfg, sess = Config(), session_for("2025-12-17")
    rng = np.random.default_rng(seed)
    t0 = sess.rth_open_ns
    ts = np.sort(t0 + rng.integers(0, int(6.4 * 3600e9), n_events))
    kind = rng.choice(np.array([KIND_BOOK, KIND_TRADE, KIND_OPTION], np.uint8), size=n_events, p=mix)
    is_tr, is_op = kind == KIND_TRADE, kind == KIND_OPTION
    n_tr, n_op, n_bk = int(is_tr.sum()), int(is_op.sum()), int((kind == KIND_BOOK).sum())
    es = np.round((6850 + np.cumsum(rng.normal(0, 0.1, max(n_tr, 1)))) * 4) / 4
    trades = make_trades(ts[is_tr], es[:n_tr], 1, "B")
    n_strikes = n_contracts // 2
    strikes = 685.0 - n_strikes // 2 + np.arange(n_strikes)
    c = rng.integers(0, 2 * n_strikes, n_op)
    K, call = strikes[c // 2], c % 2 == 0
    # ES price at each option trade (for pricing only)
    idx = np.maximum(np.searchsorted(ts[is_tr], ts[is_op], side="right") - 1, 0)
    S = es[idx] / 10.0 - 4.0
    T = greeks.year_fraction_array(sess.expiry_ns, ts[is_op], cfg.fuel.min_t_seconds)
    sig = (0.15 + 2.0 * (np.log(K / S)) ** 2) * (1 + rng.normal(0, 0.02, n_op))   # smile + noise in vol
    px = np.maximum(np.round(greeks.bs_price_array(S, K, T, sig, cfg.fuel.rate, call), 2), 0.01)
    side, tick = (1, 0) if all_buys else (0, 1)
    opts = make_options(ts[is_op], c, K, call, px, rng.integers(1, 30, n_op), side, tick)
    pos = np.zeros(n_events, np.int64)
    pos[is_tr] = np.arange(n_tr)
    pos[is_op] = np.arange(n_op)
    pos[kind == KIND_BOOK] = np.arange(n_bk) % 1024
    books = np.zeros(1024, dtype=BOOK)   # the fuel kernel never reads book records
    return cfg, sess, EventBatch(kind, pos, ts, trades=trades, books=books, options=opts), n_op


def time_apply(cfg, sess, batch: EventBatch, chunk: int, repeat: int = 1) -> tuple[float, FuelEngine]:
    best, eng = float("inf"), None
    for _ in range(repeat):
        eng = FuelEngine(cfg, sess)
        t = time.process_time()
        for lo in range(0, len(batch), chunk):
            eng.apply(batch, lo, min(len(batch), lo + chunk))
        best = min(best, time.process_time() - t)
    return best, eng


def time_queries(eng: FuelEngine, q_ts: np.ndarray, levels: np.ndarray, repeat: int, label: str) -> None:
    res = {}
    for name, fn in (("levels(t)", lambda t: eng.levels(int(t))),
                     ("features(20 levels, t)", lambda t: eng.features(levels, int(t))),
                     ("volume_near(20 levels)", lambda t: eng.volume_near(levels, 2.0))):
        best = float("inf")
        for _ in range(repeat):
            t0 = time.process_time()
            for t in q_ts:
                res[name] = fn(t)
            best = min(best, (time.process_time() - t0) / len(q_ts))
        print(f"[{label}] {name}: {best * 1e6:.1f} µs CPU per call ({len(q_ts)} calls)")
    lv = res["levels(t)"]
    print(f"[{label}] levels at the last query: {len(lv.strikes)} strikes, call wall {lv.call_wall}, "
          f"put wall {lv.put_wall}, gamma flip {lv.gamma_flip}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--contracts", type=int, default=120)
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()

    # warm-up (numba compile / cache load)
    cfg, sess, small, _ = market(20_000, a.contracts, (0.8, 0.1, 0.1), seed=1)
    _, eng = time_apply(cfg, sess, small, 1000)
    t = int(small.ts[-1]) + 1
    eng.levels(t), eng.features(np.linspace(680, 690, 20), t), eng.volume_near(np.array([685.0]), 2.0)

    for label, mix in (("option-heavy 10% ES / 90% option", (0.0, 0.1, 0.9)),
                       ("mixed 80% book / 10% ES / 10% option", (0.8, 0.1, 0.1))):
        cfg, sess, batch, n_op = market(a.events, a.contracts, mix)
        for chunk in (len(batch), 10_000):
            dt_s, eng = time_apply(cfg, sess, batch, chunk, a.repeat)
            print(f"apply [{label}, chunks of {chunk}]: {len(batch) / dt_s / 1e6:.2f} M events/s, "
                  f"{n_op / dt_s / 1e6:.2f} M option trades/s ({len(batch)} events, {dt_s:.3f} s CPU)")
    d = eng.describe()
    print(f"state: {d['n_contracts']} contracts, {d['n_strikes']} strikes, basis {d['basis']:.4f}, "
          f"IV solved {d['iv_solved']}, unsolvable {d['iv_unsolvable']}")

    t_end = int(batch.ts[-1]) + 1
    q_ts = np.linspace(t_end, sess.expiry_ns - 60_000_000_000, a.queries).astype(np.int64)
    levels = eng.spot + eng.basis + np.linspace(-5, 5, 20)
    time_queries(eng, q_ts, levels, a.repeat, "generated positions")
    cfg, sess, batch, _ = market(200_000, a.contracts, (0.8, 0.1, 0.1), all_buys=True)
    _, eng = time_apply(cfg, sess, batch, len(batch))
    q_ts = np.linspace(int(batch.ts[-1]) + 1, sess.expiry_ns - 60_000_000_000, a.queries).astype(np.int64)
    time_queries(eng, q_ts, eng.spot + eng.basis + np.linspace(-5, 5, 20), a.repeat, "worst case: no flip in the band")


if __name__ == "__main__":
    main()
