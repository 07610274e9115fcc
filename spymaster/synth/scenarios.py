"""Scenario hooks: known events injected into the synthetic front-month ES book.

A scenario is written into the same files as every other record (a consumer cannot tell them
apart) and is designed against SPEC §7 so that the barrier / tape window ending at the *next bar
close* after ``at`` shows exactly its pattern. Times are ET wall-clock ``HH:MM[:SS]`` on the
trading date (``18:00`` or later means the evening before, when Globex reopens); prices are ES
points on the tick grid. ``date`` (ISO) restricts a scenario to one trading date (None = every
generated date).

Let ``t`` = the bar close after ``at`` (``floor_minute(at) + 60 s``) and ``W`` = [t −
``barrier_window_s``, t). For the book scenarios (Pull / Consume / Refill) the generator:

1. steers the front fair price so the defending side's best price sits next to ``price``
   (ramp over ``ramp_s``, then held until t), so the level is touched on that bar;
2. 45 s before W ("setup", outside W): cancels anything better than the anchor price, trims
   oversized zone levels to 1.5× the mean visible level, releases icebergs, and closes the
   defending side of the zone [price − zone − 2, price + zone + 2] ticks to ambient adds,
   cancels and market orders until t + 1 s (ambient flow elsewhere continues);
3. builds and then acts exactly as described below.

* :class:`Drive` — steer the fair price to ``price`` (a trend over ``ramp_s``), reached
  ``hold_s`` before ``at`` and held until ``hold_s`` after, so the book is there at ``at``.
* :class:`Pull` — ``size`` contracts spread over ``ticks`` prices from ``price`` outward on the
  defending side (best defending price one tick in front of ``price``), added in [W − 40 s,
  W − 5 s], then all canceled (no trades) from ``at`` + 1 s within 25 s: VACUUM
  (delta_liq = −size ≤ −100, canceled ≥ filled = 0, replenishment 0).
* :class:`Consume` — ``size`` extra contracts rest at ``price`` (the best defending price)
  before W; from ``at`` + 2 s aggressive orders eat exactly ``size`` at ``price`` (limit the
  zone edge): CONSUMED (filled = size > canceled = 0, delta_liq = −size).
* :class:`Refill` — an iceberg at ``price`` (the best defending price, nothing else there)
  showing ``display`` with ``total`` in all; from ``at`` + 2 s it is hit ``display`` at a time,
  each hit fully refilled in the same event, until the reserve is used: ABSORPTION (filled =
  total − display ≥ 100, delta_liq = 0) when ``display`` < 3× the baseline depth, WALL when it
  is ≥ 3× (``display=None``: 1.5× the mean visible defending level; ``total=None``: enough hits
  for filled ≥ 1.2 × barrier_flow_threshold).
* :class:`Sweep` — one aggressive order at ``at`` walking ``levels`` prices of the book
  (``side`` = the aggressor, buy walks the asks) with notional Σ price·size·multiplier ≥
  ``notional`` (default 1.25 × sweep_min_notional; the levels are topped up 3 s before if
  needed). With ``price`` the book is steered there and, 3 s before, anything better than
  ``price`` on the walked side is canceled so the walk starts exactly at ``price``. From the
  top-up until 1 s after the sweep the walked side (± 12 ticks) is closed to ambient flow, so
  exactly ``levels`` prices are walked.

Overlapping scenarios (their steering/hold intervals intersect) are refused with a
:class:`~spymaster.errors.ConfigError`.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from typing import Union

import numpy as np

from spymaster.calendar import MINUTE_NS, NS, Session, et_ns, fmt_et
from spymaster.config import Config
from spymaster.errors import ConfigError
from spymaster.synth import book as bk
from spymaster.synth.market import Pin


@dataclass(frozen=True)
class Drive:
    at: str
    price: float
    ramp_s: float = 300.0
    hold_s: float = 20.0
    date: str | None = None


@dataclass(frozen=True)
class Pull:
    at: str
    side: str = "ask"
    price: float | None = None
    ticks: int = 4
    size: int = 400
    ramp_s: float = 180.0
    date: str | None = None


@dataclass(frozen=True)
class Consume:
    at: str
    side: str = "ask"
    price: float | None = None
    size: int = 300
    ramp_s: float = 180.0
    date: str | None = None


@dataclass(frozen=True)
class Refill:
    at: str
    side: str = "ask"
    price: float | None = None
    display: int | None = None
    total: int | None = None
    ramp_s: float = 180.0
    date: str | None = None


@dataclass(frozen=True)
class Sweep:
    at: str
    side: str = "buy"
    levels: int = 4
    price: float | None = None
    notional: float | None = None
    ramp_s: float = 180.0
    date: str | None = None


Scenario = Union[Drive, Pull, Consume, Refill, Sweep]
SCENARIO_TYPES = {"drive": Drive, "pull": Pull, "consume": Consume, "refill": Refill, "sweep": Sweep}
INTENDED = {"Drive": "DRIVE", "Pull": "VACUUM", "Consume": "CONSUMED", "Refill": "ABSORPTION/WALL", "Sweep": "SWEEP"}


@dataclass
class ScenarioAction:
    """One scripted book event as it was written (ts in ns; price ES points; size contracts)."""

    action: str
    ts_event: int
    ts_recv: int
    side: str
    price: float | None
    size: int
    trades: int = 0
    last_price: float | None = None


@dataclass
class ScenarioEvent:
    """An injected scenario: where and when, what was written, and (filled in after the run)
    the SPEC §7 barrier / tape features of the window it targets, computed from the raw records."""

    kind: str
    date: str
    at_ns: int
    bar_close_ns: int          # t: the decision time whose window holds the pattern
    window_start_ns: int       # t − barrier_window_s
    side: str                  # defending book side ('ask'/'bid'); for Sweep the aggressor
    price: float | None        # ES points
    level: float | None        # the level on the SPY axis (price / ratio)
    direction: str | None      # touch direction whose defending side the scenario uses
    intended: str
    params: dict
    actions: list[ScenarioAction] = field(default_factory=list)
    measured: dict = field(default_factory=dict)

    @property
    def at_et(self) -> str:
        return fmt_et(self.at_ns)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["at_et"] = self.at_et
        d["bar_close_et"] = fmt_et(self.bar_close_ns)
        return d


# ------------------------------------------------------------------ parsing

def parse_scenario(text: str) -> Scenario:
    """``pull:at=10:14,price=6800,side=ask`` → :class:`Pull` (CLI form)."""
    kind, _, rest = text.partition(":")
    cls = SCENARIO_TYPES.get(kind.strip().lower())
    if cls is None:
        raise ConfigError(f"unknown scenario {kind!r} (known: {', '.join(SCENARIO_TYPES)})")
    kwargs: dict = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        k, eq, v = part.partition("=")
        if not eq:
            raise ConfigError(f"scenario {text!r}: expected key=value, got {part!r}")
        kwargs[k.strip()] = v.strip()
    fields_ = {f for f in cls.__dataclass_fields__}
    for k, v in list(kwargs.items()):
        if k not in fields_:
            raise ConfigError(f"scenario {text!r}: unknown parameter {k!r} (known: {', '.join(sorted(fields_))})")
        typ = cls.__dataclass_fields__[k].type
        try:
            if "int" in typ and "float" not in typ:
                kwargs[k] = int(v)
            elif "float" in typ:
                kwargs[k] = float(v)
        except ValueError:
            raise ConfigError(f"scenario {text!r}: {k}={v!r} is not a number") from None
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"scenario {text!r}: {exc}") from None


def at_ns(sc: Scenario, session: Session) -> int:
    """The scenario's instant on trading date ``session.date`` (≥ 18:00 = the evening before)."""
    try:
        parts = [float(p) for p in sc.at.split(":")]
        hh, mm = int(parts[0]), int(parts[1])
        ss = parts[2] if len(parts) > 2 else 0.0
    except (ValueError, IndexError):
        raise ConfigError(f"{type(sc).__name__}: at={sc.at!r} is not HH:MM[:SS]") from None
    day = session.date - dt.timedelta(days=1) if hh >= 18 else session.date
    return et_ns(day, hh, mm) + int(round(ss * NS))


def applies(sc: Scenario, session: Session) -> bool:
    return sc.date is None or str(sc.date) == session.iso


# ------------------------------------------------------------------ compilation

@dataclass
class Compiled:
    pins: list[Pin]
    rows: list[tuple]          # (ts, type, side, tick, size, p2, p3) with absolute ticks
    tick_cols: list[tuple]     # per row: (idx is a tick, p2 is a tick, p3 is a tick)
    events: list[ScenarioEvent]
    row_owner: list[int]       # index into events of each row


def _side(name: str, kind: str) -> int:
    n = name.strip().lower()
    if kind == "Sweep":
        if n in ("buy", "b", "up"):
            return bk.ASK   # a buy walks the asks
        if n in ("sell", "s", "a", "down"):
            return bk.BID
        raise ConfigError(f"Sweep side must be buy or sell, got {name!r}")
    if n in ("ask", "a", "offer", "up"):
        return bk.ASK
    if n in ("bid", "b", "down"):
        return bk.BID
    raise ConfigError(f"{kind} side must be ask or bid, got {name!r}")


def compile_scenarios(scenarios, session: Session, *, t0: int, t_end: int, config: Config,
                      fair_at) -> Compiled:
    """Turn the scenarios applying to ``session`` into fair-price pins and book-script rows.

    ``fair_at(ts_ns)`` gives the unpinned front fair price (used for a Sweep without a price).
    """
    tick = config.instrument.es_tick_size
    ratio = config.instrument.es_spy_ratio
    zone = config.barrier.barrier_zone_ticks + 2
    win = int(round(config.barrier.barrier_window_s * NS))
    flow = config.barrier.barrier_flow_threshold
    out = Compiled([], [], [], [], [])
    spans: list[tuple[int, int, str]] = []

    def row(owner, ts, typ, side, tick_idx=0, size=0, p2=0, p3=0, ticks=(False, False, False)):
        out.rows.append((int(ts), typ, side, int(tick_idx), int(size), int(p2), int(p3)))
        out.tick_cols.append(ticks)
        out.row_owner.append(owner)

    for sc in scenarios:
        if not applies(sc, session):
            continue
        kind = type(sc).__name__
        at = at_ns(sc, session)
        bar_close = (at // MINUTE_NS) * MINUTE_NS + MINUTE_NS
        w0 = bar_close - win
        if not (t0 + 600 * NS <= at < t_end - 120 * NS):
            raise ConfigError(f"{kind} at {fmt_et(at)} is outside the session's data window "
                              f"({fmt_et(t0)} .. {fmt_et(t_end)}) or too close to its edges")
        price = None if sc.price is None else float(sc.price)
        if price is not None:
            if abs(price / tick - round(price / tick)) > 1e-9:
                raise ConfigError(f"{kind} price {price} is not on the {tick} tick grid")
        p_tick = None if price is None else int(round(price / tick))
        owner = len(out.events)
        params = {k: v for k, v in asdict(sc).items() if k not in ("at", "date")}
        ev = ScenarioEvent(kind=kind, date=session.iso, at_ns=at, bar_close_ns=bar_close, window_start_ns=w0,
                           side=sc.side if hasattr(sc, "side") else "", price=price,
                           level=None if price is None else price / ratio, direction=None,
                           intended=INTENDED[kind], params=params)
        if isinstance(sc, Drive):
            hold = int(round(sc.hold_s * NS))
            pin = Pin(int(at - hold - sc.ramp_s * NS), at - hold, at + hold, price, kind)
            out.pins.append(pin)
            spans.append((pin.ramp_start, pin.hold_end, f"{kind}@{sc.at}"))
            out.events.append(ev)
            continue
        if isinstance(sc, Sweep):
            side_hit = _side(sc.side, kind)
            ev.direction = "UP" if side_hit == bk.ASK else "DOWN"
            levels = max(2, int(sc.levels))
            notional = float(sc.notional) if sc.notional is not None else 1.25 * config.tape.sweep_min_notional
            ref = price if price is not None else float(fair_at(at))
            ref_low = ref if side_hit == bk.ASK else ref - levels * tick
            min_ct = int(math.ceil(notional / (ref_low * config.instrument.es_multiplier)))
            ev.params.update(levels=levels, notional=notional, min_contracts=min_ct)
            if price is not None:
                anchor_f = price - 0.5 * tick if side_hit == bk.ASK else price + 0.5 * tick
                pin = Pin(int(at - 10 * NS - sc.ramp_s * NS), at - 10 * NS, at + 3 * NS, anchor_f, kind)
                out.pins.append(pin)
                spans.append((pin.ramp_start, pin.hold_end, f"{kind}@{sc.at}"))
            if p_tick is not None:
                row(owner, at - 3 * NS, bk.A_SWEEP_PREP, side_hit, p_tick, levels, min_ct, 0, (True, False, False))
            else:
                row(owner, at - 3 * NS, bk.A_SWEEP_PREP, side_hit, -1, levels, min_ct, 0)
            row(owner, at, bk.A_SWEEP, side_hit, 0, levels, min_ct, 0)
            if p_tick is not None:
                row(owner, at + 1 * NS, bk.A_RELEASE, side_hit, 0, 0, p_tick - 12, p_tick + 12, (False, True, True))
            else:  # lift the suppression only (empty release range)
                row(owner, at + 1 * NS, bk.A_RELEASE, side_hit, 0, 0, 1, 0)
                spans.append((at - 3 * NS, at + 1 * NS, f"{kind}@{sc.at}"))
            out.events.append(ev)
            continue

        # ---- book scenarios on the defending side
        if price is None:
            raise ConfigError(f"{kind} needs price= (the level, ES points)")
        side = _side(sc.side, kind)
        ev.side = "ask" if side == bk.ASK else "bid"
        ev.direction = "UP" if side == bk.ASK else "DOWN"
        out_step = 1 if side == bk.ASK else -1          # toward deeper defending prices
        setup = w0 - 45 * NS
        if at - w0 < 0 or bar_close - at < 8 * NS:
            raise ConfigError(f"{kind} at {fmt_et(at)} leaves less than 8 s before the bar close")
        act_end = min(at + 40 * NS, bar_close - 3 * NS)
        if isinstance(sc, Pull):
            anchor = p_tick - out_step                   # best defending price one tick in front
        else:
            anchor = p_tick                              # the level is the best defending price
        anchor_f = (anchor - 0.5 * out_step) * tick
        pin = Pin(int(setup - 5 * NS - sc.ramp_s * NS), setup - 5 * NS, bar_close + 2 * NS, anchor_f, kind)
        out.pins.append(pin)
        spans.append((pin.ramp_start, pin.hold_end, f"{kind}@{sc.at}"))
        lo, hi = p_tick - zone, p_tick + zone
        clear_anchor = 1 if isinstance(sc, Refill) else 0
        row(owner, setup, bk.A_SETUP, side, anchor, clear_anchor, lo, hi, (True, True, True))
        if isinstance(sc, Pull):
            ticks_n = max(1, int(sc.ticks))
            size = int(sc.size)
            per = [size // ticks_n + (1 if j < size % ticks_n else 0) for j in range(ticks_n)]
            adds = []
            for j in range(ticks_n):
                a = per[j] // 2
                adds += [(p_tick + out_step * j, a), (p_tick + out_step * j, per[j] - a)]
            adds = [(t, q) for t, q in adds if q > 0]
            times = np.linspace(w0 - 40 * NS, w0 - 5 * NS, len(adds)).astype(np.int64)
            for ts, (tk, q) in zip(times, adds):
                row(owner, ts, bk.A_ADD, side, tk, q, 0, 0, (True, False, False))
            ctimes = np.linspace(at + 1 * NS, min(at + 25 * NS, act_end), ticks_n).astype(np.int64)
            for ts, j in zip(ctimes, range(ticks_n)):
                row(owner, ts, bk.A_CANCEL, side, p_tick + out_step * j, per[j], 0, 0, (True, False, False))
            ev.params.update(prices=[(p_tick + out_step * j) * tick for j in range(ticks_n)], sizes=per)
        elif isinstance(sc, Consume):
            size = int(sc.size)
            n_add = 2
            for k, ts in enumerate(np.linspace(w0 - 40 * NS, w0 - 5 * NS, n_add).astype(np.int64)):
                q = size // n_add + (1 if k < size % n_add else 0)
                row(owner, ts, bk.A_ADD, side, p_tick, q, 0, 0, (True, False, False))
            n_hit = max(3, int(math.ceil(size / 40)))
            limit = p_tick + out_step * config.barrier.barrier_zone_ticks
            for k, ts in enumerate(np.linspace(at + 2 * NS, act_end, n_hit).astype(np.int64)):
                q = size // n_hit + (1 if k < size % n_hit else 0)
                row(owner, ts, bk.A_MARKET, side, limit, q, 0, 0, (True, False, False))
        elif isinstance(sc, Refill):
            display = 0 if sc.display is None else int(sc.display)
            if sc.total is not None and sc.display is not None and int(sc.total) < 2 * display:
                raise ConfigError(f"Refill total={sc.total} must be at least 2 × display={display}")
            reserve = -1 if sc.total is None else int(sc.total) - display
            # p3 carries the auto-sizing target (contracts to fill) when display/total are None
            row(owner, w0 - 30 * NS, bk.A_ICEBERG, side, p_tick, display, reserve, int(math.ceil(1.2 * flow)),
                (True, False, False))
            n_slots = 24
            for ts in np.linspace(at + 2 * NS, act_end, n_slots).astype(np.int64):
                row(owner, ts, bk.A_HIT_ICE, side, p_tick, 0, 0, 0, (True, False, False))
        row(owner, bar_close + 1 * NS, bk.A_RELEASE, side, 0, 0, lo, hi, (False, True, True))
        out.events.append(ev)

    spans.sort()
    for (a0, a1, an), (b0, b1, bn) in zip(spans, spans[1:]):
        if b0 <= a1:
            raise ConfigError(f"scenarios {an} and {bn} overlap (their steering windows intersect); space them out")
    order = sorted(range(len(out.rows)), key=lambda i: (out.rows[i][0], i))
    out.rows = [out.rows[i] for i in order]
    out.tick_cols = [out.tick_cols[i] for i in order]
    out.row_owner = [out.row_owner[i] for i in order]
    return out


ACTION_NAMES = {bk.A_SETUP: "setup", bk.A_ADD: "add", bk.A_CANCEL: "cancel", bk.A_MARKET: "market",
                bk.A_ICEBERG: "iceberg", bk.A_HIT_ICE: "hit", bk.A_SWEEP_PREP: "sweep_prep", bk.A_SWEEP: "sweep",
                bk.A_RELEASE: "release"}
