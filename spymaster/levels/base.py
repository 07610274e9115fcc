"""Level values as tested on a bar (SPEC §5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from spymaster.vocab import WEAK_RUNWAY_KINDS, level_id as make_level_id


class Level(NamedTuple):
    """One testable level: kind, stable id, value on the SPY axis ($) and, for price-keyed and
    option kinds, the key (the SPY strike / round price, $) the id is built from.

    An immutable tuple (~60 are built per minute in the detection window; a tuple is 3× cheaper
    to build than a frozen dataclass)."""

    kind: str
    level_id: str
    price: float
    key: float | None = None

    @staticmethod
    def of(kind: str, price: float, key: float | None = None) -> "Level":
        return Level(kind, make_level_id(kind, key), float(price), None if key is None else float(key))


@dataclass
class LevelSet:
    """Every level testable on the bar starting at ``at_ns``, in a deterministic order."""

    at_ns: int
    levels: list[Level] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.levels = sorted(self.levels, key=lambda lv: lv.level_id)
        self.prices = np.array([lv.price for lv in self.levels], dtype=np.float64)
        self.strong = np.array([lv.kind not in WEAK_RUNWAY_KINDS for lv in self.levels], dtype=bool)
        self.strike = np.array([lv.kind == "STRIKE" for lv in self.levels], dtype=bool)

    def __len__(self) -> int:
        return len(self.levels)

    def by_id(self) -> dict[str, Level]:
        return {lv.level_id: lv for lv in self.levels}
