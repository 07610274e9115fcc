"""ROUND levels: every multiple of ``round_step`` within ``round_band`` of the previous bar's close."""

from __future__ import annotations

import math

from spymaster.levels.base import Level

EPS = 1e-9


def round_levels(prev_close: float | None, step: float, band: float) -> list[Level]:
    """ROUND@K for K = n·step with |K − prev_close| ≤ band (inclusive, 1e-9 tolerance); none without a previous bar."""
    if prev_close is None:
        return []
    lo = math.ceil((prev_close - band - EPS) / step)
    hi = math.floor((prev_close + band + EPS) / step)
    out = []
    for n in range(lo, hi + 1):
        k = round(n * step, 9)
        if abs(k - prev_close) <= band + EPS:
            out.append(Level.of("ROUND", k, key=k))
    return out
