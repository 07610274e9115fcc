"""ES contract months, the roll rule and OCC symbols (SPEC §3)."""

from __future__ import annotations

import datetime as dt

from spymaster.instruments import (FutureContract, choose_by_roll_rule, es_expiration_from_symbol, format_occ,
                                   is_spread_symbol, parse_occ)


def test_es_symbol_expiration_is_third_friday_with_year_resolved_near_d():
    assert es_expiration_from_symbol("ESZ5", dt.date(2025, 12, 17)) == dt.date(2025, 12, 19)
    assert es_expiration_from_symbol("ESH6", dt.date(2025, 12, 17)) == dt.date(2026, 3, 20)
    assert es_expiration_from_symbol("ESH1", dt.date(2020, 12, 28)) == dt.date(2021, 3, 19)


def test_roll_rule_picks_nearest_expiration_before_its_roll_date():
    z5 = FutureContract("ESZ5", 1, dt.date(2025, 12, 19))
    h6 = FutureContract("ESH6", 2, dt.date(2026, 3, 20))
    assert choose_by_roll_rule(dt.date(2025, 12, 10), [z5, h6], 8) == z5
    assert choose_by_roll_rule(dt.date(2025, 12, 11), [z5, h6], 8) == h6  # roll date Dec 11: D is not earlier


def test_spreads_are_recognised_by_dash():
    assert is_spread_symbol("ESZ5-ESH6") and not is_spread_symbol("ESZ5")


def test_occ_symbol_round_trip():
    o = parse_occ("SPY   251217C00680000")
    assert (o.root, o.expiration, o.is_call, o.strike) == ("SPY", dt.date(2025, 12, 17), True, 680.0)
    assert format_occ("SPY", dt.date(2025, 12, 17), False, 680.5) == "SPY   251217P00680500"
