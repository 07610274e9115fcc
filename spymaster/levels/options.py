"""Option-derived levels (STRIKE, CALL_WALL, PUT_WALL, GAMMA_FLIP) from the fuel engine (SPEC §5, §8).

Each sits on the axis at its SPY strike (or SPY price) plus the basis as of the query; its
level_id keeps the SPY key (``STRIKE@681.00``). All are absent while the basis is unknown.
"""

from __future__ import annotations

from spymaster.levels.base import Level


class OptionLevelSource:
    """``fuel.levels(t)`` memoized until the fuel engine applies more events.

    A bar close at t and the level snapshot of the minute starting at t query the same state;
    the GAMMA_FLIP grid is the costly part (~0.6 ms), so it is computed once. The replay engine
    calls :meth:`invalidate` whenever it applies events.
    """

    def __init__(self, fuel) -> None:
        self.fuel = fuel
        self._key: int | None = None
        self._value = None

    def invalidate(self) -> None:
        self._key = None

    def at(self, t_ns: int):
        if self._key != t_ns:
            self._value = self.fuel.levels(t_ns)
            self._key = t_ns
        return self._value


def option_levels(source: OptionLevelSource, at_ns: int) -> list[Level]:
    """The option levels testable on a bar starting at ``at_ns`` (state as of then)."""
    return [Level(kind, lid, price, key if kind == "STRIKE" else None)
            for kind, lid, key, price in source.at(at_ns).items()]


def option_levels_now(source: OptionLevelSource, t_ns: int) -> dict[str, float]:
    """Axis prices of CALL_WALL / PUT_WALL / GAMMA_FLIP at ``t_ns`` (absent when inactive)."""
    lv = source.at(t_ns)
    out = {}
    for kind, price in (("CALL_WALL", lv.call_wall_price), ("PUT_WALL", lv.put_wall_price),
                        ("GAMMA_FLIP", lv.gamma_flip_price)):
        if price is not None:
            out[kind] = float(price)
    return out
