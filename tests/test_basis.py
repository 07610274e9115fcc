"""The causal ES–SPY basis tracker (SPEC §3), driven through FuelEngine."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spymaster.calendar import session_for
from spymaster.config import Config
from spymaster.engines import greeks
from spymaster.engines.basis import median_sorted
from spymaster.engines.fuel import FuelEngine
from spymaster.events import KIND_OPTION, KIND_TRADE, EventBatch, make_options, make_trades

SESSION = session_for("2025-12-17")
T0 = SESSION.rth_open_ns + 3600 * 10**9          # 10:30 ET
SEC = 10**9


def merge(trades: np.ndarray | None = None, options: np.ndarray | None = None) -> EventBatch:
    """Replay order: ts_recv, then ES trades before option trades, then input order."""
    trades = make_trades([], [], [], "N") if trades is None else trades
    options = make_options([], 0, 0.0, 0, 0.0, 0) if options is None else options
    ts = np.concatenate([trades["ts_recv"], options["ts_recv"]])
    kind = np.concatenate([np.full(len(trades), KIND_TRADE, np.uint8), np.full(len(options), KIND_OPTION, np.uint8)])
    pos = np.concatenate([np.arange(len(trades)), np.arange(len(options))]).astype(np.int64)
    o = np.lexsort((pos, kind, ts))
    return EventBatch(kind[o], pos[o], ts[o], trades=trades, options=options)


def run(cfg: Config, batch: EventBatch, chunk: int | None = None) -> FuelEngine:
    eng = FuelEngine(cfg, SESSION)
    step = chunk or max(1, len(batch))
    for lo in range(0, len(batch), step):
        eng.apply(batch, lo, min(len(batch), lo + step))
    return eng


def es(ts, px_spy):
    """ES trades at axis prices px_spy (SPY $) → ES points px·10."""
    return make_trades(np.asarray(ts, np.int64), np.asarray(px_spy, float) * 10.0, 1, "B")


def quote_pairs(times, strikes, spot, cfg, sigma=0.15):
    """For each time, a call and a put trade at every strike priced by Black–Scholes at ``spot``
    (both legs with the T of that time). Contract index: 2·strike_index (call), +1 (put)."""
    ts, con, K, call, px = [], [], [], [], []
    for t in times:
        T = greeks.year_fraction(SESSION.expiry_ns, int(t), cfg.fuel.min_t_seconds)
        for i, k in enumerate(strikes):
            for is_call in (True, False):
                ts.append(t)
                con.append(2 * i + (0 if is_call else 1))
                K.append(k)
                call.append(is_call)
                px.append(greeks.bs_price(spot, k, T, sigma, cfg.fuel.rate, is_call))
    return make_options(ts, con, K, call, px, 1, 0, 1)


def reference_basis(cfg: Config, batch: EventBatch) -> list[float | None]:
    """The SPEC §3 rule computed from scratch at every option trade (np.median, no state reuse)."""
    W = int(round(cfg.basis.parity_window_s * 1e9))
    es_px = None
    legs: dict[tuple[float, bool], tuple[float, int]] = {}
    basis, last = None, None
    out = []
    for k, p, t in zip(batch.kind, batch.pos, batch.ts):
        if k == KIND_TRADE:
            es_px = batch.trades["price"][p] / 1e9 / cfg.instrument.es_spy_ratio
            continue
        o = batch.options[p]
        legs[(float(o["strike"]), bool(o["is_call"]))] = (float(o["price"]), int(t))
        spots = []
        for K in sorted({key[0] for key in legs}):
            c, q = legs.get((K, True)), legs.get((K, False))
            if c and q and c[1] >= t - W and q[1] >= t - W:
                spots.append(c[0] - q[0] + K)
        if es_px is not None and len(spots) >= cfg.basis.parity_min_strikes:
            obs = es_px - float(np.median(spots))
            if basis is None:
                basis = obs
            else:
                alpha = 1.0 - math.exp(-((int(t) - last) / 1e9) / cfg.basis.basis_tau_s)
                basis = basis + alpha * (obs - basis)
            last = int(t)
        out.append(basis)
    return out


def basis_after_each_option(cfg: Config, batch: EventBatch) -> list[float | None]:
    eng = FuelEngine(cfg, SESSION)
    out = []
    for i in range(len(batch)):
        eng.apply(batch, i, i + 1)
        if batch.kind[i] == KIND_OPTION:
            out.append(eng.basis)
    return out


# ------------------------------------------------------------------ tests
def test_basis_recovers_a_known_basis_from_bs_priced_calls_and_puts():
    """With r = 0, put–call parity C − P + K = S holds exactly for BS prices, so every observation
    is px_es − S = b."""
    cfg = Config().replace(**{"fuel.rate": 0.0})
    b, px_es = 4.37, 685.25
    batch = merge(es([T0 - SEC], [px_es]),
                  quote_pairs(T0 + np.arange(0, 600, 30) * SEC, [676.0, 679.0, 681.0, 684.0, 690.0], px_es - b, cfg))
    eng = run(cfg, batch)
    assert eng.basis == pytest.approx(b, abs=1e-9)
    assert eng.state()["n_basis_obs"] > 0
    assert eng.spot == pytest.approx(px_es - b, abs=1e-9)


def test_basis_equals_the_spec_rule_recomputed_from_scratch():
    """Random stream (moving ES, the default rate, stale legs, strikes entering and leaving the
    window): after every option trade the tracked basis equals the rule evaluated from scratch."""
    cfg = Config()
    rng = np.random.default_rng(7)
    n_es, n_opt = 300, 900
    t_es = np.sort(T0 + rng.integers(0, 1800 * SEC, n_es))
    px = 685.0 + np.cumsum(rng.normal(0, 0.05, n_es))
    t_op = np.sort(T0 - 30 * SEC + rng.integers(0, 1800 * SEC, n_opt))
    strikes = np.arange(675.0, 696.0)
    ci = rng.integers(0, 2 * len(strikes), n_opt)
    K, call = strikes[ci // 2], ci % 2 == 0
    spot = 681.0 + rng.normal(0, 0.3, n_opt)
    T = greeks.year_fraction_array(SESSION.expiry_ns, t_op, 300.0)
    price = greeks.bs_price_array(spot, K, T, 0.2, cfg.fuel.rate, call) + rng.normal(0, 0.01, n_opt)
    batch = merge(es(t_es, px), make_options(t_op, ci, K, call, price, 5, 0, 1))
    got = basis_after_each_option(cfg, batch)
    want = reference_basis(cfg, batch)
    assert sum(w is None for w in want) > 0 and sum(w is not None for w in want) > 500
    for g_, w in zip(got, want):
        assert (g_ is None) == (w is None)
        if w is not None:
            assert g_ == pytest.approx(w, rel=0, abs=1e-12)
    # the undiscounted parity spot sits K(1 - e^{-rT}) above S: the basis is biased by about that
    T_last = greeks.year_fraction(SESSION.expiry_ns, int(t_op[-1]), 300.0)
    assert abs(got[-1] - (685.0 - 681.0)) < 3.0    # same ballpark (ES moved, noisy prices)
    assert 680 * (1 - math.exp(-cfg.fuel.rate * T_last)) < 0.05


def test_basis_never_uses_a_later_trade():
    """Applying the events before t from a batch whose later ES and option trades were perturbed
    gives the same state as from the unperturbed batch."""
    cfg = Config()
    rng = np.random.default_rng(3)
    t_es = T0 + np.arange(0, 600, 7) * SEC
    px = 685.0 + np.cumsum(rng.normal(0, 0.05, len(t_es)))
    opts = quote_pairs(T0 + np.arange(3, 600, 11) * SEC, [678.0, 680.0, 683.0], 681.0, cfg)
    base = merge(es(t_es, px), opts)
    cut = len(base) // 2
    t_cut = int(base.ts[cut])
    pert_tr, pert_op = base.trades.copy(), base.options.copy()
    later_tr, later_op = pert_tr["ts_recv"] >= t_cut, pert_op["ts_recv"] >= t_cut
    pert_tr["price"][later_tr] += 4_000_000_000 * rng.integers(1, 5, later_tr.sum())
    pert_op["price"][later_op] *= 3.0
    pert_op["size"][later_op] += 100
    first = int(np.searchsorted(base.ts, t_cut))
    perturbed = EventBatch(base.kind, base.pos, base.ts, trades=pert_tr, options=pert_op)
    a, b = FuelEngine(cfg, SESSION), FuelEngine(cfg, SESSION)
    a.apply(base, 0, first)
    b.apply(perturbed, 0, first)
    assert a.basis is not None and a.basis == b.basis
    sa, sb = a.state(), b.state()
    for key, val in sa.items():
        assert np.array_equal(val, sb[key], equal_nan=True) if isinstance(val, np.ndarray) else val == sb[key], key
    assert a.levels(t_cut).items() == b.levels(t_cut).items()
    # and the perturbation does matter once applied
    a.apply(base, first, len(base))
    b.apply(perturbed, first, len(base))
    assert a.basis != b.basis


def _two_leg_batch(cfg, call_ts, put_ts, strikes=(680.0,), es_ts=None):
    """One call and one put per strike; calls at call_ts, puts at put_ts (C = 2.0, P = 1.0)."""
    es_ts = T0 - SEC if es_ts is None else es_ts
    n = len(strikes)
    opts = np.concatenate([
        make_options([call_ts] * n, np.arange(n) * 2, list(strikes), True, 2.0, 1),
        make_options([put_ts] * n, np.arange(n) * 2 + 1, list(strikes), False, 1.0, 1),
    ])
    return merge(es([es_ts], [685.0]), opts)


def test_parity_window_includes_a_leg_exactly_w_old():
    cfg = Config().replace(**{"basis.parity_min_strikes": 1})
    W = int(round(cfg.basis.parity_window_s * 1e9))
    eng = run(cfg, _two_leg_batch(cfg, T0, T0 + W))
    assert eng.basis == pytest.approx(685.0 - (2.0 - 1.0 + 680.0), abs=1e-12)
    eng = run(cfg, _two_leg_batch(cfg, T0, T0 + W + 1))
    assert eng.basis is None and eng.state()["n_basis_obs"] == 0


def test_parity_window_keeps_other_strikes_exactly_w_old():
    """A trade at another strike ages strikes out: a leg older than ts − W leaves, one exactly
    W old stays."""
    cfg = Config().replace(**{"basis.parity_min_strikes": 2})
    W = int(round(cfg.basis.parity_window_s * 1e9))
    legs = [(678.0, T0 - 1, T0 - 1), (680.0, T0, T0 + SEC), (682.0, T0 + W, T0 + W)]
    opts = []
    for i, (K, tc, tp) in enumerate(legs):
        opts += [make_options([tc], 2 * i, K, True, 2.0, 1), make_options([tp], 2 * i + 1, K, False, 1.0, 1)]
    eng = run(cfg, merge(es([T0 - 2 * SEC], [685.0]), np.concatenate(opts)))
    st = eng.state()
    # observations: at 680's put (678 and 680 qualify) and at 682's put (680 and 682; 678 aged out)
    assert st["n_basis_obs"] == 2 and st["last_basis_obs_ns"] == T0 + W


def test_parity_window_current_trade_included():
    """The put arriving completes the strike: its own leg counts for the observation it makes."""
    cfg = Config().replace(**{"basis.parity_min_strikes": 1})
    eng = run(cfg, _two_leg_batch(cfg, T0, T0 + SEC))
    assert eng.state()["n_basis_obs"] == 1
    assert eng.state()["last_basis_obs_ns"] == T0 + SEC


def test_parity_min_strikes_boundary():
    two = (679.0, 681.0)
    cfg2 = Config().replace(**{"basis.parity_min_strikes": 2})
    cfg3 = Config().replace(**{"basis.parity_min_strikes": 3})
    # puts arrive one by one: the second put completes the second strike
    assert run(cfg2, _two_leg_batch(cfg2, T0, T0 + SEC, two)).state()["n_basis_obs"] == 1
    assert run(cfg3, _two_leg_batch(cfg3, T0, T0 + SEC, two)).basis is None
    assert run(cfg3, _two_leg_batch(cfg3, T0, T0 + SEC, two + (683.0,))).state()["n_basis_obs"] == 1


def test_observation_uses_the_median_of_strike_spots():
    """Spots 680+1, 682+1, 690+1 → median 683; even count → mean of the two middle values."""
    cfg = Config().replace(**{"basis.parity_min_strikes": 3})
    eng = run(cfg, _two_leg_batch(cfg, T0, T0 + SEC, (680.0, 682.0, 690.0)))
    assert eng.basis == pytest.approx(685.0 - 683.0, abs=1e-12)
    cfg4 = Config().replace(**{"basis.parity_min_strikes": 4})
    eng = run(cfg4, _two_leg_batch(cfg4, T0, T0 + SEC, (680.0, 682.0, 690.0, 700.0)))
    assert eng.basis == pytest.approx(685.0 - (683.0 + 691.0) / 2, abs=1e-12)
    assert median_sorted(np.array([1.0, 2.0, 4.0, 8.0]), 4) == 3.0
    assert median_sorted(np.array([1.0, 2.0, 4.0]), 3) == 2.0
    assert math.isnan(median_sorted(np.array([]), 0))


def test_no_es_trade_no_observation():
    cfg = Config().replace(**{"basis.parity_min_strikes": 1})
    opts = np.concatenate([make_options([T0], 0, 680.0, True, 2.0, 1), make_options([T0 + SEC], 1, 680.0, False, 1.0, 1),
                           make_options([T0 + 3 * SEC], 0, 680.0, True, 2.5, 1)])
    batch = merge(es([T0 + 2 * SEC], [686.0]), opts)
    eng = FuelEngine(cfg, SESSION)
    eng.apply(batch, 0, 2)          # two option trades, no ES trade yet
    assert eng.basis is None and eng.es_price is None
    eng.apply(batch, 2, 3)          # the ES trade alone makes no observation
    assert eng.basis is None and eng.es_price == 686.0
    eng.apply(batch, 3, 4)
    assert eng.basis == pytest.approx(686.0 - (2.5 - 1.0 + 680.0), abs=1e-12)


def test_es_trade_at_the_same_ts_recv_is_used():
    """ts_recv ≤ the option trade: an ES trade with the same ts_recv (ordered first) counts."""
    cfg = Config().replace(**{"basis.parity_min_strikes": 1})
    trades = es([T0 - SEC, T0 + SEC], [685.0, 690.0])
    batch = merge(trades, np.concatenate([make_options([T0], 0, 680.0, True, 2.0, 1),
                                          make_options([T0 + SEC], 1, 680.0, False, 1.0, 1)]))
    assert list(batch.kind) == [KIND_TRADE, KIND_OPTION, KIND_TRADE, KIND_OPTION]
    assert run(cfg, batch).basis == pytest.approx(690.0 - 681.0, abs=1e-12)


def test_basis_ewma_alpha_from_time_between_observations():
    """obs = 4 at t1, obs = 5.5 at t1 + 60 s: basis = 4 + (1 − e^{−60/300})·1.5; a further
    observation (6) at the same ts has Δt = 0, so α = 0."""
    cfg = Config().replace(**{"basis.parity_min_strikes": 1})
    t1 = T0 + SEC
    opts = np.concatenate([
        make_options([T0], 0, 680.0, True, 2.0, 1), make_options([t1], 1, 680.0, False, 1.0, 1),   # S = 681
        make_options([t1 + 60 * SEC], 0, 680.0, True, 0.5, 1),                                      # S = 679.5
        make_options([t1 + 60 * SEC], 1, 680.0, False, 1.5, 1),                                     # S = 679, α = 0
    ])
    batch = merge(es([T0 - SEC], [685.0]), opts)
    seen = basis_after_each_option(cfg, batch)
    assert seen[0] is None and seen[1] == 4.0
    assert seen[2] == pytest.approx(4.0 + (1 - math.exp(-60.0 / 300.0)) * 1.5, abs=1e-12)
    assert seen[3] == seen[2]


def test_basis_updated_before_the_trade_iv_is_solved():
    """The trade that makes the first observation already gets an IV (S = px_es − new basis)."""
    cfg0 = Config().replace(**{"basis.parity_min_strikes": 1, "fuel.rate": 0.0})
    S, K, b = 681.0, 680.0, 4.0
    T = greeks.year_fraction(SESSION.expiry_ns, T0 + SEC, 300.0)
    c = greeks.bs_price(S, K, T, 0.25, 0.0, True)
    p = greeks.bs_price(S, K, T, 0.25, 0.0, False)
    batch = merge(es([T0], [S + b]), np.concatenate([make_options([T0 + SEC], 0, K, True, c, 1),
                                                     make_options([T0 + SEC], 1, K, False, p, 1)]))
    st = run(cfg0, batch).state()
    assert st["iv_skipped"] == 1 and st["iv_solved"] == 1
    assert math.isnan(st["contract_iv"][0])
    assert st["contract_iv"][1] == pytest.approx(0.25, abs=1e-9)
