"""The step-through debugger's controller (spymaster.debug.stepper), views and shell.

The market is a small hand-made lake (:func:`write_small_lake`: 2025-12-17, ESH6 trades and
MBP-10 from 09:20 to 10:50 ET, 0DTE call/put pairs every 4 s) replayed through the real sources,
so the debugger runs exactly the code path ``spymaster debug`` runs. The demo-day versions of the
equality tests live in test_debug_demo.py.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from bronze import D, D_PREV, ESH6, ESZ5, GLBX, OPRA, es_definitions, opra_definitions, px, trades, utc_ns, write
from spymaster.calendar import NS, et_ns, session_for
from spymaster.config import Config
from spymaster.debug import views
from spymaster.debug.shell import HELP, Shell, parse_count
from spymaster.debug.stepper import DebugError, Stepper, parse_break, parse_et_time
from spymaster.pipeline import Pipeline
from spymaster.sources.lake import Lake
from spymaster.sources.session import open_session
from spymaster.synth.dbnfile import new_records
from spymaster.touches.schema import COLUMN_NAMES, FEATURE_COLUMNS, LABEL_COLUMNS

DATE = D.isoformat()


# ---------------------------------------------------------------------------------------- market
def _books(ts: np.ndarray, bid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """MBP-10 records (action Add, F_LAST): 10 levels one tick apart from ``bid`` (ES points), random sizes."""
    n = len(ts)
    a = new_records("mbp-10", n)
    a["ts_recv"] = np.asarray(ts, np.uint64)
    a["ts_event"] = a["ts_recv"] - 1000
    a["instrument_id"] = ESH6
    a["action"] = b"A"
    a["side"] = b"B"
    a["price"] = np.round(bid * 1e9).astype(np.int64)
    a["size"] = 1
    a["flags"] = 128
    for k in range(10):
        a[f"bid_px_{k:02d}"] = np.round((bid - 0.25 * k) * 1e9).astype(np.int64)
        a[f"ask_px_{k:02d}"] = np.round((bid + 0.25 * (k + 1)) * 1e9).astype(np.int64)
        a[f"bid_sz_{k:02d}"] = rng.integers(1, 200, n)
        a[f"ask_sz_{k:02d}"] = rng.integers(1, 200, n)
        a[f"bid_ct_{k:02d}"] = 1
        a[f"ask_ct_{k:02d}"] = 1
    return a


def write_small_lake(lake: Lake, seed: int = 3) -> Lake:
    """A small but complete session: one evening ES trade and book record, a random-walk ES tape
    (~3 trades/s, a book record after each; from 6802, so the pre-market touches ROUND@680.00 in
    a whole-session detection window) from 09:20 to 10:50 ET, and 0DTE call/put pairs priced
    at parity with SPY = ES/10 − 5 every 4 s from 09:35 ET (so the basis, walls and strikes exist)."""
    rng = np.random.default_rng(seed)
    t0, t1 = et_ns(D, 9, 20), et_ns(D, 10, 50)
    ts = t0 + np.cumsum(np.round(rng.exponential(0.3, 40000) * NS).astype(np.int64))
    ts = ts[ts < t1]
    n = ts.size
    steps = rng.choice([-1, 0, 1], n, p=[0.3, 0.4, 0.3])
    es_px = 6802.0 + 0.25 * np.cumsum(steps)
    side = np.where(steps > 0, "B", np.where(steps < 0, "A", rng.choice(["B", "A"], n)))
    bid = np.where(side == "B", es_px - 0.25, es_px)
    defs = [("ESZ5", ESZ5, dt.date(2025, 12, 19)), ("ESH6", ESH6, dt.date(2026, 3, 20))]
    for day in (D_PREV, D):
        write(lake, GLBX, "definition", day, es_definitions([(r, i, e, utc_ns(day, 0, 0, 1)) for r, i, e in defs]))
    evening = et_ns(D_PREV, 18, 0)
    write(lake, GLBX, "trades", D_PREV, trades([evening], [px(6800.0)], 1, "B", ESH6))
    write(lake, GLBX, "mbp-10", D_PREV, _books(np.array([evening + 1000]), np.array([6799.75]), rng))
    write(lake, GLBX, "trades", D, trades(ts, np.round(es_px * 1e9).astype(np.int64), rng.integers(1, 30, n),
                                          list(side), ESH6))
    write(lake, GLBX, "mbp-10", D, _books(ts + 500, bid, rng))
    t_opt = np.arange(et_ns(D, 9, 35), et_ns(D, 10, 45), 4 * NS)
    spot = es_px[np.searchsorted(ts, t_opt) - 1] / 10 - 5.0
    strikes = np.round(spot) + rng.integers(-4, 5, t_opt.size)
    ids: dict[str, int] = {}
    defs_o, recs = [], []
    for t, s, k in zip(t_opt.tolist(), spot.tolist(), strikes.tolist()):
        for j, right in enumerate("CP"):
            raw = f"SPY   {D:%y%m%d}{right}{int(round(k * 1000)):08d}"
            if raw not in ids:
                ids[raw] = 5000 + len(ids)
                defs_o.append({"raw": raw, "iid": ids[raw], "ts": et_ns(D, 6, 30)})
            price = 0.8 + (max(s - k, 0.0) if right == "C" else max(k - s, 0.0))
            recs.append((t + j * 1_000_000, ids[raw], px(round(price, 2)), int(rng.integers(1, 60)),
                         str(rng.choice(["B", "A", "N"]))))
    write(lake, OPRA, "definition", D, opra_definitions(defs_o))
    write(lake, OPRA, "trades", D, trades([r[0] for r in recs], [r[2] for r in recs], [r[3] for r in recs],
                                          [r[4] for r in recs], [r[1] for r in recs]))
    return lake


@pytest.fixture(scope="session")
def small_config(tmp_path_factory) -> Config:
    lake = write_small_lake(Lake.at(tmp_path_factory.mktemp("debug") / "lake"))
    return Config().replace(**{"io.lake": str(lake.root)})


@pytest.fixture(scope="session")
def small_reference(small_config) -> pa.Table:
    """The table replay gives for the small lake (what every debugger run must reproduce)."""
    table, _, _ = Pipeline(small_config).replay(DATE)
    assert table.num_rows > 30
    return table


def rows_by_id(table: pa.Table) -> dict[str, dict]:
    return {r["event_id"]: r for r in table.to_pylist()}


def stepper(config: Config) -> Stepper:
    return Stepper.open(config, DATE)


def _features(row: dict) -> dict:
    return {c: row[c] for c in FEATURE_COLUMNS}


# ---------------------------------------------------------------------------------------- stepping
def test_stepping_a_whole_day_in_mixed_step_sizes_gives_the_replay_table(small_config, small_reference):
    st = stepper(small_config)
    st.add_break("ROUND")
    rng = np.random.default_rng(11)
    moves = 0
    while not st.finished:
        op = int(rng.integers(0, 6))
        if op == 0:
            st.step(int(rng.integers(1, 4)))
        elif op == 1:
            st.step(int(rng.integers(50, 3000)))
        elif op == 2:
            st.until((st.reached_ns or st.session.start_ns) + int(rng.integers(1, 200)) * NS // 3)
        elif op == 3:
            st.next_touch()
        elif op == 4:
            st.cont()
        else:
            st.next_touch("STRIKE")
        moves += 1
    assert moves > 20
    assert st.finish().equals(small_reference)


def test_stepping_one_event_at_a_time_through_bar_closes_gives_the_replay_rows(small_config, small_reference):
    st = stepper(small_config)
    st.until(et_ns(D, 9, 44, 50))
    for _ in range(800):          # single events across the 09:45 bar close and its touches
        st.step(1)
    st.until(et_ns(D, 9, 47, 59))
    for _ in range(400):
        st.step(1)
    assert st.finish().equals(small_reference)


def test_step_applies_exactly_n_events_in_stream_order(small_config):
    inputs = open_session(Pipeline(small_config).lake, D, small_config)
    merged_ts = np.concatenate([b.ts for b in Pipeline.batches(inputs)])
    st = stepper(small_config)
    stop = st.step(1)
    assert (stop.applied, st.applied, len(stop.events)) == (1, 1, 1)
    stop = st.step(7)
    assert (stop.applied, st.applied) == (7, 8)
    assert [e.index for e in stop.events] == list(range(1, 8))
    assert [e.ts_ns for e in stop.events] == merged_ts[1:8].tolist()
    assert st.next_event().index == 8 and st.next_event().ts_ns == int(merged_ts[8])
    assert st.now_ns == int(merged_ts[7]) + 1
    stop = st.step(10_000)
    assert stop.applied == 10_000 and not stop.events and st.last_ts == int(merged_ts[10_007])


def test_step_ignores_breakpoints(small_config, small_reference):
    st = stepper(small_config)
    st.add_break("touch")
    st.add_break("09:40")
    stop = st.step(20_000)
    assert stop.applied == 20_000 and stop.reason == "step"
    assert stop.touches and not stop.hit


def test_until_applies_every_event_before_the_time_and_closes_the_bars_ending_by_then(small_config, small_reference):
    t = sorted(set(small_reference.column("ts_event_ns").to_pylist()))[5]   # a bar close with touches
    st = stepper(small_config)
    stop = st.until(t)
    assert stop.reason == "time"
    assert st.last_ts < t <= st.next_event().ts_ns
    assert st.now_ns == t
    assert st.last_bar.end_ns == t                 # the bar ending at t closed ...
    assert st.engine.bars1.open_bar is None        # ... and no later bar has started
    assert all(r["ts_event_ns"] <= t for r in st.touches)
    assert any(r["ts_event_ns"] == t for r in stop.touches)


def test_until_a_time_already_reached_is_refused(small_config):
    st = stepper(small_config)
    st.until(et_ns(D, 9, 40))
    with pytest.raises(DebugError, match="cannot go back"):
        st.until(et_ns(D, 9, 40))
    with pytest.raises(DebugError, match="cannot go back"):
        st.until(et_ns(D, 9, 30))


def test_time_breakpoint_stops_continue_at_its_time_once(small_config):
    st = stepper(small_config)
    bp = st.add_break("09:50:30")
    stop = st.cont()
    assert stop.reason == "breakpoint" and stop.hit == [bp]
    assert st.now_ns == et_ns(D, 9, 50, 30) and st.last_ts < st.now_ns <= st.next_event().ts_ns
    stop = st.cont()
    assert stop.reason == "end" and st.finished and bp.hits == 1


def test_time_breakpoints_already_passed_do_not_stop(small_config):
    st = stepper(small_config)
    st.until(et_ns(D, 10, 0))
    st.add_break("09:50")
    assert st.cont().reason == "end"


# ---------------------------------------------------------------------------------------- touches
def test_touch_at_the_stop_equals_the_replay_row_except_pending_labels(small_config, small_reference):
    ref = rows_by_id(small_reference)
    st = stepper(small_config)
    seen = []
    while True:
        stop = st.next_touch()
        if not stop.matched:
            assert stop.reason == "end"
            break
        assert stop.reason == "touch"
        bar_end = stop.matched[0]["ts_event_ns"]
        if not st.finished:
            assert st.now_ns == bar_end and st.last_ts < bar_end
        for row in stop.matched:
            assert row["ts_event_ns"] == bar_end
            assert _features(row) == _features(ref[row["event_id"]])
            if not st.finished:   # the label horizon lies ahead: nothing forward-looking is known yet
                assert all(row[c] is None for c in LABEL_COLUMNS)
        seen += [r["event_id"] for r in stop.matched]
    assert sorted(seen) == sorted(ref)
    # after continuing past every label horizon the labels are the replay's too
    for row in st.touches:
        assert row == ref[row["event_id"]]


def test_labels_of_a_touch_resolve_once_time_passes_its_horizon(small_config, small_reference):
    ref = rows_by_id(small_reference)
    st = stepper(small_config)
    st.until(et_ns(D, 9, 55))
    stop = st.next_touch()
    row = st.last_touch()
    assert row is stop.matched[-1]
    horizon = int(small_config.labels.label_horizon_s * NS)
    st.until(row["ts_event_ns"] + horizon)            # the horizon's last instant: still pending
    assert row["label_complete"] is None
    st.until(row["ts_event_ns"] + horizon + 1)        # time has passed t + horizon
    assert row["label_complete"] is True
    assert row == ref[row["event_id"]]


def test_kind_breakpoint_stops_at_every_touch_of_that_kind_and_no_other(small_config, small_reference):
    st = stepper(small_config)
    bp = st.add_break("round")
    stops = []
    while not st.finished:
        stop = st.cont()
        if stop.matched:
            assert stop.hit == [bp]
            assert {r["level_kind"] for r in stop.matched} == {"ROUND"}
            stops += [r["event_id"] for r in stop.matched]
    want = [r["event_id"] for r in small_reference.to_pylist() if r["level_kind"] == "ROUND"]
    assert sorted(stops) == sorted(want) and bp.hits == len(want)


def test_level_breakpoint_stops_at_the_first_touch_of_that_level(small_config, small_reference):
    rows = small_reference.to_pylist()
    lid = next(r["level_id"] for r in rows if r["level_kind"] == "ROUND")
    first = min(r["ts_event_ns"] for r in rows if r["level_id"] == lid)
    st = stepper(small_config)
    st.add_break(lid.replace(".00", "").lower())      # round@680 names ROUND@680.00
    stop = st.cont()
    assert stop.reason == "breakpoint"
    assert [r["level_id"] for r in stop.matched] == [lid] and stop.matched[0]["ts_event_ns"] == first


def test_next_touch_of_a_kind_skips_touches_of_other_kinds(small_config, small_reference):
    rows = small_reference.to_pylist()
    first = min(r["ts_event_ns"] for r in rows if r["level_kind"] == "VWAP")
    st = stepper(small_config)
    stop = st.next_touch("vwap")
    assert stop.reason == "touch" and {r["level_kind"] for r in stop.matched} == {"VWAP"}
    assert stop.matched[0]["ts_event_ns"] == first
    assert any(r["level_kind"] != "VWAP" for r in stop.touches)    # passed over, not stopped at


def test_next_touch_stops_at_an_earlier_breakpoint(small_config):
    st = stepper(small_config)
    bp = st.add_break("09:33")
    stop = st.next_touch("GAMMA_FLIP")
    assert stop.reason == "breakpoint" and stop.hit == [bp] and st.now_ns == et_ns(D, 9, 33)


def test_end_of_data_finishes_the_replay_with_incomplete_labels(small_config, small_reference):
    st = stepper(small_config)
    stop = st.cont()
    assert stop.reason == "end" and stop.at_end and st.finished
    assert st.table.equals(small_reference)
    incomplete = sum(1 for r in small_reference.to_pylist() if r["label_complete"] is False)
    assert incomplete > 0 and st.engine.stats.labels_incomplete == incomplete
    with pytest.raises(DebugError, match="end of data"):
        st.step(1)
    with pytest.raises(DebugError, match="end of data"):
        st.cont()


def test_find_touch_by_number_event_id_and_level_id(small_config):
    st = stepper(small_config)
    st.until(et_ns(D, 10, 0))
    first, last = st.touches[0], st.touches[-1]
    assert st.find_touch("#1") is first and st.find_touch("1") is first and st.find_touch("-1") is last
    assert st.find_touch(last["event_id"]) is last
    lid = first["level_id"]
    assert st.find_touch(lid)["level_id"] == lid
    with pytest.raises(DebugError):
        st.find_touch("#0")
    with pytest.raises(DebugError):
        st.find_touch("NOPE@1")


# ---------------------------------------------------------------------------------------- specs
def test_times_without_a_date_are_et_of_the_session_date_and_evenings_belong_to_the_day_before():
    s = session_for(DATE)
    assert parse_et_time("09:30", s) == et_ns(D, 9, 30)
    assert parse_et_time("9:30:15", s) == et_ns(D, 9, 30, 15)
    assert parse_et_time("10:00:00.25", s) == et_ns(D, 10, 0) + 250_000_000
    assert parse_et_time("17:00", s) == et_ns(D, 17, 0)                # the session's last instant
    assert parse_et_time("17:00:01", s) == et_ns(D_PREV, 17, 0, 1)     # evening → the day before
    assert parse_et_time("18:00", s) == et_ns(D_PREV, 18, 0)
    assert parse_et_time("2025-12-16 20:15:30", s) == et_ns(D_PREV, 20, 15, 30)
    monday = session_for("2025-12-15")
    assert parse_et_time("18:00", monday) == et_ns(dt.date(2025, 12, 14), 18, 0)   # Sunday's Globex open


@pytest.mark.parametrize("text", ["25:00", "10:61", "10", "noon", "2025-12-15 10:00", "2025-12-16 16:59"])
def test_bad_or_out_of_session_times_are_refused(text):
    with pytest.raises(DebugError):
        parse_et_time(text, session_for(DATE))


def test_breakpoint_specs():
    s = session_for(DATE)
    assert parse_break("ROUND", s) == ("kind", "ROUND")
    assert parse_break("pm_high", s) == ("kind", "PM_HIGH")
    assert parse_break("round@680", s) == ("level", "ROUND@680.00")
    assert parse_break("STRIKE@681.5", s) == ("level", "STRIKE@681.50")
    assert parse_break("touch", s) == ("touch", "")
    assert parse_break("10:15", s) == ("time", et_ns(D, 10, 15))
    for bad in ("", "FOO", "VWAP@680", "ROUND@abc"):
        with pytest.raises(DebugError):
            parse_break(bad, s)


def test_setting_the_same_breakpoint_twice_keeps_one_and_delete_removes_it(small_config):
    st = stepper(small_config)
    a = st.add_break("ROUND")
    assert st.add_break("round") is a and len(st.breakpoints) == 1
    b = st.add_break("10:00")
    assert [bp.number for bp in st.delete_break(a.number)] == [a.number]
    assert st.breakpoints == [b]
    with pytest.raises(DebugError):
        st.delete_break(a.number)
    st.delete_break(None)
    assert st.breakpoints == []


# ---------------------------------------------------------------------------------------- views
@pytest.fixture(scope="module")
def at_0945(small_config) -> Stepper:
    st = stepper(small_config)
    st.until(et_ns(D, 9, 45, 30))
    return st


def test_book_view_shows_the_committed_ten_levels_in_es_points_and_spy_dollars(at_0945):
    snap = at_0945.engine.book.current()
    text = views.book_view(at_0945)
    lines = text.splitlines()
    assert "contracts" in text and "points" in text and "SPY $" in text
    for j, b, bs, a, as_ in snap.rows():
        line = next(ln for ln in lines if ln.split()[:1] == [str(j)])
        assert f"{b:.2f}" in line and f"{b / 10:.3f}" in line and f"{a:.2f}" in line and f"{a / 10:.3f}" in line
        assert f"{bs:,}" in line and f"{as_:,}" in line


def test_levels_view_lists_every_testable_level_with_spy_and_es_prices(at_0945):
    snap = at_0945.levels_snapshot()
    assert snap is not None and snap.at_ns == et_ns(D, 9, 45)
    text = views.levels_view(at_0945)
    assert "09:45:00 ET" in text
    for lv in snap.levels:
        line = next(ln for ln in text.splitlines() if ln.split()[:1] == [lv.level_id])
        assert f"{lv.price:.3f}" in line and f"{lv.price * 10:.2f}" in line
    assert "-- last trade" in text


def test_tape_view_lists_the_last_trades_and_the_features_of_nearby_levels(at_0945):
    st = at_0945
    text = views.tape_view(st, 5)
    rows = st.engine.tape.live()
    last_ts, last_px = int(rows["ts"][-1]), int(rows["price"][-1]) / 1e9
    assert views.fmt_clock(last_ts, st.session) in text and f"{last_px:.2f}" in text
    near = [lv for lv in st.levels_now().levels if abs(lv.price - st.last_price()) <= 1.0 + 1e-9]
    assert near
    feats = st.tape_features(np.array([lv.price for lv in near]))
    for j, lv in enumerate(near):
        line = next(ln for ln in text.splitlines() if ln.split()[:1] == [lv.level_id])
        assert f"{int(feats['tape_buy_vol'][j]):,}" in line and f"{float(feats['tape_imbalance'][j]):.3f}" in line


def test_fuel_view_shows_basis_walls_and_per_contract_volume_q_iv(at_0945):
    st = at_0945
    text = views.fuel_view(st, all_contracts=True)
    fs = st.engine.fuel.state()
    assert f"basis {fs['basis']:.4f} SPY $" in text
    lv = st.fuel_levels()
    assert f"CALL_WALL {lv.call_wall:.2f} SPY" in text and f"PUT_WALL {lv.put_wall:.2f} SPY" in text
    for r in st.engine.fuel.table():
        sym = st.contracts[r["contract"]]
        line = next(ln for ln in text.splitlines() if sym in ln)
        assert f"{r['volume']:,}" in line and f"{r['q']:,}" in line and f"{r['iv']:.4f}" in line


def test_bar_view_shows_the_open_bar_and_the_last_closed_one(at_0945):
    st = at_0945
    text = views.bar_view(st)
    assert "last closed 1-min bar 09:44:00–09:45:00 ET" in text
    ob = st.engine.bars1.open_bar
    assert ob.start_ns == et_ns(D, 9, 45) and f"C {ob.close:.3f}" in text and "open 1-min bar" in text


def test_touch_view_lists_every_gold_column_and_pending_labels(at_0945):
    st = at_0945
    row = st.last_touch()
    assert row["label_complete"] is None
    text = views.touch_view(row, st)
    for c in COLUMN_NAMES:
        assert any(ln.split()[:1] == [c] for ln in text.splitlines()), c
    for c in LABEL_COLUMNS:
        line = next(ln for ln in text.splitlines() if ln.split()[:1] == [c])
        assert line.split()[1] == "pending"
    assert "labels pending" in text and row["event_id"] in text


def test_status_names_the_last_and_next_events(at_0945):
    text = views.status(at_0945)
    assert f"{at_0945.applied:,} events applied" in text and "next #" in text


def test_views_read_the_state_without_changing_results(small_config, small_reference):
    st = stepper(small_config)
    while not st.finished:
        st.next_touch()
        if st.finished:
            break
        for view in (views.book_view, views.levels_view, views.tape_view, views.fuel_view, views.bar_view,
                     views.status):
            view(st)
    assert st.table.equals(small_reference)


# ---------------------------------------------------------------------------------------- shell
def run_shell(config: Config, script: str) -> tuple[str, Shell]:
    out: list[str] = []
    sh = Shell(stepper(config), out.append)
    sh.run(script.splitlines())
    return "\n".join(out), sh


def test_shell_echoes_script_commands_and_counts_errors(small_config):
    text, sh = run_shell(small_config, "step 3\n\n# a comment\nbogus\nuntil 99:00\nstep 0\nwhere\n")
    lines = text.splitlines()
    assert lines[0] == "> step 3"
    assert "> bogus" in lines and "error: unknown command 'bogus' (type 'help')" in lines
    assert any(ln.startswith("error: not a time") for ln in lines)
    assert "error: the count must be >= 1, not 0" in lines
    assert "> # a comment" in lines and sh.errors == 3
    assert "3 events applied" in text


def test_shell_quit_ends_the_script(small_config):
    text, _ = run_shell(small_config, "step\nquit\nstep\n")
    assert text.count("> step") == 1 and text.splitlines()[-1] == "> quit"


def test_help_lists_every_command(small_config):
    for name in dir(Shell):
        if name.startswith("do_"):
            assert f"\n  {name[3:]}" in "\n" + HELP, name
    text, _ = run_shell(small_config, "help")
    assert HELP in text


def test_shell_touch_shows_the_touch_the_run_stopped_at(small_config, small_reference):
    ref = rows_by_id(small_reference)
    text, sh = run_shell(small_config, "break ROUND\ncontinue\ntouch\n")
    row = sh.st.focus
    assert row["level_kind"] == "ROUND"
    block = text.split("> touch\n", 1)[1]
    pending = dict(ref[row["event_id"]], **{c: None for c in LABEL_COLUMNS})
    assert block.splitlines()[1:] == views.touch_columns(pending, sh.st)


def test_parse_count_accepts_separators_and_suffixes():
    assert [parse_count(s) for s in ("7", "10_000", "10,000", "10k", "2m", "1.5k")] == [7, 10_000, 10_000, 10_000,
                                                                                        2_000_000, 1_500]
    for bad in ("x", "1.5", "k"):
        with pytest.raises(DebugError):
            parse_count(bad)


def test_an_interrupt_stops_a_run_between_slices_without_changing_results(small_config, small_reference):
    st = stepper(small_config)
    st.add_break("touch")
    feed = st._feed

    def feed_then_interrupt(*args, **kw):
        feed(*args, **kw)
        st.interrupted = True          # what the shell's SIGINT handler does

    st._feed = feed_then_interrupt
    stop = st.cont()
    assert stop.reason == "interrupted" and stop.applied > 0 and not st.finished
    st._feed = feed
    st.cont()
    assert st.finish().equals(small_reference)


def test_a_short_step_lists_each_bar_close_before_the_event_that_closed_it(small_config, small_reference):
    t = sorted(set(small_reference.column("ts_event_ns").to_pylist()))[3]   # a bar close with touches
    st = stepper(small_config)
    st.until(t - NS)
    while st.next_event().ts_ns < t:
        st.step(1)
    text = views.stop_report(st.step(3), st)
    lines = text.splitlines()
    k_bar = next(k for k, ln in enumerate(lines) if ln.startswith("bar closed"))
    assert lines[k_bar + 1].startswith("  touch ")
    first_event = next(k for k, ln in enumerate(lines) if ln.startswith("#"))
    assert k_bar < first_event


def test_touch_breakpoints_outside_rth_stop_when_the_detection_window_is_the_whole_session(small_config):
    cfg = small_config.replace(**{"session.detection_window": "session"})
    ref, _, _ = Pipeline(cfg).replay(DATE)
    pre_rth = [r for r in ref.to_pylist() if r["ts_event_ns"] <= session_for(DATE).rth_open_ns]
    assert pre_rth                                    # the 09:20-09:30 bars emit touches in this mode
    st = Stepper.open(cfg, DATE)
    st.add_break("touch")
    stopped = []
    while not st.finished:
        stopped += [r["event_id"] for r in st.cont().matched]
    assert sorted(stopped) == sorted(r["event_id"] for r in ref.to_pylist())
    assert st.table.equals(ref)
