"""Labels (SPEC §10): first passage BREAK / BOUNCE / CHOP over [t, t + 300 s] of ES trades."""

from __future__ import annotations

import numpy as np

from spymaster.events import EventBatch, KIND_TRADE, make_trades
from spymaster.touches.labels import LabelBook

S = 1_000_000_000
T = 1_765_982_400 * S


def _feed(book: LabelBook, secs, spy_prices):
    tr = make_trades([T + int(s * S) for s in secs], [p * 10 for p in spy_prices], [1] * len(secs), "B")
    n = len(secs)
    book.apply(EventBatch(np.full(n, KIND_TRADE, np.uint8), np.arange(n), tr["ts_recv"].copy(), trades=tr), 0, n)


def _one(level=680.0, direction=1, spot=679.9, secs=(), prices=(), seen=T + 301 * S):
    book = LabelBook(300, 0.20, 10.0)
    book.add(7, T, level, direction, spot)
    _feed(book, secs, prices)
    (lab,) = book.resolve(seen)
    return lab


def test_break_when_price_first_goes_threshold_through_the_level():
    lab = _one(secs=[1, 2, 3], prices=[680.05, 680.20, 679.0])
    assert lab.outcome == "BREAK" and lab.label_complete


def test_bounce_when_price_first_moves_threshold_further_from_the_level_than_spot():
    lab = _one(secs=[1, 2, 3], prices=[679.80, 679.70, 680.5])
    assert lab.outcome == "BOUNCE"


def test_first_passage_order_decides():
    assert _one(secs=[1, 2], prices=[679.70, 680.30]).outcome == "BOUNCE"
    assert _one(secs=[1, 2], prices=[680.30, 679.70]).outcome == "BREAK"


def test_chop_when_neither_threshold_is_reached():
    lab = _one(secs=[10, 200], prices=[680.10, 679.75])
    assert lab.outcome == "CHOP"
    assert lab.future_price_5min == 679.75


def test_down_direction_mirrors_the_rules():
    assert _one(level=680.0, direction=-1, spot=680.1, secs=[1], prices=[679.8]).outcome == "BREAK"
    assert _one(level=680.0, direction=-1, spot=680.1, secs=[1], prices=[680.3]).outcome == "BOUNCE"


def test_path_is_inclusive_of_t_plus_horizon_and_excludes_later_trades():
    lab = _one(secs=[300, 300.000000001], prices=[680.25, 679.0], seen=T + 301 * S)
    assert lab.outcome == "BREAK" and lab.future_price_5min == 680.25
    assert abs(lab.excursion_max - 0.25) < 1e-9 and abs(lab.excursion_min - 0.25) < 1e-9


def test_excursions_are_signed_max_and_min_of_d_times_p_minus_l():
    lab = _one(direction=-1, level=680.0, spot=680.05, secs=[1, 2, 3], prices=[680.1, 679.95, 680.15])
    assert abs(lab.excursion_max - 0.05) < 1e-9 and abs(lab.excursion_min + 0.15) < 1e-9


def test_empty_path_is_chop_with_null_excursions_and_spot_as_future_price():
    lab = _one(spot=679.9)
    assert (lab.outcome, lab.excursion_max, lab.excursion_min, lab.future_price_5min) == ("CHOP", None, None, 679.9)


def test_data_ending_before_the_horizon_gives_an_incomplete_label():
    book = LabelBook(300, 0.20, 10.0)
    book.add(1, T, 680.0, 1, 679.9)
    _feed(book, [5], [680.25])
    assert book.resolve(T + 300 * S) == []            # an event exactly at t + 300 s is not past the horizon
    (lab,) = book.resolve(None)
    assert lab.outcome == "BREAK" and not lab.label_complete


def test_threshold_boundary_is_inclusive():
    assert _one(secs=[1], prices=[680.20]).outcome == "BREAK"
    assert _one(secs=[1], prices=[680.19]).outcome == "CHOP"
