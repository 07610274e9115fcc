"""The live merge (bounded lateness, replay order) and the clock that closes bars in a quiet market."""

from __future__ import annotations

from spymaster.calendar import MINUTE_NS, et_ns, session_for
from spymaster.config import Config
from spymaster.events import EMPTY_BOOKS, EMPTY_OPTIONS, KIND_BOOK, KIND_OPTION, KIND_TRADE, make_options, make_trades
from spymaster.replay.clock import POS_INF, LiveMerger, clock_due, step, tick
from spymaster.replay.engine import ReplayEngine
from spymaster.replay.merge import interleave
from marketbuild import book_rec

NS = 1_000_000_000
MS = 1_000_000
L = 500 * MS
D = "2025-12-17"
T = et_ns(session_for(D).date, 10, 0)      # 10:00:00 ET


def trades_at(*offsets_s: float, px: float = 6800.0):
    return make_trades([T + int(o * NS) for o in offsets_s], [px] * len(offsets_s), [1] * len(offsets_s), "B")


def options_at(*offsets_s: float):
    return make_options([T + int(o * NS) for o in offsets_s], 0, 680.0, True, 1.0, 1)


def merger(wall=lambda: 0):
    return LiveMerger(["GLBX", "OPRA"], L, realtime_window_ns=40 * NS, wall_ns=wall)


def released_ts(batch):
    return [(int(k), int(t)) for k, t in zip(batch.kind, batch.ts)]


def test_release_horizon_is_the_minimum_over_streams():
    m = merger()
    m.push("GLBX", trades=trades_at(1, 2, 3), data_ts=T + 3 * NS)
    assert len(m.release()) == 0                      # OPRA has said nothing yet: nothing is safe
    m.push("OPRA", options=options_at(1.5), data_ts=T + int(1.5 * NS))
    b = m.release()
    assert released_ts(b) == [(KIND_TRADE, T + NS)]  # strictly below OPRA's 1.5 s
    m.push("OPRA", options=options_at(2.5), data_ts=T + int(2.5 * NS))
    assert released_ts(m.release()) == [(KIND_OPTION, T + int(1.5 * NS)), (KIND_TRADE, T + 2 * NS)]


def test_released_batch_is_in_replay_order_with_the_kind_tie_rule():
    m = merger()
    book = book_rec(0, [(6799.75, 10)], [(6800.0, 10)], t_ns=T + NS)
    m.push("OPRA", options=options_at(1), data_ts=T + NS)       # option first to arrive
    m.push("GLBX", books=book, trades=trades_at(1), data_ts=T + NS)
    m.close("GLBX")
    m.close("OPRA")
    assert [int(k) for k in m.release().kind] == [KIND_TRADE, KIND_BOOK, KIND_OPTION]


def test_late_record_is_counted_and_not_fed():
    m = merger()
    m.push("GLBX", trades=trades_at(1, 5), data_ts=T + 5 * NS)
    m.push("OPRA", options=options_at(4), data_ts=T + 4 * NS)
    first = m.release()                               # horizon 4 s: the trade at 1 s
    assert released_ts(first) == [(KIND_TRADE, T + NS)]
    late = m.push("OPRA", options=options_at(3, 6), data_ts=T + 6 * NS)   # 3 s < released 4 s
    assert late == 1
    assert m.late_counts() == {"OPRA": {"option_trade": 1}}
    m.close("GLBX")
    m.close("OPRA")
    rest = m.release()
    assert released_ts(rest) == [(KIND_OPTION, T + 4 * NS), (KIND_TRADE, T + 5 * NS), (KIND_OPTION, T + 6 * NS)]
    assert m.summary()["late_total"] == 1


def test_record_at_the_released_horizon_is_not_late():
    m = merger()
    m.push("GLBX", trades=trades_at(2), data_ts=T + 2 * NS)
    m.push("OPRA", options=options_at(2), data_ts=T + 2 * NS)
    m.release()                                       # horizon 2 s, nothing strictly below
    assert m.push("GLBX", trades=trades_at(2), data_ts=T + 2 * NS) == 0


def test_heartbeat_lets_a_quiet_stream_release_the_other_up_to_heartbeat_minus_lateness():
    m = merger()
    m.push("GLBX", trades=trades_at(1, 2, 3, 20), data_ts=T + 20 * NS)
    m.push("OPRA", heartbeat_ts=T + 10 * NS)          # quiet OPRA: a heartbeat at 10 s
    assert m.horizon() == T + 10 * NS - L
    assert len(m.release()) == 3


def test_closed_stream_no_longer_holds_the_horizon_back():
    m = merger()
    m.push("GLBX", trades=trades_at(1, 2), data_ts=T + 2 * NS)
    m.close("OPRA")
    assert m.horizon() == T + 2 * NS
    m.close("GLBX")
    assert m.horizon() == POS_INF
    assert len(m.release()) == 2


def test_wall_clock_timer_applies_only_to_a_real_time_feed():
    now = [T + 30 * NS]
    m = merger(lambda: now[0])
    m.push("GLBX", trades=trades_at(1), data_ts=T + NS)
    m.push("OPRA", heartbeat_ts=T + NS)
    assert m.is_realtime("GLBX") and m.is_realtime("OPRA")
    assert m.horizon() == now[0] - L                   # silent streams: the wall clock minus lateness
    now[0] = T + 3600 * NS                             # a replay an hour behind the wall clock
    assert not m.is_realtime("GLBX")
    assert m.horizon() == T + NS - L                   # only the records and heartbeats count


def test_a_stream_still_replaying_history_holds_the_horizon_when_the_other_is_real_time():
    now = [T + 3600 * NS]
    m = merger(lambda: now[0])
    m.push("OPRA", heartbeat_ts=now[0] - NS)           # OPRA has caught up with the wall clock
    m.push("GLBX", trades=trades_at(1, 2), data_ts=T + 2 * NS)   # GLBX is an hour behind, catching up
    assert m.is_realtime("OPRA") and not m.is_realtime("GLBX")
    assert m.horizon() == T + 2 * NS                   # not the wall clock: GLBX may still send 2 s .. now


def _engine():
    s = session_for(D)
    return ReplayEngine(Config(), s), s


def test_heartbeat_tick_closes_a_bar_in_a_quiet_market():
    eng, s = _engine()
    bars = []
    eng.on_bar = bars.append
    m = merger()
    m.push("GLBX", trades=trades_at(5, 20), data_ts=T + 20 * NS)
    m.push("OPRA", heartbeat_ts=T + 20 * NS)
    assert released_ts(m.release()) == [(KIND_TRADE, T + 5 * NS)]   # OPRA's heartbeat minus L: 19.5 s
    # nothing trades any more; heartbeats pass the bar end
    m.push("GLBX", heartbeat_ts=T + 70 * NS)
    m.push("OPRA", heartbeat_ts=T + 70 * NS)
    h = m.horizon()
    eng.feed(m.release(h))                             # the trade at 20 s
    assert bars == [] and eng.next_boundary == T + MINUTE_NS
    assert tick(eng, h, s.end_ns) == T + 70 * NS - L
    assert [b.start_ns for b in bars] == [T]


def test_clock_tick_never_runs_ahead_of_the_other_streams_lateness_window():
    eng, s = _engine()
    m = merger()
    m.push("GLBX", trades=trades_at(5, 7), data_ts=T + 7 * NS)
    m.push("OPRA", options=options_at(6), data_ts=T + 6 * NS)
    eng.feed(m.release())                              # the trade at 5 s
    m.push("GLBX", heartbeat_ts=T + 120 * NS)          # GLBX says it is at 2:00 ...
    h = m.horizon()
    assert h == T + 6 * NS                             # ... but OPRA may still send anything from 6 s on
    assert tick(eng, h, s.end_ns) is None              # so no bar may close yet
    m.push("OPRA", heartbeat_ts=T + 90 * NS)
    batches, t = step(m, eng, s.end_ns)                # the option at 6 s and the trade at 7 s first, then the tick
    assert [e for b in batches for e in released_ts(b)] == [(KIND_OPTION, T + 6 * NS), (KIND_TRADE, T + 7 * NS)]
    assert t == T + 90 * NS - L and eng.stats.bars == 1


def test_wall_clock_timer_closes_a_bar_when_no_heartbeat_arrives():
    eng, s = _engine()
    bars = []
    eng.on_bar = bars.append
    now = [T + 31 * NS]
    m = merger(lambda: now[0])
    m.push("GLBX", trades=trades_at(5, 30), data_ts=T + 30 * NS)
    m.push("OPRA", options=options_at(29), data_ts=T + 29 * NS)
    eng.feed(m.release())
    now[0] = T + 61 * NS                               # 1 s after the bar end on the wall clock, 31 s of silence
    h = m.horizon()
    assert h == T + 61 * NS - L
    eng.feed(m.release(h))
    assert tick(eng, h, s.end_ns) == h
    assert [b.start_ns for b in bars] == [T]


def test_tick_is_clamped_to_the_session_end_and_needs_stop_work():
    eng, s = _engine()
    assert not clock_due(eng, T)                        # nothing applied yet: the first event does the first stop
    eng.feed(interleave(make_trades([s.end_ns - 10 * NS], [6800.0], [1], "B"), EMPTY_BOOKS, EMPTY_OPTIONS))
    assert tick(eng, s.end_ns - 5 * NS, s.end_ns) is None     # inside the open minute, no label due
    assert tick(eng, s.end_ns + 3600 * NS, s.end_ns) == s.end_ns
    assert eng.stats.last_ts == s.end_ns
    eng.finish()
    assert eng.stats.events["clock"] == 1 and eng.stats.bars == 1


def test_records_a_stream_sends_out_of_its_own_order_are_released_sorted():
    m = merger()
    m.push("OPRA", options=options_at(5), data_ts=T + 5 * NS)
    m.push("OPRA", options=options_at(3, 4), data_ts=T + 5 * NS)   # not below the released horizon: not late
    m.close("OPRA")
    m.close("GLBX")
    assert [int(t) for t in m.release().ts] == [T + 3 * NS, T + 4 * NS, T + 5 * NS]


def test_released_batches_concatenate_to_the_single_release():
    def fill(m):
        m.push("GLBX", trades=trades_at(1, 4), data_ts=T + 4 * NS)
        m.push("OPRA", options=options_at(2, 3), data_ts=T + 3 * NS)
        m.push("GLBX", trades=trades_at(4, 6), books=book_rec(0, [(6799.75, 1)], [(6800.0, 1)], t_ns=T + 5 * NS),
               data_ts=T + 6 * NS)
        m.push("OPRA", options=options_at(4, 7), data_ts=T + 7 * NS)
        m.close("GLBX")
        m.close("OPRA")

    one, many = merger(), merger()
    fill(one)
    fill(many)
    whole = released_ts(one.release())
    parts = many.release_batches()
    assert len(parts) > 1
    assert [e for b in parts for e in released_ts(b)] == whole
    assert many.summary()["released"] == one.summary()["released"] and many.buffered == 0
