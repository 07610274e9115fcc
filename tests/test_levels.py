"""Level trackers (SPEC §5) — unit rules; whole-day equality with an independent computation
lives in tests/test_replay_levels.py."""

from __future__ import annotations

from spymaster.calendar import MINUTE_NS, session_for
from spymaster.levels.round import round_levels
from spymaster.levels.structural import StructuralLevels
from spymaster.levels.technical import SmaLevels
from spymaster.state.bars import Bar

SESSION = session_for("2025-12-17")
P = 1_000_000_000 * 10  # 1 SPY $ in 1e-9 ES points


def _bar(start, lo, hi, close=None):
    c = hi if close is None else close
    return Bar(start, start + MINUTE_NS, int(lo * P), int(hi * P), int(lo * P), int(c * P), 1, 1, 10.0)


def test_round_levels_every_dollar_within_five_of_previous_close_inclusive():
    ids = [lv.level_id for lv in round_levels(680.0, 1.0, 5.0)]
    assert ids[0] == "ROUND@675.00" and ids[-1] == "ROUND@685.00" and len(ids) == 11
    assert [lv.price for lv in round_levels(680.4, 1.0, 5.0)][0] == 676.0


def test_round_levels_need_a_previous_bar():
    assert round_levels(None, 1.0, 5.0) == []


def test_pm_levels_from_premarket_bars_testable_from_the_open():
    s = StructuralLevels(SESSION, 10.0)
    s.on_bar(_bar(SESSION.premarket_ns - MINUTE_NS, 600, 700))    # before 04:00: not pre-market
    s.on_bar(_bar(SESSION.premarket_ns, 679, 681))
    s.on_bar(_bar(SESSION.rth_open_ns - MINUTE_NS, 678, 680))
    assert s.values(SESSION.rth_open_ns - MINUTE_NS) == []
    vals = {lv.kind: lv.price for lv in s.values(SESSION.rth_open_ns)}
    assert vals == {"PM_HIGH": 681.0, "PM_LOW": 678.0}


def test_opening_range_testable_from_its_end():
    s = StructuralLevels(SESSION, 10.0)
    for k in range(15):
        s.on_bar(_bar(SESSION.rth_open_ns + k * MINUTE_NS, 680 - k / 10, 681 + k / 10))
    s.on_bar(_bar(SESSION.or_end_ns, 600, 700))                    # after the opening range
    kinds = {lv.kind: lv.price for lv in s.values(SESSION.or_end_ns)}
    assert abs(kinds["OR_HIGH"] - 682.4) < 1e-9 and abs(kinds["OR_LOW"] - 678.6) < 1e-9
    assert "OR_HIGH" not in {lv.kind for lv in s.values(SESSION.or_end_ns - MINUTE_NS)}


def test_session_levels_from_completed_rth_bars_testable_from_0931():
    s = StructuralLevels(SESSION, 10.0)
    s.on_bar(_bar(SESSION.rth_open_ns, 679, 682))
    assert "SESSION_HIGH" not in {lv.kind for lv in s.values(SESSION.rth_open_ns)}
    vals = {lv.kind: lv.price for lv in s.values(SESSION.rth_open_ns + MINUTE_NS)}
    assert vals["SESSION_HIGH"] == 682.0 and vals["SESSION_LOW"] == 679.0


def test_sma_needs_that_many_two_minute_closes():
    sma = SmaLevels(10.0)
    for k in range(199):
        sma.on_bar(_bar(k * 2 * MINUTE_NS, 680, 680, close=600 + k))
    assert sma.values() == []
    sma.on_bar(_bar(199 * 2 * MINUTE_NS, 680, 680, close=799))
    (lv,) = sma.values()
    assert lv.kind == "SMA_200" and abs(lv.price - (600 + 799) / 2) < 1e-9
