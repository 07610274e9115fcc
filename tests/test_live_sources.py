"""Live records → normalized arrays: parsing the client's bytes, ES contract choice, the OPRA join."""

from __future__ import annotations

import logging

import databento_dbn as dbn
import numpy as np
import pytest

from bronze import C680, C685, D, ESH6, ESZ5, P680, SPREAD, es_definitions, mbp10, opra_definitions, px, trades, utc_ns
from gateway import TEST_KEY, heartbeats
from spymaster.calendar import et_ns, session_for
from spymaster.config import Config
from spymaster.errors import LiveError
from spymaster.sources.live import (KeyRedactor, LiveDecoder, LiveEsSource, LiveOptionSource, RecordCollector,
                                    api_key, parse_records)

SESSION = session_for(D)
T = et_ns(D, 10, 0)
NS = 1_000_000_000


def es_defs():
    return es_definitions([("ESZ5", ESZ5, D.replace(day=19), utc_ns(D, 0, 0, 1)),
                           ("ESH6", ESH6, D.replace(year=2026, month=3, day=20), utc_ns(D, 0, 0, 1)),
                           ("ESZ5-ESH6", SPREAD, D.replace(day=19), utc_ns(D, 0, 0, 1))])


def test_parse_records_splits_records_by_type_keeping_arrival_order():
    tr = trades([T + 1, T + 2, T + 3], [px(6800.0)] * 3)
    bk = mbp10([T + 2])
    hb = heartbeats(np.array([T + 5]))
    blob = tr[:1].tobytes() + bk.tobytes() + tr[1:].tobytes() + hb.tobytes() + es_defs()[:1].tobytes()
    p = parse_records(blob)
    assert p.trades["ts_recv"].tolist() == [T + 1, T + 2, T + 3]
    assert p.books["ts_recv"].tolist() == [T + 2]
    assert p.heartbeat_ts.tolist() == [T + 5]
    assert p.definitions["raw_symbol"].tolist() == [b"ESZ5"]
    assert p.data_max_ts == T + 3


def test_parse_records_refuses_a_partial_record():
    blob = trades([T], [px(6800.0)]).tobytes()
    with pytest.raises(LiveError, match="gateway x dataset GLBX.MDP3: 8 trailing bytes"):
        parse_records(blob + blob[:8], where="gateway x dataset GLBX.MDP3")


def test_parse_records_refuses_a_record_of_the_wrong_length():
    rec = bytes(dbn.TradeMsg(0, 1, T, 1, 1, dbn.Action.TRADE, dbn.Side.BID, 0, T, flags=128, ts_out=T))  # 56 B
    with pytest.raises(LiveError, match="rtype 0 and length 56, expected 48"):
        parse_records(rec)


def test_collector_starts_a_segment_at_each_connection_header():
    c = RecordCollector()
    md = dbn.Metadata("GLBX.MDP3", T, None, dbn.SType.INSTRUMENT_ID, None, ts_out=False).encode()
    rec = trades([T], [px(6800.0)]).tobytes()
    for b in (md, rec, rec, md, rec):
        c.write(b)
    segs = c.take()
    assert [(m is not None, len(d) // 48) for m, d in segs] == [(True, 2), (True, 1)]
    assert segs[0][0].dataset == "GLBX.MDP3"
    c.write(rec)
    assert [(m, len(d)) for m, d in c.take()] == [(None, 48)]
    assert c.take() == []


def test_collector_notices_an_error_msg():
    c = RecordCollector()
    c.write(bytes(dbn.ErrorMsg(T, "Subscription limit reached", is_last=True)))
    assert c.error_texts == ["Subscription limit reached"]


def test_es_contract_is_chosen_by_the_roll_rule_from_what_arrived_before_the_first_record():
    es = LiveEsSource(SESSION, Config())
    dropped = es.normalize(trades([T], [px(6800.0)]), "trades")
    assert dropped.shape[0] == 0 and es.trade_stats.dropped == {"before_contract": 1}
    es.add_definitions(es_defs())
    out = es.normalize(trades([T + 1, T + 2, T + 3], [px(6800.0)] * 3, iid=[ESH6, ESZ5, SPREAD]), "trades")
    assert es.choice.raw_symbol == "ESH6" and es.choice.excluded_spreads == 1
    assert out["instrument_id"].tolist() == [ESH6]
    assert es.trade_stats.filtered == {"other_instrument": 2}


def test_es_contract_can_come_from_symbol_mappings_alone():
    es = LiveEsSource(SESSION, Config())
    maps = np.frombuffer(bytes(dbn.SymbolMappingMsg(0, ESH6, T, dbn.SType.RAW_SYMBOL, "ESH6", dbn.SType.INSTRUMENT_ID,
                                                    str(ESH6), T, T)), dtype=np.dtype(dbn.SymbolMappingMsg._dtypes))
    es.add_mappings(maps)
    out = es.normalize(trades([T], [px(6800.0)]), "trades")
    assert out.shape[0] == 1 and es.choice.expiration_source == "symbol"


def test_es_records_outside_the_session_window_are_filtered():
    es = LiveEsSource(SESSION, Config())
    es.add_definitions(es_defs())
    out = es.normalize(trades([SESSION.start_ns, SESSION.start_ns + 1, SESSION.end_ns, SESSION.end_ns + 1],
                              [px(6800.0)] * 4), "trades")
    assert out["ts_recv"].tolist() == [SESSION.start_ns + 1, SESSION.end_ns]


def test_option_trades_join_the_definition_in_force_at_their_ts_recv():
    opt = LiveOptionSource(SESSION, Config())
    opt.add_definitions(opra_definitions([
        {"raw": C680, "iid": 1, "ts": T},
        {"raw": C685, "iid": 2, "ts": T + 10 * NS},                 # arrives now, applies from T + 10 s
        {"raw": C680, "iid": 1, "ts": T + 20 * NS, "action": "D"},
    ]))
    out = opt.normalize(trades([T, T + 5 * NS, T + 10 * NS, T + 25 * NS], [px(1.0)] * 4, iid=[1, 2, 2, 1]))
    assert out["instrument_id"].tolist() == [1, 2]
    assert out["ts_recv"].tolist() == [T, T + 10 * NS]
    assert opt.stats.dropped == {"no_definition": 1, "definition_deleted": 1}


def test_option_contracts_are_numbered_by_their_first_kept_trade():
    opt = LiveOptionSource(SESSION, Config())
    opt.add_definitions(opra_definitions([{"raw": C680, "iid": 1, "ts": T}, {"raw": P680, "iid": 2, "ts": T},
                                          {"raw": C685, "iid": 3, "ts": T}]))
    first = opt.normalize(trades([T + 1, T + 2], [px(1.0)] * 2, iid=[3, 1]))
    second = opt.normalize(trades([T + 3, T + 4], [px(1.0)] * 2, iid=[2, 3]))
    assert first["contract"].tolist() == [0, 1] and second["contract"].tolist() == [2, 0]
    assert opt.contracts.raw_symbols == [C685, C680, P680]
    assert second["strike"].tolist() == [680.0, 685.0] and second["is_call"].tolist() == [0, 1]


def test_decoder_reports_data_and_heartbeat_times_including_filtered_records():
    es = LiveEsSource(SESSION, Config())
    dec = LiveDecoder("GLBX.MDP3", es=es)
    blob = (es_defs().tobytes() + trades([T + 1, T + 9], [px(6800.0)] * 2, iid=[ESH6, ESZ5]).tobytes()
            + heartbeats(np.array([T + 20])).tobytes())
    d = dec.decode(blob, "here")
    assert d.trades.shape[0] == 1 and d.data_ts == T + 9 and d.heartbeat_ts == T + 20 and d.first_ts == T + 1
    assert dec.system_counts == {"heartbeat": 1}


def test_api_key_is_read_from_the_environment_only(monkeypatch):
    monkeypatch.setenv("DATABENTO_API_KEY", TEST_KEY)
    assert api_key() == TEST_KEY
    monkeypatch.setenv("DATABENTO_API_KEY", "  ")
    with pytest.raises(LiveError, match="DATABENTO_API_KEY is not set"):
        api_key()


def test_key_redactor_scrubs_the_key_and_the_cram_response():
    r = KeyRedactor(TEST_KEY)
    rec = logging.LogRecord("databento.live.protocol", logging.DEBUG, __file__, 1,
                            "sending CRAM challenge response auth='%s' key=%s", (("ab" * 32) + "-QZXJW", TEST_KEY), None)
    assert r.filter(rec)
    msg = rec.getMessage()
    assert TEST_KEY not in msg and "QZXJW" not in msg and "ab" * 32 not in msg


def test_lazy_parse_selects_before_copying_and_equals_the_full_parse():
    recs = [trades([T + 1, T + 2, T + 3], [px(6800.0), 2**63 - 1, px(6801.0)], iid=[ESH6, ESH6, ESZ5]),
            mbp10([T + 2, T + 4], iid=[ESH6, ESZ5])]
    blob = es_defs().tobytes() + recs[0][:2].tobytes() + recs[1].tobytes() + recs[0][2:].tobytes()
    full, lazy = LiveEsSource(SESSION, Config()), LiveEsSource(SESSION, Config())
    p, q = parse_records(blob), parse_records(blob, lazy=True)
    assert q.trade_index is not None and q.trades.shape[0] == 0 and q.count == p.count
    for src, parsed in ((full, p), (lazy, q)):
        src.add_definitions(parsed.definitions)
    a = full.normalize(p.trades, "trades"), full.normalize(p.books, "mbp-10")
    b = lazy.normalize_index(q.trade_index, "trades"), lazy.normalize_index(q.book_index, "mbp-10")
    assert [x.tobytes() for x in a] == [x.tobytes() for x in b]
    assert a[0]["price"].tolist() == [px(6800.0)] and a[1]["ts_recv"].tolist() == [T + 2]
    assert full.trade_stats.to_dict() == lazy.trade_stats.to_dict()
    assert lazy.trade_stats.dropped == {"undef_price": 1} and lazy.trade_stats.filtered == {"other_instrument": 1}


def test_collector_asks_the_bulk_writer_to_pause_and_resumes_it_when_the_backlog_halves():
    c = RecordCollector(max_backlog_bytes=100)
    block = trades([T, T + 1], [px(6800.0)] * 2).tobytes()          # 96 bytes
    assert not c.write_block(block)
    assert c.write_block(block)                                     # 192 > 100: pause
    resumed = []
    c.pause(lambda: resumed.append(True))
    assert c.take(limit=96) and resumed == [] and c.backlog_bytes == 96     # 96 > 50: still paused
    assert c.take() and resumed == [True] and c.backlog_bytes == 0
