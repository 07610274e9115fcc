"""TradeTape and TapeEngine: SPEC §7 tape features (band, window, velocity, sweeps), §10 label path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketbuild import es, feed, feed_until, merge, ns, trades, trades_ns
from spymaster.config import Config
from spymaster.engines.tape import FEATURES, TapeEngine
from spymaster.errors import OrderingError
from spymaster.state.ringbuffer import RetentionError
from spymaster.state.trades import TradeTape, tape_retention_s
from spymaster.vocab import SWEEP_DIRECTIONS

CFG = Config()
L = 500.0
MS = 1_000_000
S = 1_000_000_000


def _tape(tr: np.ndarray, cfg: Config = CFG, **kw) -> TradeTape:
    tape = TradeTape(cfg, **kw)
    feed(tape, merge(tr))
    return tape


def _feat(tr: np.ndarray, t_ns: int, *, levels=(L,), cfg: Config = CFG) -> dict:
    out = TapeEngine(cfg).features(_tape(tr, cfg), np.array(levels, np.float64), t_ns)
    return {k: v.tolist() for k, v in out.items()}


def _sweep(f: dict, i: int = 0) -> tuple[bool, str, float]:
    return f["tape_sweep_detected"][i], SWEEP_DIRECTIONS[f["tape_sweep_direction"][i]], f["tape_sweep_notional"][i]


T = ns(1000)  # decision time used below


# ---------------------------------------------------------------- TradeTape

def test_tape_stores_aggressor_as_plus_minus_one_and_zero():
    tape = _tape(trades([(1, 5000.0, 1, "B"), (2, 5000.0, 2, "A"), (3, 5000.0, 3, "N")]))
    assert tape.live()["side"].tolist() == [1, -1, 0]
    assert tape.count == 3 and tape.last_price() == es(5000.0) and tape.last_ts() == ns(3)


def test_window_is_half_open_and_the_label_path_is_inclusive():
    tape = _tape(trades([(1, 5000.0, 1, "B"), (2, 5000.25, 2, "A"), (3, 5000.5, 3, "B")]))
    assert tape.window(ns(1), ns(3))["size"].tolist() == [1, 2]
    assert tape.path(ns(1), ns(3))["size"].tolist() == [1, 2, 3]
    assert tape.price_at(ns(2)) == es(5000.25) and tape.price_at(ns(0)) is None


def test_retention_covers_label_horizon_and_sweep_lookback():
    assert tape_retention_s(CFG) == max(300.0, 60.0 + 240.0, 10.0) + 1.0
    cfg = CFG.replace(**{"labels.label_horizon_s": 900.0})
    assert TradeTape(cfg).buf.retention_ns == 901 * S


def test_tape_refuses_out_of_order_trades():
    tr = trades([(2, 5000.0, 1, "B"), (1, 5000.0, 1, "B")])
    batch = merge(tr)
    batch.ts[:] = tr["ts_recv"]
    batch.pos[:] = [0, 1]
    with pytest.raises(OrderingError, match="sorted"):
        TradeTape(CFG).apply(batch, 0, 2)


def test_tape_instrument_filter():
    tr = trades([(1, 5000.0, 1, "B"), (2, 5001.0, 2, "B")])
    tr["instrument_id"][1] = 7
    tape = _tape(tr, instrument_id=1)
    assert tape.live()["size"].tolist() == [1]


def test_tape_compaction_is_invisible_to_queries_within_retention():
    rng = np.random.default_rng(3)
    t = np.cumsum(rng.integers(0, 2 * S, 3000)) + ns(0)
    tr = trades_ns(t, 5000.0 + 0.25 * rng.integers(-4, 4, 3000), rng.integers(1, 9, 3000), rng.choice(list("BAN"), 3000))
    small, big = _tape(tr, capacity=4), _tape(tr, capacity=1 << 16)
    assert small.buf.compactions >= 3 and small.buf.capacity < 3000
    latest = int(t[-1])
    for back in (0, 1 * S, 60 * S, 200 * S, 300 * S):
        a, b = small.path(latest - back, latest), big.path(latest - back, latest)
        assert {k: v.tolist() for k, v in a.items()} == {k: v.tolist() for k, v in b.items()}
    eng = TapeEngine(CFG)
    lv = np.array([499.8, 500.0, 500.3])
    fa, fb = eng.features(small, lv, latest + 1), eng.features(big, lv, latest + 1)
    assert all(fa[k].tolist() == fb[k].tolist() for k in FEATURES)
    with pytest.raises(RetentionError):
        small.path(latest - 1000 * S, latest)


# ---------------------------------------------------------------- window, band, volumes, velocity

def test_tape_window_is_t_minus_60s_inclusive_to_t_exclusive():
    tr = trades_ns([T - 60 * S - 1, T - 60 * S, T - 1, T], [5000.0] * 4, [1, 2, 4, 8], "BBBB")
    assert _feat(tr, T)["tape_buy_vol"] == [6]


def test_tape_band_is_inclusive_at_exactly_50_cents():
    tr = trades_ns([T - 5 * S + k for k in range(4)], [5005.0, 4995.0, 5005.25, 4994.75], [1, 2, 4, 8], "BABA")
    f = _feat(tr, T)
    assert (f["tape_buy_vol"], f["tape_sell_vol"]) == ([1], [2])
    # an off-grid level: |500.70 − 500.20| is 0.5 only up to float rounding; the 1e-9 tolerance keeps it in
    tr = trades_ns([T - 5 * S, T - 4 * S], [5007.0, 4997.0], [1, 2], "BA")
    f = _feat(tr, T, levels=(500.2,))
    assert (f["tape_buy_vol"], f["tape_sell_vol"]) == ([1], [2])


def test_unknown_aggressor_is_ignored_and_imbalance_is_signed():
    tr = trades_ns([T - 3 * S, T - 2 * S, T - S], [5000.0] * 3, [30, 10, 500], "BAN")
    f = _feat(tr, T)
    assert (f["tape_buy_vol"], f["tape_sell_vol"], f["tape_imbalance"]) == ([30], [10], [0.5])
    f = _feat(trades_ns([T - S], [5000.0], [5], "N"), T)
    assert f["tape_imbalance"] == [0.0]


def test_velocity_counts_every_trade_of_the_last_10s_per_second():
    tr = trades_ns([T - 10 * S - 1, T - 10 * S, T - 5 * S, T - 1, T], [5000.0, 5100.0, 4900.0, 5000.0, 5000.0],
                   [1] * 5, "BNABB")
    f = _feat(tr, T, levels=(L, 600.0))
    assert f["tape_velocity"] == [0.3, 0.3]


# ---------------------------------------------------------------- sweeps

def _run(t0: int, side: str, legs, gap_ns: int = 10 * MS) -> tuple[list, list, list, str]:
    """A run of trades at t0, t0+gap, …; legs = [(price, size), ...]."""
    ts = [t0 + j * gap_ns for j in range(len(legs))]
    return ts, [p for p, _ in legs], [s for _, s in legs], side * len(legs)


def _tr(*runs) -> np.ndarray:
    ts, px, sz, sd = [], [], [], ""
    for r in runs:
        ts += r[0]
        px += r[1]
        sz += r[2]
        sd += r[3]
    order = np.argsort(np.array(ts), kind="stable")
    return trades_ns(np.array(ts)[order], np.array(px)[order], np.array(sz)[order], [sd[i] for i in order])


LEGS_25M = [(4999.75, 50), (5000.25, 50)]  # (4999.75 + 5000.25) * 50 * 50 = $25,000,000 exactly


def test_sweep_gap_of_exactly_100ms_continues_the_run():
    f = _feat(_tr(_run(T - 30 * S, "B", LEGS_25M, gap_ns=100 * MS)), T)
    assert _sweep(f) == (True, "UP", 25_000_000.0)


def test_sweep_gap_of_100ms_plus_1ns_breaks_the_run():
    f = _feat(_tr(_run(T - 30 * S, "B", LEGS_25M, gap_ns=100 * MS + 1)), T)
    assert _sweep(f) == (False, "NONE", 0.0)


def test_sweep_needs_two_distinct_prices():
    f = _feat(_tr(_run(T - 30 * S, "B", [(5000.0, 60), (5000.0, 60)])), T)
    assert _sweep(f) == (False, "NONE", 0.0)


def test_sweep_notional_boundary_is_inclusive():
    assert _sweep(_feat(_tr(_run(T - 30 * S, "A", LEGS_25M)), T))[0]
    f = _feat(_tr(_run(T - 30 * S, "A", [(4999.75, 50), (5000.25, 49)])), T)
    assert _sweep(f) == (False, "NONE", 0.0)


def test_sell_run_is_a_down_sweep():
    f = _feat(_tr(_run(T - 30 * S, "A", [(5000.25, 40), (5000.0, 40), (4999.75, 40)])), T)
    assert _sweep(f) == (True, "DOWN", (5000.25 + 5000.0 + 4999.75) * 40 * 50)


def test_run_starting_before_the_window_counts_its_whole_notional():
    f = _feat(_tr(_run(T - 60 * S - 50 * MS, "B", LEGS_25M, gap_ns=60 * MS)), T)  # 2nd leg at t−60s+10ms
    assert _sweep(f) == (True, "UP", 25_000_000.0)
    assert f["tape_buy_vol"] == [50]  # the volumes still count the window only
    # an earlier same-side trade more than 100 ms before the run's first leg is not part of it
    one_price = _run(T - 60 * S - 50 * MS, "B", [(5000.0, 60), (5000.0, 60)], gap_ns=60 * MS)
    lone = ([T - 65 * S], [4999.75], [1], "B")
    assert _sweep(_feat(_tr(one_price, lone), T)) == (False, "NONE", 0.0)


def test_run_ending_before_the_window_does_not_count():
    f = _feat(_tr(_run(T - 60 * S - 1 - 50 * MS, "B", LEGS_25M, gap_ns=50 * MS)), T)  # last leg at t−60s−1ns
    assert _sweep(f) == (False, "NONE", 0.0)


def test_run_is_traced_back_at_most_sweep_lookback_before_the_window():
    legs = [(4999.75, 50), (5000.25, 50), (5000.25, 1)]
    tr = _tr(_run(T - 60 * S - 150 * MS, "B", legs, gap_ns=100 * MS))  # legs at −60.15 s, −60.05 s, −59.95 s
    assert _sweep(_feat(tr, T))[0]
    cfg = CFG.replace(**{"tape.sweep_lookback_s": 0.1})  # the first leg is beyond the lookback
    assert _sweep(_feat(tr, T, cfg=cfg)) == (False, "NONE", 0.0)


def test_sweep_tie_goes_to_the_earliest_run():
    buy = _run(T - 30 * S, "B", LEGS_25M)
    sell = _run(T - 20 * S, "A", LEGS_25M[::-1])
    assert _sweep(_feat(_tr(buy, sell), T)) == (True, "UP", 25_000_000.0)
    buy_late = _run(T - 10 * S, "B", LEGS_25M)
    assert _sweep(_feat(_tr(sell, buy_late), T)) == (True, "DOWN", 25_000_000.0)
    tail = _run(T - 5 * S, "A", [(5000.0, 1)])  # the tied runs both end inside the trade sequence
    assert _sweep(_feat(_tr(buy, sell, tail), T)) == (True, "UP", 25_000_000.0)


def test_largest_qualifying_run_wins():
    small = _run(T - 30 * S, "B", LEGS_25M)
    big = _run(T - 20 * S, "A", [(5000.25, 60), (4999.75, 60)])
    assert _sweep(_feat(_tr(small, big), T)) == (True, "DOWN", (5000.25 + 4999.75) * 60 * 50)


def test_out_of_band_and_unknown_side_trades_do_not_break_a_run():
    run = _run(T - 30 * S, "B", LEGS_25M, gap_ns=100 * MS)
    noise = ([T - 30 * S + 50 * MS, T - 30 * S + 60 * MS], [5010.0, 5000.0], [9, 9], "AN")
    assert _sweep(_feat(_tr(run, noise), T)) == (True, "UP", 25_000_000.0)


def test_an_opposite_in_band_trade_breaks_a_run():
    run = _run(T - 30 * S, "B", LEGS_25M, gap_ns=100 * MS)
    other = ([T - 30 * S + 50 * MS], [5000.0], [1], "A")
    assert _sweep(_feat(_tr(run, other), T)) == (False, "NONE", 0.0)


def test_sweep_band_is_per_level():
    run = _run(T - 30 * S, "B", LEGS_25M)
    f = _feat(_tr(run), T, levels=(L, 501.0, 499.5))
    assert f["tape_sweep_detected"] == [True, False, False]  # 499.50: only the 4999.75 leg is in band


def test_sweep_notional_uses_the_configured_multiplier_and_threshold():
    cfg = CFG.replace(**{"tape.sweep_min_notional": 12_500_000.0, "instrument.es_multiplier": 25.0})
    f = _feat(_tr(_run(T - 30 * S, "B", [(4999.75, 50), (5000.25, 50)])), T, cfg=cfg)
    assert _sweep(f) == (True, "UP", 12_500_000.0)


# ---------------------------------------------------------------- engine contract

def _random_trades(seed: int, n: int = 600) -> np.ndarray:
    rng = np.random.default_rng(seed)
    gaps = rng.choice([0, 1 * MS, 40 * MS, 99 * MS, 100 * MS, 101 * MS, 700 * MS, 3 * S], n)
    t = ns(0) + np.cumsum(gaps)
    px = 5000.0 + 0.25 * rng.integers(-5, 6, n)
    size = rng.integers(1, 120, n)
    side = rng.choice(list("BBBAAAN"), n)
    return trades_ns(t, px, size, side)


_LEVELS = np.array([499.5, 500.0, 500.1, 500.25, 500.5])


def _features_along(tape: TradeTape, batch, sizes, times) -> list[dict]:
    eng = TapeEngine(CFG)
    out, lo, k = [], 0, 0
    for t in times:
        hi = int(np.searchsorted(batch.ts, t, side="left"))
        while lo < hi:
            step = max(1, sizes[k % len(sizes)])
            k += 1
            tape.apply(batch, lo, min(hi, lo + step))
            lo = min(hi, lo + step)
        out.append({key: v.tolist() for key, v in eng.features(tape, _LEVELS, t).items()})
    return out


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), sizes=st.lists(st.integers(1, 90), min_size=1, max_size=6))
def test_batch_size_invariance_of_the_tape_features(seed, sizes):
    batch = merge(_random_trades(seed))
    span = int(batch.ts[-1] - batch.ts[0])
    times = [int(batch.ts[0]) + span * k // 5 for k in range(1, 6)] + [int(batch.ts[-1]) + 1]
    ref = _features_along(TradeTape(CFG), batch, [len(batch)], times)
    assert _features_along(TradeTape(CFG), batch, [1], times) == ref
    assert _features_along(TradeTape(CFG), batch, sizes, times) == ref
    assert _features_along(TradeTape(CFG, capacity=2), batch, sizes, times) == ref


def test_no_look_ahead_trades_at_or_after_t_never_change_the_features():
    tr = _random_trades(11, n=1500)
    batch = merge(tr)
    eng = TapeEngine(CFG)
    for frac in (0.3, 0.6, 0.9):
        t = int(batch.ts[int(len(batch) * frac)])  # trades exist exactly at t
        before = TradeTape(CFG)
        feed_until(before, batch, t)
        ref = {k: v.tolist() for k, v in eng.features(before, _LEVELS, t).items()}
        everything = TradeTape(CFG, extra_retention_s=10_000.0)
        feed(everything, batch)
        assert {k: v.tolist() for k, v in eng.features(everything, _LEVELS, t).items()} == ref
        # a perturbed future: a huge buy sweep through every level starting exactly at t
        future = trades_ns([t, t, t + 1], [4995.0, 5000.0, 5005.0], [10_000] * 3, "BBB")
        alt = TradeTape(CFG)
        feed_until(alt, batch, t)
        alt.apply(merge(future), 0, 3)
        assert {k: v.tolist() for k, v in eng.features(alt, _LEVELS, t).items()} == ref


def _tape_reference(tape: TradeTape, levels, t: int, cfg: Config = CFG) -> dict:
    """SPEC §7 tape features computed from the definitions in plain Python."""
    tp = cfg.tape
    w, lb = int(tp.tape_window_s * S), int(tp.sweep_lookback_s * S)
    gap = int(tp.sweep_max_gap_ms * MS)
    rows = tape.window(t - w - lb, t)
    trs = list(zip(rows["ts"].tolist(), rows["price"].tolist(), rows["size"].tolist(), rows["side"].tolist()))
    vel = sum(1 for r in trs if r[0] >= t - int(tp.velocity_window_s * S)) / tp.velocity_window_s
    out = {k: [] for k in ("tape_buy_vol", "tape_sell_vol", "tape_velocity", "tape_sweep_detected",
                           "tape_sweep_direction", "tape_sweep_notional")}
    for lv in levels:
        band = [r for r in trs if abs(r[1] / 1e9 / 10.0 - lv) <= tp.tape_band + 1e-9]
        inw = [r for r in band if r[0] >= t - w]
        out["tape_buy_vol"].append(sum(r[2] for r in inw if r[3] > 0))
        out["tape_sell_vol"].append(sum(r[2] for r in inw if r[3] < 0))
        out["tape_velocity"].append(vel)
        runs, cur = [], []
        for r in (r for r in band if r[3] != 0):
            if cur and (r[3] != cur[-1][3] or r[0] - cur[-1][0] > gap):
                runs.append(cur)
                cur = []
            cur.append(r)
        if cur:
            runs.append(cur)
        best, best_dir = 0.0, SWEEP_DIRECTIONS.index("NONE")
        for run in runs:
            notional = sum(r[1] * r[2] for r in run) / 1e9 * cfg.instrument.es_multiplier
            if run[-1][0] >= t - w and len({r[1] for r in run}) >= 2 and notional >= tp.sweep_min_notional \
                    and notional > best:
                best, best_dir = notional, SWEEP_DIRECTIONS.index("UP" if run[0][3] > 0 else "DOWN")
        out["tape_sweep_detected"].append(best > 0)
        out["tape_sweep_direction"].append(best_dir)
        out["tape_sweep_notional"].append(best)
    return out


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), min_notional=st.sampled_from([25e6, 60e6, 90e6]))
def test_tape_features_match_a_direct_computation_from_the_definitions(seed, min_notional):
    batch = merge(_random_trades(seed, n=900))
    cfg = CFG.replace(**{"tape.sweep_min_notional": min_notional})  # some windows qualify, some not
    eng = TapeEngine(cfg)
    span = int(batch.ts[-1] - batch.ts[0])
    tape, lo = TradeTape(cfg), 0
    for k in range(1, 7):
        t = int(batch.ts[0]) + span * k // 6
        hi = int(np.searchsorted(batch.ts, t, side="left"))
        tape.apply(batch, lo, hi)
        lo = hi
        f = {key: v.tolist() for key, v in eng.features(tape, _LEVELS, t).items()}
        ref = _tape_reference(tape, _LEVELS.tolist(), t, cfg)
        for key, val in ref.items():
            assert f[key] == pytest.approx(val, rel=1e-12), key


def test_tape_agrees_with_the_independent_synth_checker():
    from spymaster.synth import check

    tr = _random_trades(5, n=1200)
    batch = merge(tr)
    tape = TradeTape(CFG)
    eng = TapeEngine(CFG)
    span = int(batch.ts[-1] - batch.ts[0])
    lo = 0
    for k in range(1, 7):
        t = int(batch.ts[0]) + span * k // 6
        hi = int(np.searchsorted(batch.ts, t, side="left"))
        tape.apply(batch, lo, hi)
        lo = hi
        f = eng.features(tape, _LEVELS, t)
        for i, lv in enumerate(_LEVELS.tolist()):
            ref = check.tape(tr, lv, t, CFG)
            assert int(f["tape_buy_vol"][i]) == ref["tape_buy_vol"]
            assert int(f["tape_sell_vol"][i]) == ref["tape_sell_vol"]
            assert f["tape_imbalance"][i] == pytest.approx(ref["tape_imbalance"], rel=1e-12)
            assert bool(f["tape_sweep_detected"][i]) == ref["tape_sweep_detected"]
            assert SWEEP_DIRECTIONS[f["tape_sweep_direction"][i]] == ref["tape_sweep_direction"]
            assert f["tape_sweep_notional"][i] == pytest.approx(ref["tape_sweep_notional"], rel=1e-12)
