"""Scenario hooks: each injected event produces exactly its SPEC §7 pattern in the raw records."""

from __future__ import annotations

import datetime as dt

import databento as db
import numpy as np
import pytest

from spymaster.calendar import NS, session_for
from spymaster.errors import ConfigError
from spymaster.events import BOOK, F_LAST, UNDEF_PRICE, as_books, as_trades
from spymaster.sources.lake import GLBX, Lake
from spymaster.synth import Consume, Drive, Pull, Refill, Sweep, check, generate, parse_scenario
from spymaster.synth.generator import Scale

DAY = dt.date(2025, 12, 17)
SCENARIOS = [
    Drive(at="10:00", price=6800.0, ramp_s=1800),
    Pull(at="10:14", side="ask", price=6800.0, ticks=4, size=400),
    Consume(at="10:30", side="bid", price=6795.0, size=300),
    Refill(at="11:00", side="ask", price=6805.0),
    Refill(at="11:30", side="bid", price=6798.0, display=150, total=450),
    Sweep(at="12:00:20", side="buy", price=6800.0, levels=4),
    Sweep(at="12:30:10", side="sell", levels=3),
]


def _read(lake, schema):
    s = session_for(DAY)
    arrs = [db.DBNStore.from_file(lake.find_bronze(GLBX, schema, u)).to_ndarray() for u in s.utc_days()]
    a = np.concatenate(arrs)
    return as_books(a) if schema == "mbp-10" else as_trades(a)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    lake = Lake.at(tmp_path_factory.mktemp("scen") / "lake")
    rep = generate(lake, [DAY], scale="demo", seed=7, scenarios=SCENARIOS)
    books, trades = _read(lake, "mbp-10"), _read(lake, "trades")
    front = rep.sessions[0].front
    defs = db.DBNStore.from_file(lake.find_bronze(GLBX, "definition", DAY)).to_ndarray()
    fid = next(int(r["instrument_id"]) for r in defs if r["raw_symbol"].decode() == front)
    books = books[books["instrument_id"] == fid]
    trades = trades[trades["instrument_id"] == fid]
    ev = {(e.kind, e.at_ns): e for e in rep.scenario_events}
    return dict(rep=rep, books=books, trades=trades, events=rep.scenario_events, by=ev)


def _event(run, kind, k=0):
    return [e for e in run["events"] if e.kind == kind][k]


def _features(run, e):
    return check.barrier(run["books"], run["trades"], int(round(e.price * 1e9)), 1 if e.direction == "UP" else -1,
                         e.bar_close_ns)


def _touches(run, bar_end, level, band=0.30):
    """The 1-minute bar ending at ``bar_end`` touches ``level`` (SPY axis) within the band."""
    t = run["trades"]
    ts = t["ts_recv"].astype(np.int64)
    m = (ts >= bar_end - 60 * NS) & (ts < bar_end)
    px = t["price"][m] / 1e9 / 10
    return m.any() and px.min() - band <= level <= px.max() + band


def _bar_touches(run, e):
    return _touches(run, e.bar_close_ns, e.level)


def test_drive_steers_the_market_to_the_target_price_by_the_time(run):
    e = _event(run, "Drive")
    assert e.measured["es_fair_at"] == pytest.approx(6800.0, abs=1e-9)
    assert abs(e.measured["es_mid_at"] - 6800.0) <= 1.0
    assert _touches(run, e.at_ns + 60 * NS, 680.0)  # the bar starting then touches ROUND 680.00


def test_pull_is_a_vacuum_built_before_the_window_and_canceled_without_trades(run):
    e = _event(run, "Pull")
    f = _features(run, e)
    assert f["barrier_state"] == "VACUUM"
    assert f["barrier_canceled"] >= 400 and f["barrier_filled"] == 0 and f["barrier_added"] == 0
    assert f["barrier_delta_liq"] <= -400
    assert e.measured["barrier_state"] == "VACUUM"
    b = run["books"]
    ts = b["ts_recv"].astype(np.int64)
    zone = (b["price"] >= 6800 * 10**9) & (b["price"] <= 6800.75 * 10**9) & (b["side"] == ord("A"))
    builds = b[zone & (b["action"] == ord("A")) & (ts < e.window_start_ns) & (ts >= e.window_start_ns - 60 * NS)]
    pulls = b[zone & (b["action"] == ord("C")) & (ts >= e.at_ns) & (ts < e.bar_close_ns)]
    assert int(builds["size"].sum()) >= 400 and int(pulls["size"].sum()) == 400
    t = run["trades"]
    tts = t["ts_recv"].astype(np.int64)
    inwin = (tts >= e.window_start_ns) & (tts < e.bar_close_ns)
    assert not ((t["side"] == ord("B")) & inwin).any(), "no trade hits the pulled ask side"
    assert _bar_touches(run, e)


def test_consume_is_eaten_by_trades_at_the_defending_price(run):
    e = _event(run, "Consume")
    f = _features(run, e)
    assert f["barrier_state"] == "CONSUMED"
    assert f["barrier_filled"] == 300 and f["barrier_canceled"] == 0 and f["barrier_delta_liq"] <= -100
    t = run["trades"]
    ts = t["ts_recv"].astype(np.int64)
    hits = t[(ts >= e.at_ns) & (ts < e.bar_close_ns) & (t["side"] == ord("A"))]
    assert int(hits["size"].sum()) == 300 and (hits["price"] == 6795 * 10**9).all()
    assert _bar_touches(run, e)


def test_refill_absorbs_each_hit_with_a_same_event_refill(run):
    e = _event(run, "Refill", 0)
    f = _features(run, e)
    assert f["barrier_state"] == "ABSORPTION"
    assert f["barrier_filled"] >= 100 and f["barrier_delta_liq"] == 0 and f["wall_ratio"] < 3.0
    b = run["books"]
    ts = b["ts_recv"].astype(np.int64)
    w = (ts >= e.window_start_ns) & (ts < e.bar_close_ns) & (b["price"] == 6805 * 10**9)
    idx = np.nonzero(w & (b["action"] == ord("T")))[0]
    assert idx.size >= 2
    for i in idx:  # T, C (the fill), A (the refill) with the same ts_recv, F_LAST on the refill
        assert bytes(b["action"][i:i + 3]) == b"TCA"
        assert (b["ts_recv"][i:i + 3] == b["ts_recv"][i]).all() and b["size"][i + 1] == b["size"][i + 2]
        assert b["flags"][i + 2] & F_LAST


def test_a_large_refill_display_is_a_wall(run):
    e = _event(run, "Refill", 1)
    f = _features(run, e)
    assert f["barrier_state"] == "WALL" and f["wall_ratio"] >= 3.0
    assert f["barrier_filled"] == 300 and f["barrier_delta_liq"] == 0


def test_sweep_walks_levels_within_100_ms_for_25m_notional(run):
    for k, direction, first_px, levels in ((0, "UP", 6800.0, 4), (1, "DOWN", None, 3)):
        e = _event(run, "Sweep", k)
        tp = check.tape(run["trades"], e.measured["sweep"]["prices"][0] / 10, e.bar_close_ns)
        assert tp["tape_sweep_detected"] and tp["tape_sweep_direction"] == direction
        assert tp["tape_sweep_notional"] >= 25_000_000
        sw = tp["sweep"]
        assert len(sw["prices"]) == levels and sw["last_ts"] - sw["first_ts"] <= 100_000_000
        if first_px is not None:
            assert min(sw["prices"]) == first_px
        assert e.measured["tape_sweep_detected"]


def test_the_report_lists_each_scenario_with_its_times_prices_and_sizes(run):
    kinds = [e.kind for e in run["events"]]
    assert kinds == ["Drive", "Pull", "Consume", "Refill", "Refill", "Sweep", "Sweep"]
    pull = _event(run, "Pull")
    assert pull.bar_close_ns - pull.at_ns == 60 * NS and pull.level == 680.0 and pull.direction == "UP"
    acts = [a.action for a in pull.actions]
    assert acts[0] == "setup" and acts.count("add") == 8 and acts.count("cancel") == 4 and acts[-1] == "release"
    cancels = [a for a in pull.actions if a.action == "cancel"]
    assert [a.price for a in cancels] == [6800.0, 6800.25, 6800.5, 6800.75] and sum(a.size for a in cancels) == 400
    assert all(pull.at_ns <= a.ts_recv < pull.bar_close_ns for a in cancels)
    d = pull.to_dict()
    assert d["at_et"] == "2025-12-17 10:14:00 ET" and d["measured"]["barrier_state"] == "VACUUM"


def test_overlapping_or_out_of_session_scenarios_are_refused(tmp_path):
    tiny = Scale("tiny", 3_000, 9_000, 1_000)
    with pytest.raises(ConfigError, match="overlap"):
        generate(tmp_path / "a", [DAY], scale=tiny, scenarios=[Pull(at="10:14", price=6800.0),
                                                                Consume(at="10:15", side="bid", price=6790.0)])
    with pytest.raises(ConfigError, match="outside the session"):
        generate(tmp_path / "b", [DAY], scale=tiny, scenarios=[Drive(at="17:30", price=6800.0)])
    with pytest.raises(ConfigError, match="tick grid"):
        generate(tmp_path / "c", [DAY], scale=tiny, scenarios=[Pull(at="10:14", price=6800.1)])


def test_scenarios_parse_from_the_cli_form():
    assert parse_scenario("pull:at=10:14,price=6800,side=ask,size=500") == Pull(at="10:14", price=6800.0, side="ask",
                                                                                 size=500)
    assert parse_scenario("sweep:at=12:00:20,side=sell,levels=3") == Sweep(at="12:00:20", side="sell", levels=3)
    with pytest.raises(ConfigError, match="unknown scenario"):
        parse_scenario("wobble:at=10:00")
    with pytest.raises(ConfigError, match="unknown parameter"):
        parse_scenario("pull:at=10:00,colour=red")


# ------------------------------------------------------------------ the checker itself

def _rec(ts, action, side, price, size, bids, asks, last=True):
    r = np.zeros(1, BOOK)
    r["ts_recv"] = ts
    r["action"] = ord(action)
    r["side"] = ord(side)
    r["price"] = int(price * 1e9)
    r["size"] = size
    r["flags"] = F_LAST if last else 0
    lv = r["levels"][0]
    for j in range(10):
        for name, book in (("bid", bids), ("ask", asks)):
            if j < len(book):
                lv[f"{name}_px"][j] = int(book[j][0] * 1e9)
                lv[f"{name}_sz"][j] = book[j][1]
                lv[f"{name}_ct"][j] = 1
            else:
                lv[f"{name}_px"][j] = UNDEF_PRICE
    r["levels"][0] = lv
    return r


def test_checker_attributes_fills_cancels_and_adds_per_spec():
    s = 10**9
    bids = [(6799.75 - 0.25 * j, 10) for j in range(10)]
    a0 = [(6800.0 + 0.25 * j, 50) for j in range(10)]
    a1 = [(6800.0, 30)] + a0[1:]                      # 20 canceled at 6800
    a2 = [(6800.0, 10)] + a0[1:]                      # a 20-lot buy fills
    a3 = [(6800.0, 110)] + a0[1:]                     # 100 added
    books = np.concatenate([
        _rec(1 * s, "A", "A", 6800, 1, bids, a0),
        _rec(61 * s, "C", "A", 6800, 20, bids, a1),
        _rec(62 * s, "T", "B", 6800, 20, bids, a1, last=False),
        _rec(62 * s, "C", "A", 6800, 20, bids, a2),
        _rec(63 * s, "A", "A", 6800, 100, bids, a3),
    ])
    from spymaster.events import make_trades

    trades = make_trades([62 * s], [6800.0], [20], "B")
    f = check.barrier(books, trades, int(6800e9), 1, 64 * s)
    assert (f["barrier_added"], f["barrier_canceled"], f["barrier_filled"]) == (100, 20, 20)
    assert f["barrier_delta_liq"] == 60 and f["depth_in_zone"] == 110 + 50 * 8
    # the window [t − 60 s, t) excludes pairs whose later state is at or before t − 60 s
    g = check.barrier(books, trades, int(6800e9), 1, 122 * s)
    assert (g["barrier_added"], g["barrier_canceled"], g["barrier_filled"]) == (100, 0, 20)
    assert check.barrier(books, trades, int(6800e9), 1, 123 * s)["barrier_added"] == 100
    assert check.barrier(books, trades, int(6800e9), 1, 124 * s)["churn"] == 0
