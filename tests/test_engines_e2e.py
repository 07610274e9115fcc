"""Feature engines end to end (SPEC §7–§9): injected scenarios give their barrier / tape answers in
the Gold rows, and every engine column of a demo day follows its rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import DEMO_DATE
from spymaster.config import Config
from spymaster.pipeline import Pipeline
from spymaster.replay.engine import ReplayEngine
from spymaster.sources.lake import Lake
from spymaster.synth import Consume, Drive, Pull, Refill, Sweep, generate
from spymaster.touches.schema import NULLABLE, table_from_rows

SCENARIOS = [
    Drive(at="10:00", price=6800.0, ramp_s=1800),
    Pull(at="10:14", side="ask", price=6800.0, ticks=4, size=400),
    Consume(at="10:30", side="bid", price=6790.0, size=300),
    Refill(at="11:00", side="ask", price=6810.0),
    Refill(at="11:30", side="bid", price=6800.0, display=600, total=1800),
    Sweep(at="12:00:20", side="buy", price=6800.0, levels=4),
    Sweep(at="12:30:10", side="sell", price=6790.0, levels=3),
]
BARRIER_COLUMNS = ("barrier_state", "barrier_added", "barrier_canceled", "barrier_filled", "barrier_delta_liq",
                   "barrier_replenishment_ratio", "wall_ratio")
TAPE_COLUMNS = ("tape_sweep_detected", "tape_sweep_direction", "tape_sweep_notional")


@pytest.fixture(scope="module")
def scenario_run(tmp_path_factory):
    lake = Lake.at(tmp_path_factory.mktemp("scenarios") / "lake")
    report = generate(lake, [DEMO_DATE], scale="demo", seed=7, scenarios=SCENARIOS)
    cfg = Config().replace(**{"io.lake": str(lake.root), "touch.touch_rearm": "every_bar"})
    rows = Pipeline(cfg).run(DEMO_DATE, write=False).to_pylist()
    return report, rows


def _row(scenario_run, kind: str, k: int = 0) -> tuple[dict, object]:
    report, rows = scenario_run
    ev = [e for e in report.scenario_events if e.kind == kind][k]
    lid = f"ROUND@{ev.price / 10:.2f}"
    (row,) = [r for r in rows if r["ts_event_ns"] == ev.bar_close_ns and r["level_id"] == lid]
    assert row["direction"] == ev.direction
    return row, ev


def _close(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)
    return a == b


def _assert_measured(row: dict, ev, columns) -> None:
    for c in columns:
        assert _close(row[c], ev.measured[c]), (c, row[c], ev.measured[c])


def test_pull_of_the_defending_side_is_vacuum(scenario_run):
    row, ev = _row(scenario_run, "Pull")
    assert row["barrier_state"] == "VACUUM" and row["barrier_canceled"] >= 400 and row["barrier_filled"] == 0
    _assert_measured(row, ev, BARRIER_COLUMNS)


def test_trades_eating_the_defending_level_are_consumed(scenario_run):
    row, ev = _row(scenario_run, "Consume")
    assert row["barrier_state"] == "CONSUMED" and row["barrier_filled"] == 300 and row["barrier_canceled"] == 0
    _assert_measured(row, ev, BARRIER_COLUMNS)


def test_refilling_order_is_absorption_when_small_and_wall_when_large(scenario_run):
    small, ev_small = _row(scenario_run, "Refill", 0)
    assert small["barrier_state"] == "ABSORPTION" and small["barrier_delta_liq"] == 0 and small["barrier_filled"] >= 100
    _assert_measured(small, ev_small, BARRIER_COLUMNS)
    large, ev_large = _row(scenario_run, "Refill", 1)
    assert large["barrier_state"] == "WALL" and large["wall_ratio"] >= 3.0
    _assert_measured(large, ev_large, BARRIER_COLUMNS)


def test_sweep_is_detected_with_its_direction_and_notional(scenario_run):
    up, ev_up = _row(scenario_run, "Sweep", 0)
    assert up["tape_sweep_detected"] and up["tape_sweep_direction"] == "UP" and up["tape_sweep_notional"] >= 25e6
    _assert_measured(up, ev_up, TAPE_COLUMNS)
    down, ev_down = _row(scenario_run, "Sweep", 1)
    assert down["tape_sweep_detected"] and down["tape_sweep_direction"] == "DOWN"
    _assert_measured(down, ev_down, TAPE_COLUMNS)


# ------------------------------------------------------------------ consistency of a whole demo day
@pytest.fixture(scope="module")
def day(demo_config, demo_batches):
    merged, session = demo_batches
    eng = ReplayEngine(demo_config, session)
    eng.feed(merged)
    return table_from_rows(eng.finish()).to_pylist(), merged, demo_config


def test_gamma_exposure_is_the_sum_of_its_call_and_put_parts_and_the_net_dealer_gamma(day):
    rows, _, _ = day
    for r in rows:
        assert r["gamma_exposure"] == r["fuel_call_gamma"] + r["fuel_put_gamma"] == r["fuel_net_dealer_gamma"]


def test_fuel_effect_follows_the_gamma_threshold(day):
    rows, _, cfg = day
    g = cfg.fuel.gamma_threshold
    for r in rows:
        want = "AMPLIFY" if r["gamma_exposure"] < -g else "DAMPEN" if r["gamma_exposure"] > g else "NEUTRAL"
        assert r["fuel_effect"] == want


def test_break_score_raw_is_the_weighted_sum_of_the_components(day):
    rows, _, _ = day
    for r in rows:
        want = 0.45 * r["liquidity_score"] + 0.35 * r["hedge_score"] + 0.20 * r["tape_score"]
        assert r["break_score_raw"] == pytest.approx(want, abs=1e-9)
        assert r["hedge_score"] == pytest.approx(50 - 50 * math.tanh(r["gamma_exposure"] / 10_000), abs=1e-9)


def test_liquidity_score_matches_barrier_state(day):
    rows, _, _ = day
    table = {"VACUUM": 100, "CONSUMED": 75, "WEAK": 65, "NEUTRAL": 50, "ABSORPTION": 25, "WALL": 0}
    for r in rows:
        assert r["liquidity_score"] == table[r["barrier_state"]]


def test_barrier_state_follows_its_first_match_rules(day):
    rows, _, _ = day
    for r in rows:
        dl, rep, can, fil, wr = (r["barrier_delta_liq"], r["barrier_replenishment_ratio"], r["barrier_canceled"],
                                 r["barrier_filled"], r["wall_ratio"])
        if dl <= -100 and can >= fil and rep < 0.3:
            want = "VACUUM"
        elif dl <= -100 and fil > can:
            want = "CONSUMED"
        elif (dl >= 100 and rep > 1.5) or wr >= 3.0:
            want = "WALL"
        elif fil >= 100 and dl >= 0:
            want = "ABSORPTION"
        elif wr < 0.5 or r["depth_in_zone"] == 0:
            want = "WEAK"
        else:
            want = "NEUTRAL"
        assert r["barrier_state"] == want
        assert dl == r["barrier_added"] - can - fil and r["churn"] == r["barrier_added"] + can + fil


def test_tape_score_and_sweep_columns_follow_their_rules(day):
    rows, _, _ = day
    for r in rows:
        d = 1 if r["direction"] == "UP" else -1
        sweep = {"UP": 1, "DOWN": -1, "NONE": 0}[r["tape_sweep_direction"]]
        want = min(100.0, max(0.0, 50 + 25 * d * r["tape_imbalance"] + 25 * d * sweep))
        assert r["tape_score"] == pytest.approx(want, abs=1e-9)
        assert r["tape_sweep_detected"] == (sweep != 0)
        assert (r["tape_sweep_notional"] >= 25e6) if sweep else (r["tape_sweep_notional"] == 0)
        vol = r["tape_buy_vol"] + r["tape_sell_vol"]
        assert r["tape_imbalance"] == pytest.approx((r["tape_buy_vol"] - r["tape_sell_vol"]) / vol if vol else 0.0)


def test_signal_follows_its_rules(day):
    rows, _, _ = day
    for r in rows:
        s, parts = r["break_score_smooth"], (r["liquidity_score"], r["hedge_score"], r["tape_score"])
        want = ("BREAK" if s >= 65 else "REJECT" if s <= 35 else
                "CONTESTED" if max(parts) >= 75 and min(parts) <= 25 else "NEUTRAL")
        assert r["signal"] == want


def test_confidence_follows_its_rule_with_near_level_0dte_volume_from_the_raw_trades(day):
    rows, merged, _ = day
    opt = merged.options
    for r in rows:
        before = opt[opt["ts_recv"] < r["ts_event_ns"]]
        vol = 0
        if r["basis"] is not None:
            near = np.abs(before["strike"] + r["basis"] - r["level_price"]) <= 2.0 + 1e-9
            vol = int(before["size"][near].sum())
        c = (min(1, r["churn"] / 2000) + min(1, (r["tape_buy_vol"] + r["tape_sell_vol"]) / 2000) + min(1, vol / 1000)) / 3
        want = "HIGH" if c >= 0.7 - 1e-9 else "MEDIUM" if c >= 0.4 - 1e-9 else "LOW"
        assert r["confidence"] == want, r["event_id"]


def test_runway_follows_signal_and_distance(day):
    rows, _, _ = day
    for r in rows:
        flip = r["signal"] == "REJECT"
        want_dir = ({"UP": "DOWN", "DOWN": "UP"}[r["direction"]]) if flip else r["direction"]
        assert r["runway_direction"] == want_dir
        if r["runway_next_level_price"] is None:
            assert r["runway_distance"] is None and r["runway_quality"] == "CLEAR"
        else:
            assert r["runway_distance"] == pytest.approx(abs(r["runway_next_level_price"] - r["level_price"]))
            d = 1 if want_dir == "UP" else -1
            assert d * (r["runway_next_level_price"] - r["level_price"]) >= 0.05 - 1e-9
            if r["runway_distance"] < 0.5 - 1e-9:
                assert r["runway_quality"] == "OBSTRUCTED"


def test_engine_columns_are_populated_and_null_only_where_spec_allows(day):
    rows, _, _ = day
    assert rows
    for name in rows[0]:
        nulls = sum(r[name] is None for r in rows)
        if name not in NULLABLE:
            assert nulls == 0, name
    rth_late = [r for r in rows if r["basis"] is not None]
    assert len(rth_late) >= 0.8 * len(rows), "the basis is known for most RTH touches"
    assert any(r["fuel_call_wall"] is not None for r in rows) and any(r["fuel_hvl"] is not None for r in rows)
    assert any(r["gamma_exposure"] != 0 for r in rows)


@pytest.mark.slow
def test_every_barrier_state_and_fuel_effect_occurs_on_a_day_scale_run(tmp_path):
    lake = Lake.at(tmp_path / "lake")
    generate(lake, [DEMO_DATE], scale="day", seed=7)
    rows = Pipeline(Config().replace(**{"io.lake": str(lake.root)})).run(DEMO_DATE, write=False).to_pylist()
    assert {r["barrier_state"] for r in rows} == {"VACUUM", "CONSUMED", "WALL", "ABSORPTION", "WEAK", "NEUTRAL"}
    assert {r["fuel_effect"] for r in rows} == {"AMPLIFY", "DAMPEN", "NEUTRAL"}
