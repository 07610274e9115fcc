"""Runway (SPEC §9)."""

from __future__ import annotations

from spymaster.config import Config
from spymaster.engines.runway import runway
from spymaster.levels.base import Level, LevelSet

CFG = Config().runway


def _levels(*pairs):
    return LevelSet(0, [Level.of(k, p, key=p if k in ("ROUND", "STRIKE") else None) for k, p in pairs])


def test_next_strong_level_in_the_touch_direction():
    ls = _levels(("VWAP", 681.0), ("ROUND", 680.5), ("PM_HIGH", 682.0))
    r = runway(680.0, 1, "BREAK", ls, CFG)
    assert (r.direction, r.next_level_price, r.distance, r.quality) == ("UP", 681.0, 1.0, "CLEAR")


def test_reject_looks_the_other_way():
    ls = _levels(("VWAP", 681.0), ("PM_LOW", 679.0))
    r = runway(680.0, 1, "REJECT", ls, CFG)
    assert (r.direction, r.next_level_price) == ("DOWN", 679.0)


def test_levels_closer_than_five_cents_are_not_beyond():
    ls = _levels(("VWAP", 680.04), ("PM_HIGH", 680.05))
    assert runway(680.0, 1, "NEUTRAL", ls, CFG).next_level_price == 680.05


def test_obstructed_by_a_strike_strictly_between_or_a_short_distance():
    assert runway(680.0, 1, "BREAK", _levels(("VWAP", 682.0), ("STRIKE", 681.0)), CFG).quality == "OBSTRUCTED"
    assert runway(680.0, 1, "BREAK", _levels(("VWAP", 680.49)), CFG).quality == "OBSTRUCTED"
    assert runway(680.0, 1, "BREAK", _levels(("VWAP", 680.50)), CFG).quality == "CLEAR"


def test_no_next_level_is_clear_with_nulls():
    r = runway(680.0, -1, "CONTESTED", _levels(("ROUND", 679.0)), CFG)
    assert (r.direction, r.next_level_price, r.distance, r.quality) == ("DOWN", None, None, "CLEAR")
