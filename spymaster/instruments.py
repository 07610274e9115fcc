"""Instrument vocabulary: ES contract months, the calendar roll rule, OCC option symbols.

Pure functions shared by the sources (which choose the ES contract and parse option
definitions) and the synthetic market (which must make the contract the roll rule picks the
most active one).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Iterable

MONTH_CODES = {"F": 1, "G": 2, "H": 3, "J": 4, "K": 5, "M": 6, "N": 7, "Q": 8, "U": 9, "V": 10, "X": 11, "Z": 12}
CODE_OF_MONTH = {v: k for k, v in MONTH_CODES.items()}
_ES_OUTRIGHT = re.compile(r"^(?P<root>[A-Z]{1,3}?)(?P<month>[FGHJKMNQUVXZ])(?P<year>\d{1,2})$")
_OCC = re.compile(r"^(?P<root>.{6})(?P<ymd>\d{6})(?P<right>[CP])(?P<strike>\d{8})$")


def third_friday(year: int, month: int) -> dt.date:
    """The third Friday of a month (ES / SPX quarterly expiration day)."""
    first = dt.date(year, month, 1)
    offset = (4 - first.weekday()) % 7
    return first + dt.timedelta(days=offset + 14)


def is_spread_symbol(raw_symbol: str) -> bool:
    """Calendar spreads carry a '-' in the raw symbol (``ESZ5-ESH6``)."""
    return "-" in raw_symbol


def es_expiration_from_symbol(raw_symbol: str, session_date: dt.date) -> dt.date:
    """Expiration date of an ES outright from its raw symbol (``ESZ5`` → third Friday Dec 2025).

    A one-digit year resolves to the nearest year not before ``session_date`` − 1 year.
    """
    m = _ES_OUTRIGHT.match(raw_symbol.strip())
    if not m:
        raise ValueError(f"not an ES outright symbol: {raw_symbol!r}")
    month = MONTH_CODES[m["month"]]
    digits = m["year"]
    floor_year = session_date.year - 1
    if len(digits) == 2:
        year = 2000 + int(digits)
    else:
        year = floor_year - floor_year % 10 + int(digits)
        # the contract expires in (year, month); it must not be before session_date - 1 year
        while dt.date(year, month, 28) < dt.date(floor_year, session_date.month, min(session_date.day, 28)):
            year += 10
    return third_friday(year, month)


def es_symbol(year: int, month: int, root: str = "ES") -> str:
    """``es_symbol(2025, 12)`` → ``ESZ5``."""
    return f"{root}{CODE_OF_MONTH[month]}{year % 10}"


@dataclass(frozen=True)
class FutureContract:
    raw_symbol: str
    instrument_id: int
    expiration: dt.date  # ET date

    def roll_date(self, roll_days: int) -> dt.date:
        return self.expiration - dt.timedelta(days=roll_days)


def choose_by_roll_rule(session_date: dt.date, contracts: Iterable[FutureContract], roll_days: int) -> FutureContract | None:
    """The outright with the nearest expiration such that ``session_date`` < its roll date.

    Spreads must already be excluded. Ties (same expiration) go to the lower instrument_id so
    the choice is deterministic. None if no contract qualifies.
    """
    eligible = [c for c in contracts if session_date < c.roll_date(roll_days)]
    if not eligible:
        return None
    return min(eligible, key=lambda c: (c.expiration, c.instrument_id))


def front_month(session_date: dt.date, roll_days: int = 8) -> tuple[int, int]:
    """(year, month) of the quarterly ES contract the roll rule picks for ``session_date``."""
    y, m = session_date.year, session_date.month
    while True:
        qm = ((m - 1) // 3 + 1) * 3
        exp = third_friday(y, qm)
        if session_date < exp - dt.timedelta(days=roll_days):
            return y, qm
        m = qm + 1
        if m > 12:
            m, y = 1, y + 1


@dataclass(frozen=True)
class OccSymbol:
    root: str
    expiration: dt.date
    is_call: bool
    strike: float  # SPY $

    def __str__(self) -> str:
        return format_occ(self.root, self.expiration, self.is_call, self.strike)


def parse_occ(raw_symbol: str) -> OccSymbol:
    """``SPY   251217C00680000`` → OccSymbol('SPY', 2025-12-17, call, 680.0)."""
    m = _OCC.match(raw_symbol)
    if not m:
        raise ValueError(f"not an OCC option symbol: {raw_symbol!r}")
    ymd = m["ymd"]
    exp = dt.date(2000 + int(ymd[:2]), int(ymd[2:4]), int(ymd[4:6]))
    return OccSymbol(m["root"].rstrip(), exp, m["right"] == "C", int(m["strike"]) / 1000.0)


def format_occ(root: str, expiration: dt.date, is_call: bool, strike: float) -> str:
    """The 21-character OCC symbol: root padded to 6, YYMMDD, C/P, strike × 1000 in 8 digits."""
    return f"{root:<6}{expiration:%y%m%d}{'C' if is_call else 'P'}{int(round(strike * 1000)):08d}"
