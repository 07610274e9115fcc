"""Latent market paths of a synthetic session: activity profile, fair prices, basis.

Everything here is a pure function of (seed, trading date) — never of which other dates are
generated — so a session's records are identical whatever range was requested.

* **Data window.** Globex reopens at 18:00 ET on the calendar day before D and trades until
  17:00 ET of D (``data_end`` stops 1 s earlier); on an early-close day ES stops 15 minutes after
  the XNYS close. Everything lies inside the SPEC §3 session window (17:00 ET of the previous
  trading day, 17:00 ET of D].
* **Activity** (:func:`activity_weights`): relative event rate per minute — quiet overnight with
  Asia / Europe bumps, the 08:30 ET data release, a U-shaped RTH (about 8× the midday rate in
  the first minutes after 09:30, a smaller close ramp) and a fading post-close hour, times a
  per-minute log-normal wobble.
* **Index level** X (SPX-like points): a daily anchor ``6752·exp(x_D)`` with x an AR(1) over
  calendar days pinned at 0 on 2025-12-15 (so prices stay around ES 6800); within the session a Brownian bridge from
  X(D) to X(next trading day) whose per-minute variance follows the activity (volatility peaks
  at the open). ES contract c trades at ``X·(1 + carry·τ_c)`` (τ_c = years to its expiration),
  so the front/next calendar spread is realistic and continuous across sessions.
* **Basis** (SPEC §3): ``front/ratio − SPY`` with SPY = X/ratio − δ(t) (δ a small slowly
  drifting dividend/tracking offset), i.e. ``basis = X·carry·τ_front/ratio + δ`` — about $4–5.5
  for a contract three months out, falling toward δ just before a roll.
* **Pins** (scenario hooks): a ramp that steers the front fair to a target by a time, an
  optional hold, then the offset decays linearly to 0 by the data end (so the next session
  still starts where this one's anchor says).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from spymaster.calendar import ET, MINUTE_NS, NS, Session, et_ns, from_ns, trading_days

INDEX_CENTER = 6752.0          # X level the daily AR(1) reverts to (ES front ≈ 6800)
REF_DAY = dt.date(2025, 12, 15)  # the AR(1) is pinned at INDEX_CENTER on this calendar day
CARRY = 0.027                  # r − q of the ES carry (per year)
AR_PHI = 0.95                  # daily persistence of log X
AR_SIGMA = 0.005               # daily innovation of log X
AR_TERMS = 80                  # truncation of the AR(1) sum (0.95^80 ≈ 0.017)
YEAR_S = 365.0 * 24 * 3600


def data_start(session: Session) -> int:
    """18:00 ET of the calendar day before D (Globex reopen)."""
    prev = session.date - dt.timedelta(days=1)
    return et_ns(prev, 18, 0)


def data_end(session: Session) -> int:
    """Last instant of ambient activity: 17:00 ET − 1 s, or XNYS close + 15 min on early closes."""
    if session.early_close:
        return session.rth_close_ns + 15 * MINUTE_NS
    return session.end_ns - NS


def _rng(seed: int, day: dt.date, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, day.toordinal(), stream]))


# ------------------------------------------------------------------ activity

def activity_weights(session: Session, t0: int, n_minutes: int, rng: np.random.Generator) -> np.ndarray:
    """Relative event rate of each minute [t0 + m·60 s, +60 s) (RTH midday ≈ 5–7, overnight ≈ 1)."""
    starts = t0 + np.arange(n_minutes, dtype=np.int64) * MINUTE_NS
    off0 = from_ns(int(starts[0]), ET).utcoffset()
    off1 = from_ns(int(starts[-1]), ET).utcoffset()
    if off0 == off1:
        tod = ((starts // MINUTE_NS) + int(off0.total_seconds() // 60)) % 1440
    else:  # DST change inside the window: convert minute by minute
        tod = np.array([(lambda d: d.hour * 60 + d.minute)(from_ns(int(s), ET)) for s in starts])
    tod = tod.astype(np.float64)
    open_m = (session.rth_open_ns - t0) / MINUTE_NS
    close_m = (session.rth_close_ns - t0) / MINUTE_NS
    m = np.arange(n_minutes, dtype=np.float64)
    w = np.ones(n_minutes)
    evening = tod >= 18 * 60
    w[evening] = 1.0 + 0.8 * np.exp(-(tod[evening] - 18 * 60) / 20.0)           # reopen burst
    w[(tod >= 20 * 60) & (tod < 21 * 60)] *= 1.3                                  # Asia
    night = (tod < 18 * 60)
    w[night & (tod < 3 * 60)] = 0.8
    w[night & (tod >= 3 * 60) & (tod < 5 * 60)] = 1.6                             # Europe
    w[night & (tod >= 5 * 60) & (tod < 8 * 60)] = 1.2
    w[night & (tod >= 8 * 60)] = 2.2
    data = (tod >= 8 * 60 + 30) & (tod < 9 * 60 + 30)
    w[data] += 4.0 * np.exp(-(tod[data] - (8 * 60 + 30)) / 6.0)                  # 08:30 release
    rth = (m >= open_m) & (m < close_m)
    x = m[rth] - open_m
    span = max(close_m - open_m, 1.0)
    w[rth] = (5.5 + 38.0 * np.exp(-x / 12.0) + 9.0 * np.exp(-(span - x) / 22.0)
              - 1.5 * np.exp(-(((x / span) - 0.5) / 0.15) ** 2))
    post = m >= close_m
    w[post] = 1.0 + 4.0 * np.exp(-(m[post] - close_m) / 12.0)
    w *= np.exp(0.25 * rng.standard_normal(n_minutes) - 0.03125)
    return w


# ------------------------------------------------------------------ index level

def index_anchor(seed: int, day: dt.date) -> float:
    """X at the data start of the session of trading date ``day`` (pure function of seed, day).

    log(X / INDEX_CENTER) is an AR(1) over calendar days pinned at 0 on :data:`REF_DAY`, run
    forward after it and backward before it (x_{d±1} = φ·x_d + σ·ε_{d±1}), so every seed starts
    the reference week near ES 6800 and drifts away only slowly (stationary sd ≈ 1.6 %).
    """
    x = 0.0
    n = min(abs((day - REF_DAY).days), AR_TERMS)
    step = -1 if day > REF_DAY else 1
    for k in range(n):
        d = day + dt.timedelta(days=step * k)
        x += (AR_PHI ** k) * AR_SIGMA * _rng(seed, d, 901).standard_normal()
    return INDEX_CENTER * math.exp(x)


def next_trading_day(day: dt.date) -> dt.date:
    days = trading_days(day + dt.timedelta(days=1), day + dt.timedelta(days=14))
    return days[0]


@dataclass
class Pin:
    """Steer the front fair to ``value`` (ES points): linear ramp over [ramp_start, hold_start],
    constant over [hold_start, hold_end] (all ns)."""

    ramp_start: int
    hold_start: int
    hold_end: int
    value: float
    label: str = ""


@dataclass
class SessionPaths:
    """Per-second latent paths over the data window (index i ↔ t0 + i s)."""

    t0: int
    seconds: int
    front: np.ndarray        # front ES fair (points)
    next: np.ndarray         # next-quarter ES fair (points)
    spread: np.ndarray       # next − front (points)
    basis: np.ndarray        # ES/ratio − SPY ($)
    weights: np.ndarray      # per-minute activity
    var_min: np.ndarray      # per-minute variance of the index path (points²)
    daily_vol: float

    def at(self, arr: np.ndarray, ts_ns) -> np.ndarray:
        """Linear interpolation of a per-second path at ``ts_ns``."""
        s = (np.asarray(ts_ns, dtype=np.int64) - self.t0) / 1e9
        return np.interp(s, np.arange(arr.shape[0], dtype=np.float64), arr)


def build_paths(seed: int, session: Session, *, front_exp: dt.date, next_exp: dt.date, ratio: float,
                pins: list[Pin] = (), vol_scale: float = 1.0) -> SessionPaths:
    t0 = data_start(session)
    t1 = data_end(session)
    seconds = int((t1 - t0) // NS) + 2
    n_min = int(math.ceil(seconds / 60.0)) + 1
    rng_w = _rng(seed, session.date, 1)
    weights = activity_weights(session, t0, n_min, rng_w)
    rng = _rng(seed, session.date, 2)

    x0 = index_anchor(seed, session.date)
    x1 = index_anchor(seed, next_trading_day(session.date))
    daily_vol = 0.0085 * vol_scale * math.exp(0.25 * rng.standard_normal())
    var_min = weights ** 0.9
    var_min = var_min / var_min.sum() * (daily_vol * x0) ** 2
    var_s = np.repeat(var_min / 60.0, 60)[: seconds - 1]
    inc = rng.standard_normal(seconds - 1) * np.sqrt(var_s)
    w = np.concatenate([[0.0], np.cumsum(inc)])
    v = np.concatenate([[0.0], np.cumsum(var_s)])
    x = x0 + w - (v / v[-1]) * (w[-1] - (x1 - x0))

    ts = t0 + np.arange(seconds, dtype=np.int64) * NS
    tau_f = np.maximum((_exp_ns(front_exp) - ts) / 1e9 / YEAR_S, 0.0)
    tau_n = np.maximum((_exp_ns(next_exp) - ts) / 1e9 / YEAR_S, 0.0)
    front = x * (1.0 + CARRY * tau_f)
    front = apply_pins(front, t0, pins)
    x_eff = front / (1.0 + CARRY * tau_f)
    spread_noise = _ou(rng, seconds, sd=0.35, tau_s=1800.0)
    nxt = x_eff * (1.0 + CARRY * tau_n) + spread_noise
    delta = 0.30 + 0.15 * rng.random() + _ou(rng, seconds, sd=0.06, tau_s=3600.0)
    basis = x_eff * CARRY * tau_f / ratio + delta
    return SessionPaths(t0=t0, seconds=seconds, front=front, next=nxt, spread=nxt - front, basis=basis,
                        weights=weights, var_min=var_min, daily_vol=daily_vol)


def _exp_ns(day: dt.date) -> int:
    """ES expiration instant: 09:30 ET of the expiration day."""
    return et_ns(day, 9, 30)


def _ou(rng: np.random.Generator, n: int, *, sd: float, tau_s: float) -> np.ndarray:
    a = math.exp(-1.0 / tau_s)
    e = rng.standard_normal(n) * sd * math.sqrt(1 - a * a)
    e[0] = sd * rng.standard_normal()
    return _ar1(e, a)


@nb.njit(cache=True)
def _ar1(e, a):
    out = np.empty_like(e)
    acc = 0.0
    for i in range(e.shape[0]):
        acc = a * acc + e[i]
        out[i] = acc
    return out


def apply_pins(path: np.ndarray, t0: int, pins: list[Pin]) -> np.ndarray:
    """Apply :class:`Pin` s in time order to a per-second path (a copy)."""
    out = path.astype(np.float64).copy()
    n = out.shape[0]
    for pin in sorted(pins, key=lambda p: p.ramp_start):
        r0 = int(np.clip((pin.ramp_start - t0) // NS, 0, n - 1))
        h0 = int(np.clip((pin.hold_start - t0) // NS, 0, n - 1))
        h1 = int(np.clip((pin.hold_end - t0) // NS, h0, n - 1))
        if h0 > r0:
            wgt = (np.arange(r0, h0 + 1) - r0) / (h0 - r0)
            out[r0:h0 + 1] = out[r0:h0 + 1] + (pin.value - out[h0]) * wgt
        out[h0:h1 + 1] = pin.value
        if h1 < n - 1:
            # continue the natural increments from the pinned value, the offset fading to 0
            fade = 1.0 - (np.arange(1, n - h1) / (n - 1 - h1))
            out[h1 + 1:] = path[h1 + 1:] + (pin.value - path[h1]) * fade
        path = out.copy()
    return out
