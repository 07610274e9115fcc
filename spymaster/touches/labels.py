"""The pending-label queue (SPEC §10): the only forward-looking computation.

A touch decided at t (axis level L, approach direction d = +1 UP / −1 DOWN, spot = bar close)
watches the chosen contract's ES trades with ts_recv in [t, t + horizon]. Per trade (kernel):
x = d·(p − L); the first trade with x ≥ threshold makes it BREAK, the first with
d·(p − spot) ≤ −threshold makes it BOUNCE (if one trade meets both, BREAK); excursion_max/min
are max/min x over the path; future_price_5min is the last path price (the spot if the path is
empty; an empty path is CHOP). A label resolves when the replay sees an event with ts_recv >
t + horizon (``label_complete`` = true); at end of data the rest resolve incomplete.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from spymaster.events import KIND_TRADE, PRICE_SCALE, EventBatch

EPS = 1e-9
OUT_NONE, OUT_BREAK, OUT_BOUNCE = 0, 1, 2
OUTCOME_NAMES = {OUT_NONE: "CHOP", OUT_BREAK: "BREAK", OUT_BOUNCE: "BOUNCE"}


@numba.njit(cache=True, nogil=True)
def _label_kernel(kind, pos, lo, hi, ts, price, scale, n, t0, t1, lvl, d, spot, thr,
                  outcome, ex_max, ex_min, n_path, last_px):  # pragma: no cover
    for i in range(lo, hi):
        if kind[i] != KIND_TRADE:
            continue
        p = pos[i]
        tt = ts[p]
        px = price[p] / scale
        for j in range(n):
            if tt < t0[j] or tt > t1[j]:
                continue
            x = d[j] * (px - lvl[j])
            if n_path[j] == 0:
                ex_max[j] = x
                ex_min[j] = x
            else:
                if x > ex_max[j]:
                    ex_max[j] = x
                if x < ex_min[j]:
                    ex_min[j] = x
            n_path[j] += 1
            last_px[j] = px
            if outcome[j] == 0:
                if x >= thr - 1e-9:
                    outcome[j] = 1
                elif d[j] * (px - spot[j]) <= -thr + 1e-9:
                    outcome[j] = 2


@dataclass(frozen=True)
class Label:
    key: int                  # the caller's row key
    outcome: str
    future_price_5min: float
    excursion_max: float | None
    excursion_min: float | None
    label_complete: bool


class LabelBook:
    """Pending labels as arrays (component); Python touches them only per touch, never per trade."""

    _FIELDS = (("key", np.int64), ("t0", np.int64), ("t1", np.int64), ("lvl", np.float64), ("d", np.float64),
               ("spot", np.float64), ("outcome", np.int64), ("ex_max", np.float64), ("ex_min", np.float64),
               ("n_path", np.int64), ("last_px", np.float64))

    def __init__(self, horizon_s: float, threshold: float, ratio: float, capacity: int = 64) -> None:
        self.horizon_ns = int(round(horizon_s * 1e9))
        self.threshold = float(threshold)
        self.scale = float(PRICE_SCALE * ratio)
        self.n = 0
        self.a = {name: np.zeros(capacity, dt) for name, dt in self._FIELDS}

    def __len__(self) -> int:
        return self.n

    def add(self, key: int, t_ns: int, level: float, direction: int, spot: float) -> None:
        if self.n == self.a["key"].shape[0]:
            self.a = {k: np.concatenate([v, np.zeros_like(v)]) for k, v in self.a.items()}
        j, a = self.n, self.a
        a["key"][j], a["t0"][j], a["t1"][j] = key, t_ns, t_ns + self.horizon_ns
        a["lvl"][j], a["d"][j], a["spot"][j] = level, direction, spot
        a["outcome"][j], a["ex_max"][j], a["ex_min"][j], a["n_path"][j], a["last_px"][j] = 0, 0.0, 0.0, 0, spot
        self.n += 1

    def apply(self, batch: EventBatch, lo: int, hi: int) -> None:
        if self.n == 0:
            return
        a, t = self.a, batch.trades
        _label_kernel(batch.kind, batch.pos, lo, hi, t["ts_recv"], t["price"], self.scale, self.n, a["t0"], a["t1"],
                      a["lvl"], a["d"], a["spot"], self.threshold, a["outcome"], a["ex_max"], a["ex_min"], a["n_path"],
                      a["last_px"])

    def next_deadline(self) -> int | None:
        """The earliest t + horizon among pending labels (a label resolves at the first event after it)."""
        return int(self.a["t1"][: self.n].min()) if self.n else None

    def resolve(self, seen_ts: int | None) -> list[Label]:
        """Resolve labels whose horizon ended before ``seen_ts`` (complete); ``None`` = end of data (all, incomplete)."""
        if self.n == 0:
            return []
        a = self.a
        t1 = a["t1"][: self.n]
        done = np.ones(self.n, bool) if seen_ts is None else (t1 < seen_ts)
        if not done.any():
            return []
        out = []
        for j in np.flatnonzero(done).tolist():
            empty = a["n_path"][j] == 0
            out.append(Label(int(a["key"][j]), OUTCOME_NAMES[int(a["outcome"][j])], float(a["last_px"][j]),
                             None if empty else float(a["ex_max"][j]), None if empty else float(a["ex_min"][j]),
                             seen_ts is not None))
        keep = np.flatnonzero(~done)
        for k, v in a.items():
            v[: keep.size] = v[keep]
        self.n = int(keep.size)
        return out
