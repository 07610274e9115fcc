"""ES contract choice and the ES trades / MBP-10 streams (SPEC §3)."""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pytest

import bronze
from bronze import D, D_PREV, END, ESH6, ESZ5, SPREAD, START, es_definitions, mbp10, px, trades, utc_ns, write
from spymaster.calendar import et_ns, session_for
from spymaster.config import Config
from spymaster.errors import InstrumentError, MissingInputError
from spymaster.events import BOOK, TRADE, UNDEF_PRICE
from spymaster.sources import es as es_mod
from spymaster.sources.dbn import open_dbn
from spymaster.sources.lake import GLBX
from spymaster.sources.session import open_session

CFG = Config()


def _cfg(**kw) -> Config:
    return CFG.replace(**kw) if kw else CFG


def _all(stream) -> np.ndarray:
    parts = list(stream.chunks())
    return np.concatenate(parts) if parts else np.zeros(0, dtype=TRADE)


# ---------------------------------------------------------------------------------------- choice
def test_roll_rule_chooses_the_next_contract_after_the_roll_date(lake):
    bronze.standard_lake(lake)
    si = open_session(lake, D, CFG)  # ESZ5 expires 2025-12-19: roll date 12-11 is not after D
    assert si.es.raw_symbol == "ESH6" and si.es.instrument_id == ESH6
    assert si.es.contract.expiration == dt.date(2026, 3, 20) and si.es.expiration_source == "definition"
    assert "roll rule" in si.es.reason and not si.es.pinned
    assert si.manifest(with_hashes=False)["es_contract"]["roll_date"] == "2026-03-12"


def test_roll_rule_keeps_the_front_contract_before_its_roll_date():
    s = session_for(dt.date(2025, 12, 3))
    cands = [es_mod.EsCandidate("ESZ5", dt.date(2025, 12, 19), "definition", {dt.date(2025, 12, 3): (ESZ5,)}),
             es_mod.EsCandidate("ESH6", dt.date(2026, 3, 20), "definition", {dt.date(2025, 12, 3): (ESH6,)})]
    assert es_mod.choose_contract(s, cands, roll_days=8).raw_symbol == "ESZ5"
    assert es_mod.choose_contract(session_for(dt.date(2025, 12, 11)), cands, roll_days=8).raw_symbol == "ESH6"


def test_calendar_spreads_are_never_candidates(lake):
    bronze.standard_lake(lake)
    si = open_session(lake, D, CFG)
    assert {c.raw_symbol for c in si.es.candidates} == {"ESZ5", "ESH6"}  # not ESZ5-ESH6, not NQH6
    assert si.es.excluded_spreads == 2  # one spread definition per UTC day
    with pytest.raises(InstrumentError, match="pinned ES contract instrument.es_instrument='ESZ5-ESH6' is not among"):
        open_session(lake, D, _cfg(**{"instrument.es_instrument": "ESZ5-ESH6"}))


def test_a_spread_with_instrument_class_s_is_excluded_even_without_a_dash():
    defs = es_definitions([("ESZ5", 1, dt.date(2025, 12, 19), 0), ("ESH6", 2, dt.date(2026, 3, 20), 0)])
    defs["instrument_class"][1] = b"S"
    keep, spreads = es_mod.outright_rows(defs)
    assert keep["raw_symbol"].tolist() == [b"ESZ5"] and spreads == 1


def test_config_can_pin_the_es_contract(lake):
    bronze.standard_lake(lake)
    si = open_session(lake, D, _cfg(**{"instrument.es_instrument": "ESZ5"}))
    assert si.es.raw_symbol == "ESZ5" and si.es.pinned and "pinned" in si.es.reason
    assert len(_all(si.streams()[0])) == 2  # ESZ5's two session trades


def test_expiration_comes_from_the_definition_else_from_the_raw_symbol():
    s = session_for(D)
    defs = es_definitions([("ESH6", 2, dt.date(2026, 3, 13), 0), ("ESM6", 3, None, 0)])
    cands = {c.raw_symbol: c for c in es_mod.collect_candidates(s, {D: defs}, {})}
    assert (cands["ESH6"].expiration, cands["ESH6"].expiration_source) == (dt.date(2026, 3, 13), "definition")
    assert (cands["ESM6"].expiration, cands["ESM6"].expiration_source) == (dt.date(2026, 6, 19), "symbol")


def test_chosen_contract_without_session_trades_is_refused(lake):
    bronze.standard_lake(lake)
    for day in (D_PREV, D):  # keep only ESZ5 trades
        t = [et_ns(day if day == D else D_PREV, 10 if day == D else 19, 0)]
        write(lake, GLBX, "trades", day, trades(t, [px(6850)], 1, "B", ESZ5))
    with pytest.raises(InstrumentError, match="chosen ES contract ESH6 .* has no trades in the session") as e:
        open_session(lake, D, CFG)
    assert "glbx-mdp3-20251217.trades.dbn.zst" in str(e.value)


def test_no_outright_at_all_is_refused(lake):
    bronze.standard_lake(lake)
    for day in (D_PREV, D):
        write(lake, GLBX, "definition", day, es_definitions([("ESZ5-ESH6", SPREAD, dt.date(2025, 12, 19), 0)]))
    with pytest.raises(InstrumentError, match=r"no ES outright contract .* \(2 calendar spreads excluded\)"):
        open_session(lake, D, CFG)


def test_real_es_definitions_with_spreads_use_the_metadata_symbology(real_data):
    """The real ES.FUT file's two records are spreads; its mappings list the outrights."""
    h = open_dbn(real_data / "definitions" / "definition-glbx-es-futspread.dbn.zst")
    day = dt.date(2023, 8, 15)
    defs = np.concatenate(list(h.chunks(10)))
    keep, spreads = es_mod.outright_rows(defs)
    assert len(keep) == 0 and spreads == 2
    s = session_for(day)
    cands = es_mod.collect_candidates(s, {day: keep}, {day: [h]})
    syms = {c.raw_symbol for c in cands}
    assert {"ESU3", "ESZ3", "ESH4"} <= syms and not any("-" in x for x in syms)
    assert all(c.expiration_source == "symbol" for c in cands)
    choice = es_mod.choose_contract(s, cands, roll_days=8)
    assert choice.raw_symbol == "ESU3" and choice.contract.expiration == dt.date(2023, 9, 15)
    assert choice.instrument_id == h.ids_for("ESU3", day)[0]
    assert es_mod.choose_contract(session_for(dt.date(2023, 9, 8)), cands, roll_days=8).raw_symbol == "ESZ3"


def test_real_esu4_definitions_give_one_es_outright(real_data):
    h = open_dbn(real_data / "es_futures" / "ESU4_2024-07-01" / "futures_definition.dbn.zst")
    assert h.version == 1
    keep, _ = es_mod.outright_rows(np.concatenate(list(h.chunks(10))))
    day = dt.date(2024, 7, 1)
    cands = es_mod.collect_candidates(session_for(dt.date(2024, 7, 2)), {day: keep}, {day: [h]})
    assert [(c.raw_symbol, c.expiration, c.expiration_source, c.ids_by_day) for c in cands] == \
        [("ESU4", dt.date(2024, 9, 20), "definition", {day: (118,)})]  # NQU4 is not ES


def test_real_esu4_trades_replay_through_a_session(lake, real_data):
    """Real ESU4 trades (23:58-00:02 UTC) split into the two UTC-day files of session 2024-07-02."""
    src = real_data / "es_futures" / "ESU4_2024-07-01"
    recs = np.concatenate(list(open_dbn(src / "futures_trades_2024-07-01T23-58_2024-07-02T00-02.dbn.zst").chunks(1000)))
    defs = np.concatenate(list(open_dbn(src / "futures_definition.dbn.zst").chunks(10)))
    midnight = utc_ns(dt.date(2024, 7, 2))
    for day, part in ((dt.date(2024, 7, 1), recs[recs["ts_recv"] < midnight]),
                      (dt.date(2024, 7, 2), recs[recs["ts_recv"] >= midnight])):
        write(lake, GLBX, "trades", day, part)
        write(lake, GLBX, "definition", day, defs)
        write(lake, GLBX, "mbp-10", day, mbp10([], 118))
    bronze.write_minimal_opra(lake, dt.date(2024, 7, 2))
    si = open_session(lake, dt.date(2024, 7, 2), CFG)
    assert si.es.raw_symbol == "ESU4" and si.es.instrument_id == 118
    got = _all(si.stream(1))
    assert len(got) == 120 and got.tobytes() == recs.tobytes()


# ---------------------------------------------------------------------------------------- streams
def test_es_trades_are_the_chosen_contract_inside_the_session_window(lake):
    bronze.standard_lake(lake)
    si = open_session(lake, D, CFG)
    got = _all(si.stream(1))
    assert got.dtype == TRADE and len(got) == bronze.ES_KEPT_TRADES
    assert (got["instrument_id"] == ESH6).all()
    assert got["ts_recv"].min() == START + 1 and got["ts_recv"].max() == END  # (start, end]
    st = si.stream(1).stats
    assert st.filtered == {"outside_session": 3, "other_instrument": 3} and st.complete


def test_es_trades_with_undef_price_are_dropped_and_counted(lake):
    bronze.standard_lake(lake)
    si = open_session(lake, D, CFG)
    got = _all(si.stream(1))
    assert not (got["price"] == UNDEF_PRICE).any()
    assert si.stream(1).stats.dropped == {"undef_price": 1}
    assert si.manifest(with_hashes=False)["streams"]["es_trade"]["dropped"] == {"undef_price": 1}


def test_es_mbp10_is_the_chosen_contract_inside_the_session_window(lake):
    bronze.standard_lake(lake)
    si = open_session(lake, D, CFG)
    got = np.concatenate(list(si.stream(2).chunks()))
    assert got.dtype == BOOK and len(got) == bronze.ES_KEPT_BOOKS
    assert (got["instrument_id"] == ESH6).all() and got["ts_recv"].max() == END
    assert got["levels"]["bid_sz"][0].tolist() == list(range(10, 20))


def test_es_streams_are_identical_for_any_chunk_size(lake):
    bronze.standard_lake(lake)
    ref = None
    for n in (1, 2, 5, 100_000):
        si = open_session(lake, D, _cfg(**{"io.chunk_records": n}))
        got = tuple(np.concatenate(list(s.chunks())).tobytes() for s in si.streams())
        assert ref is None or got == ref
        ref = got


def test_es_instrument_ids_are_resolved_per_utc_day(lake):
    bronze.standard_lake(lake)
    # on 12-16 ESH6 had id 201 (and id 200 was another instrument)
    write(lake, GLBX, "definition", D_PREV, es_definitions([("ESH6", 201, dt.date(2026, 3, 20), utc_ns(D_PREV))]))
    write(lake, GLBX, "trades", D_PREV, trades([START + 5, START + 6], [px(6850), px(6851)], 1, "B", [201, ESH6]))
    si = open_session(lake, D, CFG)
    assert si.es.ids_by_day == {D_PREV: (201,), D: (ESH6,)}
    got = _all(si.stream(1))
    assert got["instrument_id"].tolist()[:1] == [201] and (got["instrument_id"][1:] == ESH6).all()


def test_es_definitions_may_come_from_symbology_when_the_definition_file_is_absent(lake):
    bronze.standard_lake(lake)
    lake.find_bronze(GLBX, "definition", D_PREV).unlink()
    recs = np.concatenate(list(open_dbn(lake.find_bronze(GLBX, "trades", D_PREV)).chunks(100)))
    write(lake, GLBX, "trades", D_PREV, recs, mappings=bronze.mappings_for({"ESH6": ESH6, "ESZ5": ESZ5}, D_PREV))
    si = open_session(lake, D, CFG)
    assert si.es.raw_symbol == "ESH6" and len(_all(si.stream(1))) == bronze.ES_KEPT_TRADES


def test_missing_definition_file_without_symbology_is_refused(lake):
    bronze.standard_lake(lake)
    p = lake.find_bronze(GLBX, "definition", D_PREV)
    p.unlink()
    with pytest.raises(MissingInputError, match="ES definition file") as e:
        open_session(lake, D, CFG)
    assert str(p) in str(e.value)


def test_uncompressed_dbn_is_accepted_wherever_zst_is(lake, tmp_path):
    bronze.standard_lake(lake, compressed=False)
    si = open_session(lake, D, CFG)
    assert all(f.compression == "none" for f in si.files)
    other = bronze.standard_lake(type(lake).at(tmp_path / "zst"))
    sz = open_session(other, D, CFG)
    for a, b in zip(si.streams(), sz.streams()):
        assert np.concatenate(list(a.chunks())).tobytes() == np.concatenate(list(b.chunks())).tobytes()
    shutil.rmtree(tmp_path / "zst")


def test_definitions_received_after_the_session_end_are_not_candidates(lake):
    bronze.standard_lake(lake)
    rows = [("ESZ5", ESZ5, dt.date(2025, 12, 19), utc_ns(D, 0, 0, 1)), ("ESH6", ESH6, dt.date(2026, 3, 20), utc_ns(D)),
            ("ESM6", 500, dt.date(2026, 6, 19), END + 1)]
    write(lake, GLBX, "definition", D, es_definitions(rows))
    si = open_session(lake, D, CFG)
    assert "ESM6" not in {c.raw_symbol for c in si.es.candidates}


def test_take_rows_equals_boolean_indexing_of_wide_records():
    import numpy as np

    from spymaster.events import BOOK
    from spymaster.sources.es import take_rows

    rng = np.random.default_rng(3)
    a = np.frombuffer(rng.integers(0, 256, 50 * BOOK.itemsize, dtype=np.uint8).tobytes(), dtype=BOOK)
    mask = rng.random(50) < 0.6
    got = take_rows(a[3:40], mask[3:40])
    assert got.dtype == BOOK and got.tobytes() == a[3:40][mask[3:40]].tobytes()
