"""FuelEngine: aggressor, positions, IV, dealer gamma, walls, GAMMA_FLIP, features (SPEC §5, §8, §9)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq
from scipy.stats import norm

from spymaster.calendar import session_for
from spymaster.config import Config
from spymaster.engines import greeks
from spymaster.engines.fuel import (FLIP_BLOCKS, P_INV_SD, P_OFF, P_WA, FuelEngine, _dealer_parts, argmax_lowest, block_sign,
                                    flip_search)
from spymaster.errors import InputError, OrderingError
from spymaster.events import (BOOK, KIND_BOOK, KIND_CLOCK, KIND_OPTION, KIND_TRADE, EventBatch, make_options,
                              make_trades)
from spymaster.vocab import F_AMPLIFY, F_DAMPEN, F_NEUTRAL

SESSION = session_for("2025-12-17")
T0 = SESSION.rth_open_ns + 3600 * 10**9          # 10:30 ET
SEC = 10**9
TQ = T0 + 500 * SEC                              # query time of the hand-built positions
BASIS, SPOT = 4.0, 681.0                         # px_es 685.0 − basis 4.0
FIRST = 4                                        # contract index of the first leg of positions()


def merge(trades=None, options=None, extra_kinds=()) -> EventBatch:
    """Replay order: ts_recv, then kind (ES trade < book < option < clock), then input order.
    ``extra_kinds``: (ts, kind) of BOOK / CLOCK events the fuel engine must ignore."""
    trades = make_trades([], [], [], "N") if trades is None else trades
    options = make_options([], 0, 0.0, 0, 0.0, 0) if options is None else options
    ex_ts = np.array([e[0] for e in extra_kinds], np.int64)
    ex_kind = np.array([e[1] for e in extra_kinds], np.uint8)
    ts = np.concatenate([trades["ts_recv"], options["ts_recv"], ex_ts])
    kind = np.concatenate([np.full(len(trades), KIND_TRADE, np.uint8), np.full(len(options), KIND_OPTION, np.uint8),
                           ex_kind])
    pos = np.concatenate([np.arange(len(trades)), np.arange(len(options)),
                          np.where(ex_kind == KIND_CLOCK, -1, 0)]).astype(np.int64)
    o = np.lexsort((np.arange(len(ts)), kind, ts))
    return EventBatch(kind[o], pos[o], ts[o], trades=trades, options=options, books=np.zeros(1, dtype=BOOK))


def run(cfg: Config, batch: EventBatch, cuts=None) -> FuelEngine:
    eng = FuelEngine(cfg, SESSION)
    bounds = [0] + sorted(set(c for c in (cuts or []) if 0 < c < len(batch))) + [len(batch)]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        eng.apply(batch, lo, hi)
    return eng


def T_at(t: int, cfg: Config) -> float:
    return max((SESSION.expiry_ns - t) / 1e9, cfg.fuel.min_t_seconds) / (365 * 24 * 3600)


def positions(cfg: Config, legs, sigma=0.27):
    """A batch that fixes the basis at exactly 4.0 (px_es 685; zero-size call/put pairs at 680
    (C − P = 1) and 682 (C − P = −1), both giving S_K = 681), then builds customer positions ``legs`` = [(K, is_call, q, volume)] with
    buy/sell trades (side given) priced by BS at S = 681 and ``sigma`` — calls at T0+200 s, puts at
    T0+400 s, so no further parity observation can form (legs > 120 s apart)."""
    opts = [make_options([T0, T0], [0, 2], [680.0, 682.0], True, [2.0, 1.0], 0),
            make_options([T0 + SEC, T0 + SEC], [1, 3], [680.0, 682.0], False, [1.0, 2.0], 0)]
    for i, (K, is_call, q, vol) in enumerate(legs):
        assert vol >= abs(q) and (vol - q) % 2 == 0
        buy, sell = (vol + q) // 2, (vol - q) // 2
        t = T0 + (200 if is_call else 400) * SEC + i * 10**6
        px = greeks.bs_price(SPOT, K, T_at(t, cfg), sigma, cfg.fuel.rate, is_call)
        for side, size in ((1, buy), (-1, sell)):
            if size:
                opts.append(make_options([t], FIRST + i, K, is_call, px, size, side, 0))
    return merge(make_trades([T0 - SEC], [6850.0], 1, "B"), np.concatenate(opts))


def ref_gamma(S, K, T, s, r):
    d1 = (np.log(S / K) + (r + 0.5 * s * s) * T) / (s * np.sqrt(T))
    return norm.pdf(d1) / (S * s * np.sqrt(T))


def ref_dealer(eng: FuelEngine, S, t, cfg, right=None):
    """−100 Σ q γ(S) over traded contracts (right: None all, True calls, False puts)."""
    st_ = eng.state()
    T = T_at(t, cfg)
    S = np.atleast_1d(np.asarray(S, float))
    tot = np.zeros_like(S)
    for K, c, q, iv, n in zip(st_["contract_strike"], st_["contract_is_call"], st_["contract_q"],
                              st_["contract_iv"], st_["contract_trades"]):
        if n == 0 or q == 0 or (right is not None and bool(c) != right):
            continue
        sig = cfg.fuel.default_iv if math.isnan(iv) else iv
        tot += -100.0 * q * ref_gamma(S, K, T, sig, cfg.fuel.rate)
    return tot


def brute_flip(grid: np.ndarray, prof: np.ndarray, s_now: float) -> float | None:
    """SPEC §8 GAMMA_FLIP from a full profile: drop exact zeros, sign changes between consecutive
    remaining points, linear interpolation, nearest to s_now, lower on ties."""
    keep = prof != 0.0
    x, y = grid[keep], prof[keep]
    roots = [x[i] + (x[i + 1] - x[i]) * y[i] / (y[i] - y[i + 1])
             for i in range(len(x) - 1) if (y[i] < 0) != (y[i + 1] < 0)]
    if not roots:
        return None
    return min(roots, key=lambda r_: (abs(r_ - s_now), r_))


def search(prof, s_now, step=0.05, k_lo=0):
    """flip_search on a given profile (every point pre-filled: no contracts are evaluated)."""
    prof = np.asarray(prof, float)
    r_ = flip_search(k_lo, len(prof), step, s_now, prof.copy(), np.ones(len(prof), np.bool_), 0, 0,
                     np.zeros((3, 0)), 100.0, FLIP_BLOCKS)
    return None if math.isnan(r_) else r_


# ------------------------------------------------------------------ aggressor / positions
def test_tick_rule_aggressor_per_contract():
    """uptick buy, downtick sell, zero tick inherits the contract's previous sign, first trade 0;
    each contract has its own tick history."""
    cfg = Config()
    px_a = [1.00, 1.00, 1.05, 1.05, 1.00, 1.00, 1.10]
    sign_a = [0, 0, 1, 1, -1, -1, 1]
    px_b = [2.00, 1.90, 1.90]
    sign_b = [0, -1, -1]
    ts = T0 + np.arange(len(px_a) + len(px_b)) * SEC
    con = [0] * len(px_a) + [1] * len(px_b)
    sizes = np.arange(1, len(ts) + 1)
    opts = make_options(ts, con, 680.0, [True] * len(px_a) + [False] * len(px_b), px_a + px_b, sizes, 0, 1)
    # interleave the two contracts to show they do not share a tick history
    order = np.array([0, 7, 1, 2, 8, 3, 4, 9, 5, 6])
    opts = opts[order]
    opts["ts_recv"] = T0 + np.arange(len(opts)) * SEC
    eng = run(cfg, merge(None, opts))
    st_ = eng.state()
    want_a = sum(s * z for s, z in zip(sign_a, sizes[:7]))
    want_b = sum(s * z for s, z in zip(sign_b, sizes[7:]))
    assert st_["contract_q"].tolist() == [want_a, want_b]
    assert st_["contract_volume"].tolist() == [int(sizes[:7].sum()), int(sizes[7:].sum())]
    assert st_["contract_last_sign"].tolist() == [1, -1]


def test_side_overrides_the_tick_rule_and_unknown_side_without_tick_rule_is_zero():
    cfg = Config()
    opts = make_options(T0 + np.arange(5) * SEC, 0, 680.0, True, [1.0, 1.1, 1.2, 1.2, 1.0],
                        [10, 20, 30, 40, 50], [0, -1, 0, 0, 1], [1, 1, 1, 0, 1])
    # signs: first 0; side −1; uptick buy (+1); tick_rule 0 and side 0 → 0; side +1
    eng = run(cfg, merge(None, opts))
    assert eng.state()["contract_q"][0] == -20 + 30 + 50
    # a zero tick after an unknown-aggressor trade inherits 0
    opts2 = make_options(T0 + np.arange(3) * SEC, 0, 680.0, True, [1.0, 1.1, 1.1], [1, 2, 4], [0, 0, 0], [1, 0, 1])
    assert run(cfg, merge(None, opts2)).state()["contract_q"][0] == 0


def test_contract_arrays_grow_for_large_dense_indices():
    cfg = Config()
    opts = make_options(T0 + np.arange(3) * SEC, [3, 700, 5000], [680.0, 681.0, 682.0], True, 1.0, [1, 2, 3], 1, 0)
    eng = run(cfg, merge(None, opts), cuts=[1, 2])
    st_ = eng.state()
    assert st_["n_contracts"] == 5001 and st_["n_strikes"] == 3
    assert st_["contract_volume"][[3, 700, 5000]].tolist() == [1, 2, 3]
    assert st_["contract_trades"].sum() == 3
    assert [r["contract"] for r in eng.table()] == [3, 700, 5000]


def test_negative_contract_index_is_refused():
    opts = make_options([T0], -1, 680.0, True, 1.0, 1)
    with pytest.raises(InputError, match="negative contract index"):
        run(Config(), merge(None, opts))


# ------------------------------------------------------------------ IV in the stream
def test_iv_skipped_before_the_basis_and_before_any_es_trade():
    cfg = Config().replace(**{"basis.parity_min_strikes": 1})
    opts = np.concatenate([make_options([T0], 0, 680.0, True, 2.0, 1), make_options([T0 + SEC], 1, 680.0, False, 1.0, 1),
                           make_options([T0 + 3 * SEC], 2, 685.0, True, 0.5, 1)])
    batch = merge(make_trades([T0 + 2 * SEC], [6850.0], 1, "B"), opts)
    eng = FuelEngine(cfg, SESSION)
    eng.apply(batch, 0, 3)   # two option trades (no ES price: no basis), then the ES trade
    st_ = eng.state()
    assert st_["iv_skipped"] == 2 and st_["iv_solved"] == 0 and np.isnan(st_["contract_iv"]).all()
    eng.apply(batch, 3, 4)
    st_ = eng.state()
    assert st_["iv_skipped"] == 2 and st_["iv_solved"] + st_["iv_unsolvable"] == 1
    assert not math.isnan(st_["contract_iv"][2])


def test_iv_is_solved_at_spot_es_minus_basis():
    cfg = Config()
    batch = positions(cfg, [(675.0, True, 10, 10), (683.0, True, 2, 4), (679.0, False, -4, 6)], sigma=0.31)
    eng = run(cfg, batch)
    st_ = eng.state()
    assert eng.basis == 4.0 and eng.spot == SPOT
    for c, K, is_call, t in zip(range(FIRST, FIRST + 3), (675.0, 683.0, 679.0), (True, True, False),
                                st_["contract_last_ts"][FIRST:]):
        price = st_["contract_last_price"][c]
        T = T_at(int(t), cfg)
        f = lambda s: (greeks.bs_price(SPOT, K, T, s, cfg.fuel.rate, is_call) - price)  # noqa: E731
        ref = brentq(f, cfg.fuel.iv_min, cfg.fuel.iv_max, xtol=1e-15)
        assert abs(st_["contract_iv"][c] - ref) <= 1e-10
        assert abs(ref - 0.31) <= 1e-9


def test_unsolvable_iv_keeps_the_last_iv_else_default():
    cfg = Config()
    base = positions(cfg, [(675.0, True, 2, 2)], sigma=0.25)
    t = T0 + 450 * SEC
    extra = [make_options([t], FIRST, 675.0, True, 0.5, 1, 1, 0),      # below intrinsic (6 $): unsolvable
             make_options([t + SEC], 9, 690.0, True, 50.0, 1, 1, 0)]    # above the σ_max price: unsolvable
    batch = merge(base.trades, np.concatenate([base.options] + extra))
    st_ = run(cfg, batch).state()
    assert st_["iv_unsolvable"] == 2
    assert st_["contract_iv"][FIRST] == pytest.approx(0.25, abs=1e-9)
    assert st_["contract_iv"][9] == cfg.fuel.default_iv


def test_contract_without_an_iv_uses_default_iv_in_queries():
    """A position traded before the basis existed has no IV; Γ uses default_iv for it."""
    cfg = Config()
    early = make_options([T0 - 5 * SEC], 9, 684.0, True, 3.0, 300, 1, 0)     # before any ES trade
    base = positions(cfg, [(678.0, False, -40, 40)])
    eng = run(cfg, merge(base.trades, np.concatenate([early, base.options])))
    st_ = eng.state()
    assert math.isnan(st_["contract_iv"][9]) and st_["contract_q"][9] == 300
    S = np.array([676.0, 681.0, 684.0, 688.0])
    want = ref_dealer(eng, S, TQ, cfg)
    np.testing.assert_allclose(eng.gamma_profile(S, TQ)[2], want, rtol=1e-9)
    assert abs(want[2]) > 1000     # the IV-less position dominates at its strike


# ------------------------------------------------------------------ dealer gamma and features
LEGS = [(670.0, False, -500, 700), (675.0, True, 120, 300), (684.0, True, 300, 500), (690.0, True, 400, 600),
        (678.0, False, -60, 80)]


def test_dealer_gamma_profile_matches_the_reference():
    cfg = Config()
    eng = run(cfg, positions(cfg, LEGS))
    S = np.linspace(660.0, 700.0, 81)
    call, put, total = eng.gamma_profile(S, TQ)
    np.testing.assert_allclose(total, ref_dealer(eng, S, TQ, cfg), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(call, ref_dealer(eng, S, TQ, cfg, True), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(put, ref_dealer(eng, S, TQ, cfg, False), rtol=1e-9, atol=1e-9)
    assert np.array_equal(call + put, total)


def test_features_call_put_split_sums_exactly_and_equals_the_profile():
    cfg = Config()
    eng = run(cfg, positions(cfg, LEGS))
    L = np.array([670.0, 674.0, 679.0, 685.0, 688.0, 694.0, 720.0, 900.0]) + BASIS
    f = eng.features(L, TQ)
    assert np.array_equal(f["fuel_call_gamma"] + f["fuel_put_gamma"], f["gamma_exposure"])
    assert np.array_equal(f["fuel_net_dealer_gamma"], f["gamma_exposure"])
    c, p, tot = eng.gamma_profile(L - BASIS, TQ)
    assert np.array_equal(tot, f["gamma_exposure"]) and np.array_equal(c, f["fuel_call_gamma"])
    np.testing.assert_allclose(f["gamma_exposure"], ref_dealer(eng, L - BASIS, TQ, cfg), rtol=1e-9, atol=1e-9)
    assert f["gamma_exposure"][-1] == 0.0   # γ underflows far from every strike


def test_fuel_effect_thresholds_are_strict():
    cfg = Config()
    legs = [(670.0, False, -2000, 2000), (690.0, True, 2000, 2000)]
    eng = run(cfg, positions(cfg, legs))
    L = np.array([670.0, 690.0, 900.0]) + BASIS
    g = eng.features(L, TQ)["gamma_exposure"]
    assert g[0] > 10_000 and g[1] < -10_000 and g[2] == 0.0
    assert eng.features(L, TQ)["fuel_effect"].tolist() == [F_DAMPEN, F_AMPLIFY, F_NEUTRAL]
    at_pos = run(cfg.replace(**{"fuel.gamma_threshold": float(g[0])}), positions(cfg, legs))
    at_neg = run(cfg.replace(**{"fuel.gamma_threshold": float(-g[1])}), positions(cfg, legs))
    assert at_pos.features(L[:1], TQ)["fuel_effect"][0] == F_NEUTRAL
    assert at_neg.features(L[1:2], TQ)["fuel_effect"][0] == F_NEUTRAL


def test_features_before_the_basis_is_known():
    cfg = Config()
    opts = make_options(T0 + np.arange(4) * SEC, [0, 1, 2, 3], [680.0, 680.0, 685.0, 690.0], [1, 0, 1, 0],
                        [2.0, 1.0, 0.5, 9.0], 300, 1, 0)
    eng = run(cfg, merge(None, opts))          # no ES trade: the basis never forms
    assert eng.basis is None and eng.spot is None
    L = np.array([680.0, 684.0, 690.0])
    f = eng.features(L, T0 + 10 * SEC)
    for k in ("gamma_exposure", "fuel_net_dealer_gamma", "fuel_call_gamma", "fuel_put_gamma"):
        assert f[k].tolist() == [0.0, 0.0, 0.0]
    assert f["fuel_effect"].tolist() == [F_NEUTRAL] * 3
    assert eng.volume_near(L, 2.0).tolist() == [0, 0, 0]
    lv = eng.levels(T0 + 10 * SEC)
    assert lv.items() == [] and lv.basis is None and len(lv.strikes) == 0
    assert eng.gamma_profile(L, T0 + 10 * SEC)[2].tolist() == [0.0, 0.0, 0.0]


def test_queries_refuse_a_time_not_after_every_applied_event():
    cfg = Config()
    batch = positions(cfg, LEGS)
    eng = run(cfg, batch)
    last = int(batch.ts[-1])
    for q in (lambda t: eng.levels(t), lambda t: eng.features(np.array([680.0]), t)):
        with pytest.raises(OrderingError):
            q(last)
        q(last + 1)


# ------------------------------------------------------------------ option levels
def test_strike_levels_need_combined_volume_and_sit_at_k_plus_basis():
    cfg = Config()
    legs = [(676.0, True, 60, 60), (676.0, False, 40, 40),     # 100 combined: a STRIKE
            (677.0, True, 99, 99),                              # 99: not yet
            (690.0, False, 0, 150)]
    eng = run(cfg, positions(cfg, legs))
    lv = eng.levels(TQ)
    assert lv.strikes.tolist() == [676.0, 690.0]
    assert lv.strike_prices.tolist() == [680.0, 694.0]
    ids = [i[1] for i in lv.items() if i[0] == "STRIKE"]
    assert ids == ["STRIKE@676.00", "STRIKE@690.00"]


def test_call_and_put_walls_are_the_largest_gamma_concentration():
    cfg = Config()
    eng = run(cfg, positions(cfg, LEGS))
    lv = eng.levels(TQ)
    T = T_at(TQ, cfg)
    st_ = eng.state()
    conc = {}
    for K, c, vol, iv in zip(st_["contract_strike"], st_["contract_is_call"], st_["contract_volume"], st_["contract_iv"]):
        if vol > 0:
            conc[(bool(c), K)] = conc.get((bool(c), K), 0.0) + 100 * vol * ref_gamma(SPOT, K, T, iv, cfg.fuel.rate)
    want_call = max((k for k in conc if k[0]), key=lambda k: (conc[k], -k[1]))[1]
    want_put = max((k for k in conc if not k[0]), key=lambda k: (conc[k], -k[1]))[1]
    assert (lv.call_wall, lv.put_wall) == (want_call, want_put)
    assert lv.call_wall_price == want_call + BASIS and lv.put_wall_price == want_put + BASIS
    tab = eng.strike_table(TQ)
    i = int(np.argmax(tab["call_concentration"]))
    assert tab["strike"][i] == want_call
    assert tab["call_concentration"][i] == pytest.approx(conc[(True, want_call)], rel=1e-9)


def test_walls_need_that_sides_volume():
    cfg = Config()
    below = [(684.0, True, 0, 498), (670.0, False, 0, 500)]           # calls 498, puts 500
    lv = run(cfg, positions(cfg, below)).levels(TQ)
    assert lv.call_wall is None and lv.put_wall == 670.0
    at = [(684.0, True, 0, 500), (670.0, False, 0, 498)]
    lv = run(cfg, positions(cfg, at)).levels(TQ)
    assert lv.call_wall == 684.0 and lv.put_wall is None
    names = [i[0] for i in lv.items()]
    assert "CALL_WALL" in names and "PUT_WALL" not in names


def test_wall_lowest_strike_on_ties():
    keys = np.array([690.0, 680.0, 685.0, 675.0])
    vals = np.array([3.0, 5.0, 5.0, 1.0])
    assert argmax_lowest(vals, keys, np.ones(4, np.bool_)) == 1
    vals = np.array([5.0, 5.0, 5.0, 5.0])
    assert argmax_lowest(vals, keys, np.ones(4, np.bool_)) == 3
    assert argmax_lowest(vals, keys, np.array([True, True, True, False])) == 1
    assert argmax_lowest(np.zeros(4), keys, np.ones(4, np.bool_)) == -1   # no positive concentration


# ------------------------------------------------------------------ GAMMA_FLIP
def test_gamma_flip_is_the_zero_crossing_of_the_dealer_profile():
    cfg = Config()
    legs = [(670.0, False, -500, 500), (690.0, True, 500, 500)]   # dealer long γ low, short γ high
    eng = run(cfg, positions(cfg, legs))
    lv = eng.levels(TQ)
    grid = eng.flip_grid(TQ)
    prof = eng.gamma_profile(grid, TQ)[2]
    assert lv.gamma_flip == brute_flip(grid, prof, SPOT)
    assert lv.gamma_flip_price == lv.gamma_flip + BASIS
    true_root = brentq(lambda s: ref_dealer(eng, s, TQ, cfg)[0], 671.0, 689.0, xtol=1e-12)
    assert abs(lv.gamma_flip - true_root) < 0.05
    assert ref_dealer(eng, lv.gamma_flip - 0.05, TQ, cfg)[0] > 0 > ref_dealer(eng, lv.gamma_flip + 0.05, TQ, cfg)[0]


def test_gamma_flip_grid_is_the_step_multiples_within_the_band():
    cfg = Config()
    eng = run(cfg, positions(cfg, LEGS))
    grid = eng.flip_grid(TQ)
    lo, hi = SPOT * (1 - 0.03), SPOT * (1 + 0.03)
    assert grid[0] >= lo - 1e-9 and grid[0] - 0.05 < lo - 1e-9
    assert grid[-1] <= hi + 1e-9 and grid[-1] + 0.05 > hi + 1e-9
    assert np.allclose(np.round(grid / 0.05), grid / 0.05, atol=1e-9, rtol=0)
    assert np.allclose(np.diff(grid), 0.05)


def test_gamma_flip_grid_band_edges_are_inclusive():
    """S_now = 505 exactly: 489.85 and 520.15 (exactly ±3 %) are on the grid — the upper one only
    thanks to the 1e-9 tolerance (520.15 / 0.05 rounds below 10403 in float64)."""
    cfg = Config().replace(**{"basis.parity_min_strikes": 1})
    opts = np.concatenate([make_options([T0], 0, 503.0, True, 2.5, 0), make_options([T0 + SEC], 1, 503.0, False, 0.5, 0)])
    eng = run(cfg, merge(make_trades([T0 - SEC], [5090.0], 1, "B"), opts))
    assert eng.basis == 4.0 and eng.spot == 505.0
    grid = eng.flip_grid(T0 + 2 * SEC)
    assert len(grid) == 607
    assert grid[0] == pytest.approx(489.85, abs=1e-9) and grid[-1] == pytest.approx(520.15, abs=1e-9)


def test_gamma_flip_none_without_a_sign_change():
    cfg = Config()
    lv = run(cfg, positions(cfg, [(675.0, True, 100, 100), (686.0, False, 300, 300)])).levels(TQ)
    assert lv.gamma_flip is None and "GAMMA_FLIP" not in [i[0] for i in lv.items()]
    assert search([1.0, 2.0, 0.0, 3.0], 0.1) is None
    assert search([0.0, 0.0, 0.0], 0.05) is None
    assert search([-1.0], 0.0) is None


def test_gamma_flip_drops_exact_zeros():
    # the zeros between −1 and +2 are not roots; the root lies between the remaining neighbours
    r_ = search([-1.0, 0.0, 0.0, 2.0], 0.05, step=0.5)
    assert r_ == pytest.approx(0.0 + 1.5 * 1 / 3)
    # a zero at spot itself: the straddling remaining points are used
    assert search([-2.0, 0.0, 2.0], 0.5, step=0.5) == pytest.approx(0.5)


def test_gamma_flip_nearest_root_and_lower_on_ties():
    # roots at 0.25 and 1.75 (step 0.5 is exact in binary): spot 1.0 is equidistant → the lower
    prof = [1.0, -1.0, -1.0, -1.0, 1.0]
    assert search(prof, 1.0, step=0.5) == 0.25
    assert search(prof, 1.01, step=0.5) == 1.75
    assert search(prof, 0.99, step=0.5) == 0.25
    # several roots on one side: the nearest
    assert search([1.0, -1.0, 1.0, -1.0, -1.0, -1.0], 2.5, step=0.5) == 1.25   # of 0.25, 0.75, 1.25
    assert search([1.0, -1.0, 1.0, -1.0, -1.0, -1.0], 0.0, step=0.5) == 0.25
    # grid offset (k_lo) shifts the prices
    assert search(prof, 101.0, step=0.5, k_lo=200) == 100.25


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([-3.0, -1.0, -0.5, 0.0, 0.0, 0.5, 1.0, 2.0]), min_size=0, max_size=40),
       st.floats(-1.0, 3.0))
def test_gamma_flip_search_equals_the_rule_on_the_full_profile(prof, s_frac):
    step = 0.05
    grid = (1000 + np.arange(len(prof))) * step
    s_now = 50.0 + s_frac * len(prof) * step / 2
    assert search(prof, s_now, step=step, k_lo=1000) == brute_flip(grid, np.array(prof), s_now)


def test_gamma_flip_lazy_search_equals_the_rule_on_random_positions():
    cfg = Config()
    rng = np.random.default_rng(11)
    for _ in range(15):
        legs = [(float(K), bool(c), int(q), int(abs(q)) + 2) for K, c, q in
                zip(rng.integers(665, 700, 8), rng.random(8) < 0.5, rng.integers(-400, 400, 8) * 2)]
        eng = run(cfg, positions(cfg, legs, sigma=float(rng.uniform(0.08, 0.6))))
        grid = eng.flip_grid(TQ)
        want = brute_flip(grid, eng.gamma_profile(grid, TQ)[2], SPOT)
        assert eng.levels(TQ).gamma_flip == want


def random_pack(rng, m):
    """A packed contract table (calls first) like ``_prep`` builds: strikes 650–710, σ 0.05–1.2,
    T from a minute to two weeks (in years), signed positions including large and tiny ones."""
    K = rng.uniform(650.0, 710.0, m)
    sig = rng.uniform(0.05, 1.2, m)
    T = float(np.exp(rng.uniform(np.log(60 / 31_536_000), np.log(14 / 365))))
    q = rng.choice([-1.0, 1.0], m) * np.exp(rng.uniform(0.0, 8.0, m))
    inv_sd = 1.0 / (sig * math.sqrt(T))
    pack = np.empty((3, m))
    pack[P_OFF] = (0.04 + 0.5 * sig * sig) * T - np.log(K)
    pack[P_INV_SD] = inv_sd
    pack[P_WA] = q * inv_sd / math.sqrt(2 * math.pi)
    return int(rng.integers(0, m + 1)), pack


def test_a_block_sign_proof_holds_at_every_grid_point():
    """Where block_sign proves a sign, the computed Γ has it (nonzero) at every point of the block."""
    rng = np.random.default_rng(5)
    proven = 0
    for _ in range(400):
        m = int(rng.integers(1, 40))
        n_call, pack = random_pack(rng, m)
        k_lo = int(rng.integers(12_000, 14_000))
        p = int(rng.integers(0, 200))
        q = p + int(rng.integers(1, 40))
        sgn = block_sign(p, q, k_lo, 0.05, m, pack, 100.0)
        if sgn == 0:
            continue
        proven += 1
        for i in range(p, q + 1):
            a, b = _dealer_parts((k_lo + i) * 0.05, n_call, m, pack, 100.0)
            assert (a + b > 0.0) if sgn > 0 else (a + b < 0.0)
    assert proven > 100


def test_gamma_flip_block_skipping_gives_the_point_by_point_result():
    """The search with skipped blocks returns exactly what evaluating point by point returns, on
    profiles with no root, one, or many (random positions), and evaluates fewer points."""
    rng = np.random.default_rng(8)
    saved = 0
    for _ in range(300):
        m = int(rng.integers(1, 60))
        n_call, pack = random_pack(rng, m)
        n = int(rng.integers(2, 900))
        k_lo = 13_600 - n // 2
        s_now = float(rng.uniform((k_lo - 5) * 0.05, (k_lo + n + 5) * 0.05))
        runs = []
        for blocks in ([], [32, 8], [3]):
            prof, known = np.zeros(n), np.zeros(n, np.bool_)
            runs.append((flip_search(k_lo, n, 0.05, s_now, prof, known, n_call, m, pack, 100.0, np.array(blocks, np.int64)),
                         int(known.sum())))
        ref = runs[0][0]
        for r_, _ in runs[1:]:
            assert (math.isnan(r_) and math.isnan(ref)) or r_ == ref
        saved += runs[0][1] - runs[1][1]
    assert saved > 0


# ------------------------------------------------------------------ 0DTE volume near a level
def test_volume_near_counts_strikes_within_the_band_inclusive():
    cfg = Config()
    legs = [(500.0, True, 0, 10), (500.0, False, 0, 20), (502.0, True, 0, 40), (503.0, False, 0, 80)]
    eng = run(cfg, positions(cfg, legs))
    # strike 500 sits at 504.0 on the axis; |504 − 506| = 2.0 is inside a $2 band
    assert eng.volume_near(np.array([506.0, 506.001, 504.0, 700.0]), 2.0).tolist() == [30 + 40 + 80, 40 + 80, 30 + 40, 0]


# ------------------------------------------------------------------ batch-size invariance
def _random_stream(seed: int) -> EventBatch:
    cfg = Config()
    rng = np.random.default_rng(seed)
    n_es, n_op = 40, 120
    t_es = np.sort(T0 + rng.integers(0, 240 * SEC, n_es))
    t_es[5:8] = t_es[5]                                          # equal ts_recv
    px = np.round((6850.0 + np.cumsum(rng.normal(0, 0.5, n_es))) * 4) / 4
    t_op = np.sort(T0 + rng.integers(0, 240 * SEC, n_op))
    t_op[10:14] = t_es[5]                                         # ties with ES trades
    strikes = np.array([676.0, 679.0, 680.0, 681.0, 684.0])
    idx = rng.integers(0, 10, n_op)
    contract = np.where(idx == 9, 300, idx)                       # a large contract index
    K, call = strikes[idx // 2], idx % 2 == 0
    T = greeks.year_fraction_array(SESSION.expiry_ns, t_op, 300.0)
    price = np.maximum(greeks.bs_price_array(681.0, K, T, 0.2, cfg.fuel.rate, call) + rng.normal(0, 0.05, n_op), 0.01)
    price[::17] = 0.01                                            # some unsolvable
    opts = make_options(t_op, contract, K, call, np.round(price, 2), rng.integers(1, 200, n_op),
                        rng.choice([-1, 0, 0, 1], n_op), rng.integers(0, 2, n_op))
    extra = [(int(t), KIND_BOOK) for t in np.sort(T0 + rng.integers(0, 240 * SEC, 30))]
    extra += [(int(t), KIND_CLOCK) for t in np.sort(T0 + rng.integers(0, 240 * SEC, 5))]
    return merge(make_trades(t_es, px, 1, "B"), opts, extra)


def _outputs(eng: FuelEngine, t: int):
    lv = eng.levels(t)
    L = np.array([675.0, 680.0, 684.5, 686.0, 690.0])
    f = eng.features(L, t)
    return (eng.state(), lv.items(), lv.spot, {k: v.tolist() for k, v in f.items()},
            eng.volume_near(L, 2.0).tolist(), eng.strike_table(t)["call_concentration"].tolist(), eng.table())


def _same(a, b) -> bool:
    sa, sb = a[0], b[0]
    for k, v in sa.items():
        if isinstance(v, np.ndarray):
            if not np.array_equal(v, sb[k], equal_nan=True):
                return False
        elif v != sb[k] and not (v != v and sb[k] != sb[k]):
            return False
    return a[1:] == b[1:]


STREAMS = {s: _random_stream(s) for s in (1, 2)}


def test_batch_size_invariance_one_event_at_a_time():
    cfg = Config()
    for batch in STREAMS.values():
        t = int(batch.ts[-1]) + 1
        whole = _outputs(run(cfg, batch), t)
        assert whole[0]["basis"] is not None and whole[1]
        assert _same(whole, _outputs(run(cfg, batch, cuts=list(range(len(batch)))), t))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(STREAMS)), st.lists(st.integers(0, 250), max_size=40))
def test_batch_size_invariance_random_chunkings(seed, cuts):
    cfg = Config()
    batch = STREAMS[seed]
    t = int(batch.ts[-1]) + 1
    assert _same(_outputs(run(cfg, batch), t), _outputs(run(cfg, batch, cuts=cuts), t))


def test_chunked_slices_of_a_batch_give_the_same_state():
    """EventBatch.chunks (sliced sequences over the same per-kind arrays) as the replay core feeds them."""
    cfg = Config()
    batch = STREAMS[1]
    t = int(batch.ts[-1]) + 1
    eng = FuelEngine(cfg, SESSION)
    for part in batch.chunks(7):
        eng.apply(part, 0, len(part))
    assert _same(_outputs(run(cfg, batch), t), _outputs(eng, t))
