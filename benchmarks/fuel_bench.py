"""Speed of the fuel engine: apply() throughput and the per-bar-close queries.

Run: ``python benchmarks/fuel_bench.py [--contracts 120] [--events 2000000]``. Prints
option trades/s and events/s of ``FuelEngine.apply`` on an options-only stream and on a mixed
stream (ES MBP-10 / ES trades / option trades), and µs per call of ``levels(t)``,
``features(levels, t)`` (20 levels) and ``volume_near``. Kernels are compiled (and cached)
before timing.
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


def market(n_events: int, n_contracts: int, mix: tuple[float, float, float], seed: int = 0):
    """A synthetic RTH stream: ES random walk, 0DTE calls/puts priced by Black–Scholes at
    S = px_es − 4.0 with a small smile and price noise; kinds drawn with probabilities ``mix``
    (book, ES trade, option)."""
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
    sig = 0.15 + 2.0 * (np.log(K / S)) ** 2
    px = greeks.bs_price_array(S, K, T, sig, cfg.fuel.rate, call)
    px = np.maximum(np.round(px * (1 + rng.normal(0, 0.01, n_op)), 2), 0.01)
    opts = make_options(ts[is_op], c, K, call, px, rng.integers(1, 30, n_op), 0, 1)
    pos = np.zeros(n_events, np.int64)
    pos[is_tr] = np.arange(n_tr)
    pos[is_op] = np.arange(n_op)
    pos[kind == KIND_BOOK] = np.arange(n_bk) % 1024
    books = np.zeros(1024, dtype=BOOK)   # the fuel kernel never reads book records
    return cfg, sess, EventBatch(kind, pos, ts, trades=trades, books=books, options=opts), n_op


def time_apply(cfg, sess, batch: EventBatch, chunk: int) -> tuple[float, FuelEngine]:
    eng = FuelEngine(cfg, sess)
    t = time.perf_counter()
    for lo in range(0, len(batch), chunk):
        eng.apply(batch, lo, min(len(batch), lo + chunk))
    return time.perf_counter() - t, eng


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--contracts", type=int, default=120)
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--queries", type=int, default=1000)
    a = ap.parse_args()

    # warm-up (numba compile / cache load)
    cfg, sess, small, _ = market(20_000, a.contracts, (0.8, 0.1, 0.1), seed=1)
    _, eng = time_apply(cfg, sess, small, 1000)
    t = int(small.ts[-1]) + 1
    eng.levels(t), eng.features(np.linspace(680, 690, 20), t), eng.volume_near(np.array([685.0]), 2.0)

    for label, mix in (("options only", (0.0, 0.0, 1.0)), ("mixed 80% book / 10% ES / 10% option", (0.8, 0.1, 0.1))):
        cfg, sess, batch, n_op = market(a.events, a.contracts, mix)
        for chunk in (len(batch), 100_000):
            dt_s, eng = time_apply(cfg, sess, batch, chunk)
            print(f"apply [{label}, chunks of {chunk}]: {len(batch) / dt_s / 1e6:.2f} M events/s, "
                  f"{n_op / dt_s / 1e6:.2f} M option trades/s ({len(batch)} events, {dt_s:.3f} s)")
    d = eng.describe()
    print(f"state: {d['n_contracts']} contracts, {d['n_strikes']} strikes, basis {d['basis']:.4f}, "
          f"IV solved {d['iv_solved']}, unsolvable {d['iv_unsolvable']}")

    t_end = int(batch.ts[-1]) + 1
    q_ts = np.linspace(t_end, sess.expiry_ns - 60_000_000_000, a.queries).astype(np.int64)
    levels = eng.spot + eng.basis + np.linspace(-5, 5, 20)
    res = {}
    for name, fn in (("levels(t)", lambda t: eng.levels(int(t))),
                     ("features(20 levels, t)", lambda t: eng.features(levels, int(t))),
                     ("volume_near(20 levels)", lambda t: eng.volume_near(levels, 2.0))):
        t0 = time.perf_counter()
        for t in q_ts:
            res[name] = fn(t)
        print(f"{name}: {(time.perf_counter() - t0) / len(q_ts) * 1e6:.1f} µs per call "
              f"({a.contracts} contracts, {len(q_ts)} calls)")
    lv = res["levels(t)"]
    print(f"levels at the last query: {len(lv.strikes)} strikes, call wall {lv.call_wall}, put wall {lv.put_wall}, "
          f"gamma flip {lv.gamma_flip}")


if __name__ == "__main__":
    main()
