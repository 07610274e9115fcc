"""The order-book kernel: records never depend on how a run is sliced; books stay honest."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from spymaster.calendar import session_for
from spymaster.events import F_LAST, UNDEF_PRICE
from spymaster.synth import book as bk
from spymaster.synth import market
from spymaster.synth.es import _profile, concat, take
from spymaster.synth.generator import SCALES, Scale
from spymaster.synth.rng import seed_state

DAY = session_for("2025-12-17")


def _sim(events=6_000, seed=1, cap=131_072, script=None, vol=1.0):
    paths = market.build_paths(seed, DAY, front_exp=dt.date(2026, 3, 20), next_exp=dt.date(2026, 6, 19), ratio=10.0,
                               vol_scale=vol)
    prof = _profile(paths.weights, paths.var_min, events, 0.25, ls_min=8, ls_max=200)
    sc = np.zeros((0, 7), np.int64) if script is None else script
    return bk.BookSim(instrument_id=7, tick_points=0.25, t0_ns=paths.t0, tend_ns=market.data_end(DAY), profile=prof,
                      fair_points=paths.front, script=sc, rng_state=seed_state(seed, 1, 2), seq_base=100,
                      init_level_size=float(prof.addm[0]), cap_records=cap), paths


def _run(sim, stops):
    books, trades = [], []
    for s in stops:
        b, t = sim.run_until(s)
        books += b
        trades += t
    return concat(books), concat(trades)


def test_records_do_not_depend_on_slicing_or_buffer_size():
    end = DAY.end_ns + 1
    ref_b, ref_t = _run(_sim()[0], [end])
    rng = np.random.default_rng(0)
    stops = np.sort(rng.integers(DAY.start_ns, DAY.end_ns, 40))
    sliced_b, sliced_t = _run(_sim()[0], list(stops) + [end])
    tiny_b, tiny_t = _run(_sim(cap=1_000)[0], [end])   # forces the buffer-full resume path
    assert ref_b.shape[0] > 10_000
    assert ref_b.tobytes() == sliced_b.tobytes() == tiny_b.tobytes()
    assert ref_t.tobytes() == sliced_t.tobytes() == tiny_t.tobytes()


def test_random_streams_differ_per_key_and_repeat_per_key():
    assert (seed_state(7, 1, 2) == seed_state(7, 1, 2)).all()
    assert not (seed_state(7, 1, 2) == seed_state(7, 1, 3)).all()
    a = _run(_sim(seed=1)[0], [DAY.end_ns + 1])[1]
    b = _run(_sim(seed=2)[0], [DAY.end_ns + 1])[1]
    assert a.tobytes() != b.tobytes()


@pytest.mark.parametrize("seed,vol", [(3, 1.0), (4, 2.0)])
def test_the_book_stays_honest_even_when_the_fair_price_outruns_the_flow(seed, vol):
    sim, paths = _sim(events=8_000, seed=seed, vol=vol)
    b, t = _run(sim, [DAY.end_ns + 1])
    last = b[(b["flags"] & F_LAST) != 0]
    lv = last["levels"]
    both = (lv["bid_px"][:, 0] != UNDEF_PRICE) & (lv["ask_px"][:, 0] != UNDEF_PRICE)
    assert (lv["bid_px"][both, 0] < lv["ask_px"][both, 0]).all()
    assert ((lv["bid_sz"] > 0) == (lv["bid_px"] != UNDEF_PRICE)).all()
    assert ((lv["ask_sz"] > 0) == (lv["ask_px"] != UNDEF_PRICE)).all()
    assert (np.diff(b["ts_recv"].astype(np.int64)) >= 0).all()
    assert (np.diff(b["ts_event"].astype(np.int64)) >= 0).all()
    assert (b["ts_recv"] > b["ts_event"]).all()


def test_the_book_follows_the_latent_fair_price_at_demo_activity():
    from spymaster.synth.es import vol_scale

    events = SCALES["demo"].events * 0.92
    sim, paths = _sim(events=events, seed=5, vol=vol_scale(events))
    b, _ = _run(sim, [DAY.end_ns + 1])
    last = b[(b["flags"] & F_LAST) != 0]
    lv = last["levels"]
    mid = (lv["bid_px"][:, 0] + lv["ask_px"][:, 0]) / 2e9
    err = np.abs(mid - paths.at(paths.front, last["ts_recv"]))
    assert np.median(err) < 0.75 and np.percentile(err, 99) < 4.0
    spread = (lv["ask_px"][:, 0] - lv["bid_px"][:, 0]) / 0.25e9
    assert np.median(spread) == 1 and np.percentile(spread, 90) <= 4
    assert ((lv["bid_px"] != UNDEF_PRICE).sum(1) == 10).mean() > 0.95


def test_take_and_concat_match_numpy_on_record_arrays():
    b, _ = _run(_sim(events=2_000)[0], [DAY.end_ns + 1])
    m = (b["flags"] & F_LAST) != 0
    assert take(b, m).tobytes() == b[m].tobytes()
    order = np.argsort(b["price"], kind="stable")
    assert take(b, order).tobytes() == b[order].tobytes()
    assert concat([b[:10], b[10:]]).tobytes() == np.concatenate([b[:10], b[10:]]).tobytes()


def test_scales_are_ordered_and_hit_their_trade_targets_per_event():
    assert SCALES["demo"].es_trades < SCALES["day"].es_trades < SCALES["heavy"].es_trades
    assert Scale("x", 1000, 3000, 10).events > 1000
