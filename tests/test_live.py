"""``spymaster live`` end to end: the real ``databento.Live`` client against the local test gateway.

The parity tests replay the same Bronze files twice — historically (``Pipeline.execute``) and as
a live session through the gateway (definitions, then data in ts_recv order with heartbeats, a
SystemMsg ack per subscription, close = end of session) — and compare the Gold tables.
"""

from __future__ import annotations

import io
import json
import logging
import threading

import pyarrow.parquet as pq
import pytest

import livemarket
from bronze import D, ESH6, es_definitions, opra_definitions, standard_lake, trades, px, utc_ns
from gateway import TEST_KEY, Behavior, Feed, feeds_from_lake, run_live
from spymaster.calendar import MINUTE_NS, et_ns
from spymaster.cli.live import LiveRunner, gap_window_s
from spymaster.config import Config
from spymaster.errors import LiveError
from spymaster.events import KIND_BOOK, KIND_OPTION, KIND_TRADE
from spymaster.pipeline import Pipeline
from spymaster.sinks.parquet import read_metadata, write_parquet
from spymaster.sinks.parts import read_parts
from spymaster.sources.lake import Lake
from spymaster.sources.session import open_session

DATE = D.isoformat()
NS = 1_000_000_000


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("DATABENTO_API_KEY", TEST_KEY)


@pytest.fixture(scope="module")
def morning(tmp_path_factory):
    """The mini morning as a Bronze lake, its historical replay (written) and its gateway feeds."""
    lake = livemarket.write_lake(Lake.at(tmp_path_factory.mktemp("morning") / "lake"))
    cfg = Config().replace(**{"io.lake": str(lake.root)})
    res = Pipeline(cfg).execute(DATE, force=True)
    assert res.table.num_rows >= 20 and not all(res.table.column("label_complete").to_pylist())
    return lake, res, feeds_from_lake(lake, DATE)


def live_config(tmp_path, **overrides) -> Config:
    return Config().replace(**{"io.lake": str(tmp_path / "live_lake"), **overrides})


def gold_table(path):
    return pq.read_table(path).replace_schema_metadata(None)


# ---------------------------------------------------------------------------------------- parity
@pytest.mark.parametrize("bulk,backlog", [(True, None), (True, 64 << 10), (False, None)],
                         ids=["bulk-blocks", "bulk-with-backpressure", "record-objects"])
def test_live_gold_file_equals_the_historical_replay(morning, tmp_path, bulk, backlog):
    lake, ref, feeds = morning
    runner, res, gw = run_live(live_config(tmp_path, **{"live.flush_rows": 4}), DATE, feeds, bulk=bulk,
                               max_backlog_bytes=backlog, poll_s=0.05 if backlog else 0.005)
    assert all(c.bulk == bulk for c in runner.connections.values())
    if backlog:
        assert runner.connections["GLBX.MDP3"].collector.pauses > 0     # the socket was paused and resumed
    assert res.stopped_by == "end_of_stream" and res.gold_path is not None
    live = gold_table(res.gold_path)
    assert live.equals(gold_table(ref.path))
    assert len(res.parts) >= 5                                     # flushed in parts, compacted into one file
    # the table encodes to the same bytes: rewritten with the replay's metadata the file is identical
    again = write_parquet(live, tmp_path / "same.parquet", read_metadata(ref.path))
    assert again.read_bytes() == ref.path.read_bytes()
    # metadata: same sections; the input manifest describes the live feed instead of files
    md, ref_md = read_metadata(res.gold_path), read_metadata(ref.path)
    assert set(md) == set(ref_md) | {"live"}
    for key in ("format", "date", "symbol", "es_spy_ratio", "bars", "touches", "labels_incomplete"):
        assert md[key] == ref_md[key], key
    same = {k: v for k, v in md["config"].items() if k not in ("io", "live")}
    assert same == {k: v for k, v in ref_md["config"].items() if k not in ("io", "live")}
    assert md["inputs"]["source"] == "live"
    assert md["inputs"]["es_contract"]["raw_symbol"] == ref_md["inputs"]["es_contract"]["raw_symbol"] == "ESH6"
    assert md["inputs"]["options"]["contracts"] == ref_md["inputs"]["options"]["contracts"]
    assert md["live"]["merge"]["late_total"] == 0 and md["live"]["gaps"] == []
    for ds in ("GLBX.MDP3", "OPRA.PILLAR"):
        assert md["live"]["connections"][ds]["system_messages"]["subscription_ack"] == len(gw.subscriptions[ds])
        assert md["live"]["connections"][ds]["system_messages"]["heartbeat"] > 0


def test_live_feeds_the_engine_exactly_the_replay_events(tmp_path):
    """Every filter and join case of the sources' standard lake: the live path hands the engine the
    same events, in the same order, as the historical merge."""
    lake = standard_lake(Lake.at(tmp_path / "std"))
    cfg = Config().replace(**{"io.lake": str(lake.root)})
    hist = list(Pipeline.batches(open_session(lake, DATE, cfg)))
    fed = []
    runner, res, _ = run_live(live_config(tmp_path), DATE, feeds_from_lake(lake, DATE), on_batch=fed.append)
    assert res.stopped_by == "end_of_stream"

    def events(batches):
        out = []
        for b in batches:
            for k, p in zip(b.kind.tolist(), b.pos.tolist()):
                arr = {KIND_TRADE: b.trades, KIND_BOOK: b.books, KIND_OPTION: b.options}.get(k)
                if arr is not None:
                    out.append((k, arr[p].tobytes()))
        return out

    assert events(fed) == events(hist)
    assert len(events(hist)) == 6 + 4 + 5
    streams = read_metadata(res.gold_path)["inputs"]["streams"]
    assert streams["es_trade"]["dropped"] == {"undef_price": 1}
    assert streams["option_trade"]["dropped"] == {"definition_deleted": 1, "no_definition": 2, "undef_price": 1}


# ---------------------------------------------------------------------------------------- clock
def quiet_feeds(t: int) -> dict[str, Feed]:
    """Two ES trades at t + 5 s and t + 20 s, then only heartbeats (every 10 s of event time) on both
    feeds until t + 2 min."""
    es_def = es_definitions([("ESH6", ESH6, D.replace(year=2026, month=3, day=20), utc_ns(D, 0, 0, 1))])
    glbx = Feed.build("GLBX.MDP3", head=[es_def], data=[trades([t + 5 * NS, t + 20 * NS], [px(6800.0)] * 2, 1, "B")],
                      heartbeat_s=10, until_ns=t + 2 * MINUTE_NS)
    opra = Feed.build("OPRA.PILLAR", head=[opra_definitions([{"raw": "SPY   251217C00680000", "iid": 1, "ts": t}])],
                      heartbeat_s=10, since_ns=t, until_ns=t + 2 * MINUTE_NS)
    return {"GLBX.MDP3": glbx, "OPRA.PILLAR": opra}


def test_heartbeats_close_a_bar_in_a_quiet_market_while_the_feed_is_open(tmp_path):
    t = et_ns(D, 10, 0)
    feeds = quiet_feeds(t)
    hold = threading.Event()
    closed = []

    def on_bar(bar):
        closed.append((bar.start_ns, hold.is_set()))
        hold.set()                                 # the bar closed: let the gateway end the session

    safety = threading.Timer(20.0, hold.set)       # never hang, whatever happens
    safety.start()
    try:
        runner, res, _ = run_live(live_config(tmp_path), DATE, feeds,
                                  behaviors={"GLBX.MDP3": Behavior(hold=hold), "OPRA.PILLAR": Behavior(hold=hold)},
                                  on_bar=on_bar)
    finally:
        safety.cancel()
    assert closed[0] == (t, False)                  # closed by the heartbeat clock, before the end of the stream
    assert runner.ticks >= 1
    assert res.stopped_by == "end_of_stream"


# ---------------------------------------------------------------------------------------- failures
def test_error_msg_is_a_live_error_naming_the_gateway_and_dataset(morning, tmp_path):
    _, ref, feeds = morning
    runner, res, gw = run_live(live_config(tmp_path), DATE, feeds,
                               behaviors={"OPRA.PILLAR": Behavior(error_after=300, error_text="Simulated failure 42")})
    assert isinstance(res, LiveError)
    assert f"gateway 127.0.0.1:{gw.port} dataset OPRA.PILLAR" in str(res)
    assert "Simulated failure 42" in str(res)
    # stopped cleanly: everything fed so far was flushed to parts, no day file
    assert not Lake.at(tmp_path / "live_lake").gold_path(DATE).exists()
    assert runner.stop_reason == "error"
    assert read_parts(runner.sink.directory).num_rows == runner.sink.rows_written


def test_reconnect_after_a_drop_logs_and_flags_the_gap(morning, tmp_path):
    _, ref, feeds = morning
    cfg = live_config(tmp_path, **{"live.reconnect_backoff_s": 0.05})
    runner, res, gw = run_live(cfg, DATE, feeds, behaviors={"GLBX.MDP3": Behavior(drop_after=2500, resume_gap_s=120)})
    assert not isinstance(res, LiveError), res
    assert gw.connections["GLBX.MDP3"] == 2
    assert runner.connections["GLBX.MDP3"].reconnects == 1
    md = read_metadata(res.gold_path)
    (gap,) = md["live"]["gaps"]
    assert gap["stream"] == "GLBX.MDP3" and gap["end_ns"] - gap["start_ns"] >= 120 * NS
    assert gap["start_ns"] == gw.dropped_at["GLBX.MDP3"]          # the last record the client got
    assert et_ns(D, 9, 30) < gap["start_ns"] < et_ns(D, 10, 5)
    table = gold_table(res.gold_path)
    before, after = gap_window_s(cfg)
    ids, ts = table.column("event_id").to_pylist(), table.column("ts_event_ns").to_pylist()
    expect = sorted(e for e, t in zip(ids, ts)
                    if gap["start_ns"] < t + after * NS and gap["end_ns"] > t - before * NS)
    assert md["live"]["gap_affected_event_ids"] == expect
    assert 0 < len(expect) < len(ids)
    assert md["live"]["connections"]["GLBX.MDP3"]["events"] == ["disconnected", "reconnected", "closed"]


def test_reconnect_policy_none_fails_on_a_drop(morning, tmp_path):
    _, _, feeds = morning
    runner, res, gw = run_live(live_config(tmp_path, **{"live.reconnect_policy": "none"}), DATE, feeds,
                               behaviors={"GLBX.MDP3": Behavior(drop_after=1000)})
    assert isinstance(res, LiveError)
    assert "dataset GLBX.MDP3" in str(res) and "reconnect_policy=none" in str(res)
    assert gw.connections["GLBX.MDP3"] == 1


def test_reconnects_give_up_after_max_reconnects(morning, tmp_path):
    _, _, feeds = morning
    cfg = live_config(tmp_path, **{"live.reconnect_backoff_s": 0.01, "live.max_reconnects": 2})
    runner, res, gw = run_live(cfg, DATE, feeds,
                               behaviors={"GLBX.MDP3": Behavior(drop_after=1000, refuse_reconnects=99)})
    assert isinstance(res, LiveError) and "2 of max_reconnects=2" in str(res)
    assert gw.connections["GLBX.MDP3"] == 3


# ---------------------------------------------------------------------------------------- the API key
def test_api_key_comes_only_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABENTO_API_KEY")
    with pytest.raises(LiveError, match="DATABENTO_API_KEY"):
        LiveRunner(live_config(tmp_path), DATE, gateway="127.0.0.1", port=1, install_signals=False)


def test_authentication_failure_is_a_live_error_without_the_key(monkeypatch, morning, tmp_path):
    wrong = "db-" + "W" * 24 + "WRONG"
    monkeypatch.setenv("DATABENTO_API_KEY", wrong)
    _, _, feeds = morning
    runner, res, gw = run_live(live_config(tmp_path), DATE, feeds)
    assert isinstance(res, LiveError)
    assert "Authentication failed" in str(res) and "gateway 127.0.0.1" in str(res)
    assert wrong not in str(res) and "WRONG" not in str(res)


def test_api_key_never_appears_in_logs(tmp_path, capfd):
    from structlog.testing import capture_logs

    feeds = quiet_feeds(et_ns(D, 10, 0))
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setLevel(logging.DEBUG)
    lib = logging.getLogger("databento")
    old_level = lib.level
    lib.setLevel(logging.DEBUG)
    lib.addHandler(handler)
    try:
        with capture_logs() as events:
            runner, res, gw = run_live(live_config(tmp_path), DATE, feeds, bulk=False)
    finally:
        lib.removeHandler(handler)
        lib.setLevel(old_level)
    out, err = capfd.readouterr()
    ours = json.dumps(events, default=str)
    text = captured.getvalue() + out + err + ours + json.dumps(res.metadata) + repr(runner.connections)
    assert "CRAM" in captured.getvalue() and "live_connected" in ours     # the logs were captured
    assert TEST_KEY not in text
    assert TEST_KEY[-5:] not in text                                       # not even the bucket id
    assert TEST_KEY[-5:] in gw.auth_lines[0]                               # (which the wire does carry)


# ---------------------------------------------------------------------------------------- the demo day
def test_demo_day_live_gold_file_equals_the_historical_replay(demo_lake, demo_config, tmp_path):
    """The synthetic demo day (a whole Globex session) served by the gateway equals its replay."""
    from conftest import DEMO_DATE

    table, metadata, _ = Pipeline(demo_config).replay(DEMO_DATE)
    runner, res, gw = run_live(live_config(tmp_path), DEMO_DATE, feeds_from_lake(demo_lake, DEMO_DATE))
    assert not isinstance(res, LiveError), res
    live = gold_table(res.gold_path)
    assert table.num_rows > 20 and live.equals(table)
    # byte-identical files when written with the same metadata (only the metadata differs)
    a = write_parquet(live, tmp_path / "a.parquet", metadata)
    b = write_parquet(table, tmp_path / "b.parquet", metadata)
    assert a.read_bytes() == b.read_bytes()
    md = read_metadata(res.gold_path)
    assert md["touches"] == metadata["touches"] and md["bars"] == metadata["bars"]
    assert md["inputs"]["es_contract"]["raw_symbol"] == metadata["inputs"]["es_contract"]["raw_symbol"]
    assert md["live"]["merge"]["late_total"] == 0
    streams = md["inputs"]["streams"]
    for name in ("es_trade", "es_mbp10", "option_trade"):
        assert streams[name]["kept"] == metadata["inputs"]["streams"][name]["kept"]
