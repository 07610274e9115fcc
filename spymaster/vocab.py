"""Enumerations of the Gold schema and the integer codes kernels use for them.

Kernels return small integer codes; the Gold sink turns them into dictionary-encoded strings.
A code is the index of the name in its tuple.
"""

from __future__ import annotations

import functools

LEVEL_KINDS = ("PM_HIGH", "PM_LOW", "OR_HIGH", "OR_LOW", "SESSION_HIGH", "SESSION_LOW", "SMA_200", "SMA_400",
               "VWAP", "STRIKE", "CALL_WALL", "PUT_WALL", "GAMMA_FLIP", "ROUND")
PRICE_KEYED_KINDS = ("STRIKE", "ROUND")      # level_id = KIND@PRICE (two decimals)
OPTION_KINDS = ("STRIKE", "CALL_WALL", "PUT_WALL", "GAMMA_FLIP")
WEAK_RUNWAY_KINDS = ("ROUND", "STRIKE")       # every other kind is "strong" (SPEC §9)

# Directions: +1 UP (resistance test, approached from below), -1 DOWN (support test).
UP = 1
DOWN = -1
DIRECTIONS = {UP: "UP", DOWN: "DOWN"}

BARRIER_STATES = ("VACUUM", "CONSUMED", "WALL", "ABSORPTION", "WEAK", "NEUTRAL")
B_VACUUM, B_CONSUMED, B_WALL, B_ABSORPTION, B_WEAK, B_NEUTRAL = range(6)

FUEL_EFFECTS = ("AMPLIFY", "DAMPEN", "NEUTRAL")
F_AMPLIFY, F_DAMPEN, F_NEUTRAL = range(3)

SWEEP_DIRECTIONS = ("UP", "DOWN", "NONE")   # code 0 buy run, 1 sell run, 2 none
S_UP, S_DOWN, S_NONE = range(3)

SIGNALS = ("BREAK", "REJECT", "CONTESTED", "NEUTRAL")
CONFIDENCES = ("HIGH", "MEDIUM", "LOW")
RUNWAY_QUALITIES = ("CLEAR", "OBSTRUCTED")
OUTCOMES = ("BREAK", "BOUNCE", "CHOP")


@functools.lru_cache(maxsize=65536)
@functools.lru_cache(maxsize=4096)
def level_id(kind: str, key_price: float | None = None) -> str:
    """``ROUND@680.00`` for price-keyed kinds (the key is the SPY strike / round price), else the kind.
    Memoized: the same ids recur every minute."""
    if kind in PRICE_KEYED_KINDS:
        if key_price is None:
            raise ValueError(f"{kind} needs a price")
        return f"{kind}@{key_price:.2f}"
    return kind
