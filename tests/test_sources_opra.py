"""SPY 0DTE option trades from OPRA DBN, joined to their definitions (SPEC §3, §8)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

import bronze
from bronze import C680, C685, D, D_PREV, P675, P680, opra_definitions, px, trades, write
from spymaster.calendar import et_ns, session_for
from spymaster.config import Config
from spymaster.errors import MissingInputError
from spymaster.events import KIND_OPTION, OPTION
from spymaster.sources import opra as opra_mod
from spymaster.sources.dbn import open_dbn
from spymaster.sources.lake import OPRA
from spymaster.sources.session import open_session
from spymaster.synth.dbnfile import write_dbn

CFG = Config()


def _options(lake, cfg=CFG):
    si = open_session(lake, D, cfg)
    parts = list(si.stream(KIND_OPTION).chunks())
    return si, (np.concatenate(parts) if parts else np.zeros(0, OPTION))


def test_session_contracts_are_the_spy_contracts_expiring_on_d(lake):
    bronze.standard_lake(lake)
    si, _ = _options(lake)
    c = si.contracts
    assert c.raw_symbols == [C680, P680, C685, P675]  # first appearance; not 251218, not QQQ
    assert c.strike.tolist() == [680.0, 680.0, 685.0, 675.0] and c.is_call.tolist() == [1, 0, 1, 0]
    assert si.manifest(with_hashes=False)["options"]["contracts"] == {
        "count": 4, "calls": 2, "puts": 2, "strike_min": 675.0, "strike_max": 685.0}


def test_option_records_carry_contract_strike_right_price_and_size(lake):
    bronze.standard_lake(lake)
    si, got = _options(lake)
    assert got.dtype == OPTION and len(got) == bronze.OPTION_KEPT
    assert got["contract"].tolist() == [0, 1, 2, 3, 0]
    assert got["strike"].tolist() == [680.0, 680.0, 685.0, 675.0, 680.0]
    assert got["is_call"].tolist() == [1, 0, 1, 0, 1]
    assert got["price"].tolist() == [1.25, 0.95, 0.45, 0.70, 1.10]
    assert got["instrument_id"].tolist() == [1001, 1002, 1005, 1007, 1001]
    assert (np.diff(got["ts_recv"]) >= 0).all()


def test_option_side_is_signed_and_unknown_sides_ask_for_the_tick_rule(lake):
    bronze.standard_lake(lake)
    _, got = _options(lake)
    assert got["side"].tolist() == [0, 1, -1, 1, 0]
    assert got["tick_rule"].tolist() == [1, 0, 0, 0, 1]


def test_trade_uses_the_latest_definition_with_ts_recv_at_or_before_its_own(lake):
    bronze.standard_lake(lake)
    si, got = _options(lake)
    # 1005 traded at 10:00 (before its 11:00 definition: dropped) and at exactly 11:00 (kept)
    assert got["ts_recv"][got["instrument_id"] == 1005].tolist() == [et_ns(D, 11, 0)]
    # 1007 was a 12-18 contract until 12:00, then (delete + add) the 0DTE P675
    assert got["ts_recv"][got["instrument_id"] == 1007].tolist() == [et_ns(D, 12, 0) + 1]
    assert si.stream(KIND_OPTION).stats.filtered["not_0dte"] == 3  # 1003, 1004 (QQQ), 1007 before 12:00


def test_option_trades_without_a_definition_are_dropped_and_counted(lake):
    bronze.standard_lake(lake)
    si, got = _options(lake)
    assert 1006 not in got["instrument_id"].tolist()
    assert si.stream(KIND_OPTION).stats.dropped["no_definition"] == 2  # 1005 too early, 1006 never defined
    assert si.manifest(with_hashes=False)["streams"]["option_trade"]["dropped"]["no_definition"] == 2


def test_a_deleted_definition_drops_later_trades(lake):
    bronze.standard_lake(lake)
    si, got = _options(lake)
    assert not ((got["instrument_id"] == 1002) & (got["ts_recv"] > et_ns(D, 15, 0))).any()
    assert si.stream(KIND_OPTION).stats.dropped["definition_deleted"] == 1


def test_option_trades_with_undef_price_are_dropped_and_counted(lake):
    bronze.standard_lake(lake)
    si, got = _options(lake)
    assert np.isfinite(got["price"]).all() and got["price"].max() < 10
    assert si.stream(KIND_OPTION).stats.dropped["undef_price"] == 1


def test_option_stream_is_identical_for_any_chunk_size(lake):
    bronze.standard_lake(lake)
    ref = None
    for n in (1, 2, 3, 7, 100_000):
        _, got = _options(lake, CFG.replace(**{"io.chunk_records": n}))
        assert ref is None or got.tobytes() == ref
        ref = got.tobytes()


def test_instrument_ids_are_per_utc_day(lake):
    """On 12-16 id 1001 is the P680 (a 0DTE contract of D listed the day before); on D it is the C680."""
    bronze.standard_lake(lake)
    write(lake, OPRA, "definition", D_PREV, opra_definitions([{"raw": P680, "iid": 1001, "ts": et_ns(D_PREV, 6, 30)}]))
    write(lake, OPRA, "trades", D_PREV, trades([et_ns(D_PREV, 16, 0), et_ns(D_PREV, 17, 30)], [px(2.0), px(2.1)],
                                                1, "N", 1001))
    si, got = _options(lake)
    assert si.contracts.raw_symbols[:2] == [P680, C680]  # the 12-16 file comes first
    assert got["ts_recv"][0] == et_ns(D_PREV, 17, 30) and got["contract"][0] == si.contracts.index[P680]
    assert got["contract"][1] == si.contracts.index[C680]
    assert si.stream(KIND_OPTION).stats.filtered["outside_session"] == 1  # the 16:00 trade of 12-16


def test_opra_trades_of_another_utc_day_need_their_definitions(lake):
    bronze.standard_lake(lake)
    write(lake, OPRA, "trades", D_PREV, trades([et_ns(D_PREV, 17, 30)], [px(2.0)], 1, "N", 1001))
    with pytest.raises(MissingInputError, match="OPRA definition file for the trades file") as e:
        open_session(lake, D, CFG)
    assert "opra-pillar-20251216.definition.dbn.zst" in str(e.value)


def test_opra_trades_file_of_d_without_its_definitions_is_refused(lake):
    bronze.standard_lake(lake)
    lake.find_bronze(OPRA, "definition", D).unlink()
    with pytest.raises(MissingInputError, match="trades and definition come as a pair") as e:
        open_session(lake, D, CFG)
    assert "opra-pillar-20251217.definition.dbn.zst" in str(e.value)


def test_undefined_multiplier_counts_as_100_and_other_multipliers_are_excluded(tmp_path):
    s = session_for(D)
    defs = opra_definitions([{"raw": C680, "iid": 1, "ts": 0},  # i32 max: undefined
                             {"raw": P680, "iid": 2, "ts": 0, "multiplier": 100},
                             {"raw": C685, "iid": 3, "ts": 0, "multiplier": 10}])
    h = _header_of(tmp_path, defs)
    contracts, _, stats = opra_mod.load_definitions([(D, h)], s, root="SPY", multiplier=100.0, count=10)
    assert contracts.raw_symbols == [C680, P680] and stats.skipped == {"nonstandard_multiplier": 1}


def test_strike_is_strike_price_over_1e9_and_expiry_comes_from_the_occ_symbol(tmp_path):
    s = session_for(D)
    defs = opra_definitions([{"raw": C680, "iid": 1, "ts": 0, "strike": 680_500_000_000},
                             {"raw": P680, "iid": 2, "ts": 0, "expiration": dt.date(2025, 12, 18)}])
    contracts, _, stats = opra_mod.load_definitions([(D, _header_of(tmp_path, defs))], s, root="SPY", multiplier=100.0, count=10)
    assert contracts.strike.tolist() == [680.5, 680.0]
    assert stats.anomalies == {"expiration_disagrees_with_symbol": 1}


def test_real_opra_definition_is_classified(real_data):
    """The real AAPL call (expiration midnight UTC, contract_multiplier i32 max) is a 0DTE contract of its expiry."""
    h = open_dbn(real_data / "format_coverage" / "databento-python" / "OPRA.PILLAR" / "test_data.definition.dbn.zst")
    s = session_for(dt.date(2025, 2, 21))
    contracts, tables, _ = opra_mod.load_definitions([(dt.date(2025, 2, 20), h)], s, root="AAPL", multiplier=100.0,
                                                     count=10)
    assert contracts.to_list() == [{"contract": 0, "raw_symbol": "AAPL  250221C00250000", "strike": 250.0,
                                    "is_call": True}]
    assert tables[dt.date(2025, 2, 20)].uids.tolist() == [16783963]


def _header_of(tmp_path, defs: np.ndarray):
    p = tmp_path / "defs.dbn"
    write_dbn(p, defs, dataset="OPRA.PILLAR", schema="definition", start_ns=0)
    return open_dbn(p)
