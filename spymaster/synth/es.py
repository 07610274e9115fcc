"""The synthetic ES (GLBX.MDP3) market of one session: contracts, definitions, trades, MBP-10.

Per session three instruments trade, each from its own simulated book (:mod:`.book`): the
front outright (the contract the SPEC §3 roll rule picks for D; ~92 % of the activity), the
next quarterly outright (~6 %) and their calendar spread ``FRONT-NEXT`` (instrument_class
'S', tick 0.05, priced next − front; ~2 %). Instrument ids are stable per contract across days
(a hash of the raw symbol). Definitions are a function of the UTC day only: the file of UTC
day u holds, at ``ts_recv`` = 00:00 UTC of u (like real daily files), the definitions of every
contract traded by any session overlapping u — so rewriting it never depends on which dates
were requested.

The run is sliced every 10 minutes (UTC-aligned, so a slice never spans two UTC days); the three
books' records of a slice are merged by ts_recv (stable: front, next, spread on ties) and
appended to per-(UTC day, schema) part files of raw DBN record bytes.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spymaster.calendar import MINUTE_NS, NS, UTC, Session, from_ns, sessions_covering_utc_day, to_ns
from spymaster.config import Config
from spymaster.events import BOOK, F_LAST, TRADE, UNDEF_PRICE
from spymaster.instruments import es_symbol, front_month, third_friday
from spymaster.synth import market
from spymaster.synth.book import BookSim, MinuteProfile
from spymaster.synth.dbnfile import definition_records, mapping
from spymaster.synth.rng import seed_state

SLICE_NS = 10 * MINUTE_NS
SHARES = {"front": 0.92, "next": 0.06, "spread": 0.02}
TRADES_PER_EVENT = 0.505      # calibrated: trade records per ambient event (market share 0.40)
P_MARKET = 0.40
DAY_EVENTS = 500_000 / TRADES_PER_EVENT   # the `day` scale's event count (volatility reference)


@dataclass(frozen=True)
class EsContract:
    raw_symbol: str
    instrument_id: int
    expiration: dt.date          # ET date (third Friday)
    tick: float                  # ES points
    is_spread: bool = False
    maturity: tuple[int, int] = (0, 0)

    @property
    def expiration_ns(self) -> int:
        """09:30 ET of the expiration day (CME equity-index final settlement time)."""
        from spymaster.calendar import et_ns

        return et_ns(self.expiration, 9, 30)


def instrument_id(raw_symbol: str) -> int:
    """Stable synthetic instrument_id of an ES contract (same every day, like CME's)."""
    h = zlib.crc32(raw_symbol.encode())
    return (1_000_000 + h % 8_000_000) if "-" in raw_symbol else (10_000 + h % 900_000)


def outright(year: int, month: int) -> EsContract:
    sym = es_symbol(year, month)
    return EsContract(sym, instrument_id(sym), third_friday(year, month), 0.25, False, (year, month))


def session_contracts(day: dt.date, roll_days: int) -> tuple[EsContract, EsContract, EsContract]:
    """(front, next, spread) of trading date ``day`` — front by the SPEC roll rule."""
    y, m = front_month(day, roll_days)
    front = outright(y, m)
    ny, nm = (y, m + 3) if m <= 9 else (y + 1, m - 9)
    nxt = outright(ny, nm)
    sym = f"{front.raw_symbol}-{nxt.raw_symbol}"
    spread = EsContract(sym, instrument_id(sym), front.expiration, 0.05, True, (y, m))
    return front, nxt, spread


def day_contracts(u: dt.date, roll_days: int) -> list[EsContract]:
    """Every contract traded by a session overlapping UTC day ``u`` (outrights first)."""
    seen: dict[str, EsContract] = {}
    for d in sessions_covering_utc_day(u):
        for c in session_contracts(d, roll_days):
            seen.setdefault(c.raw_symbol, c)
    return sorted(seen.values(), key=lambda c: (c.is_spread, c.expiration, c.raw_symbol))


def day_mappings(u: dt.date, roll_days: int) -> list:
    return [mapping(c.raw_symbol, c.instrument_id, u, u + dt.timedelta(days=1)) for c in day_contracts(u, roll_days)]


def definitions_for_day(u: dt.date, roll_days: int) -> np.ndarray:
    """The GLBX definition records of UTC day ``u`` (fields modelled on the real ES samples)."""
    t = to_ns(dt.datetime(u.year, u.month, u.day, tzinfo=UTC))
    rows = []
    for c in day_contracts(u, roll_days):
        exp_ns = c.expiration_ns
        rows.append(dict(
            publisher_id=1, instrument_id=c.instrument_id, ts_event=t - 46_564 * NS - 458_912_741, ts_recv=t,
            min_price_increment=int(round(c.tick * 1e9)), display_factor=10_000_000, expiration=exp_ns,
            activation=exp_ns - 2 * 365 * 86_400 * NS if not c.is_spread else exp_ns - 280 * 86_400 * NS,
            max_price_variation=1_500_000_000 if c.is_spread else 6_000_000_000,
            unit_of_measure_qty=int(UNDEF_PRICE) if c.is_spread else 50_000_000_000,
            min_price_increment_amount=int(UNDEF_PRICE) if c.is_spread else 125_000_000,
            inst_attrib_value=271_371 if c.is_spread else 270_351, raw_instrument_id=c.instrument_id,
            market_depth_implied=0, market_depth=10, market_segment_id=64,
            max_trade_vol=15_000 if c.is_spread else 3_000, min_lot_size=0, min_lot_size_block=0,
            min_lot_size_round_lot=0, min_trade_vol=1, appl_id=310, maturity_year=c.maturity[0],
            maturity_month=c.maturity[1], channel_id=0, currency="USD", secsubtype="EQ" if c.is_spread else "",
            raw_symbol=c.raw_symbol, group="ES", exchange="XCME", asset="ES",
            cfi="FMIXSX" if c.is_spread else "FFIXSX", security_type="FUT",
            unit_of_measure="CTRCT" if c.is_spread else "IPNT", instrument_class="S" if c.is_spread else "F",
            match_algorithm="F", security_update_action="A", user_defined_instrument="N",
            underlying_product=5,
        ))
    return definition_records(rows)


# ------------------------------------------------------------------ per-session simulation

def vol_scale(events: float) -> float:
    """Volatility multiplier for small scales, so the book can follow the fair price with the
    events it has (1.0 at the ``day`` scale and above; ≈ 0.64 at ``demo``)."""
    return float(min(1.0, max(0.6, (events / DAY_EVENTS) ** 0.15)))


def _profile(weights: np.ndarray, var_min: np.ndarray | None, events: float, tick: float, *,
             ls_min: float, ls_max: float, sigma_ticks: float | None = None) -> MinuteProfile:
    lam = events * weights / weights.sum() / 60.0
    if sigma_ticks is None:
        sig = np.sqrt(var_min / 60.0) / tick
    else:
        sig = np.full_like(lam, sigma_ticks)
    ls = np.clip(lam / np.maximum(sig, 1e-3), ls_min, ls_max)
    return MinuteProfile(lam=np.ascontiguousarray(lam), pmkt=np.full_like(lam, P_MARKET),
                         addm=np.ascontiguousarray(ls), dtgt=np.ascontiguousarray(20.0 * ls),
                         trdm=np.ascontiguousarray(np.clip(0.5 * ls, 1.0, 6.0)))


@dataclass
class EsSessionResult:
    front: EsContract
    next: EsContract
    spread: EsContract
    parts: dict[tuple[dt.date, str], Path]        # (UTC day, schema) → raw record bytes
    counts: dict[tuple[dt.date, str], int]
    mid_ts: np.ndarray                             # front committed book (F_LAST) ts_recv
    mid_px: np.ndarray                             # … its mid (ES points)
    last_ts: np.ndarray                            # front trades ts_recv
    last_px: np.ndarray                            # … price (ES points)
    paths: market.SessionPaths
    script_log: np.ndarray
    window_books: dict[int, np.ndarray] = field(default_factory=dict)   # scenario → front MBP-10
    window_trades: dict[int, np.ndarray] = field(default_factory=dict)  # scenario → front trades


def simulate_session(session: Session, *, seed: int, events: float, scenarios, config: Config,
                     workdir: Path, cap_records: int = 131_072) -> tuple[EsSessionResult, "object"]:
    """Simulate the three ES books of ``session``; returns the result and the compiled scenarios."""
    from spymaster.synth import scenarios as scn

    roll = config.instrument.roll_days_before_expiry
    front, nxt, spread = session_contracts(session.date, roll)
    t0 = market.data_start(session)
    t_end = market.data_end(session)
    vs = vol_scale(events)
    base_paths = market.build_paths(seed, session, front_exp=front.expiration, next_exp=nxt.expiration,
                                    ratio=config.instrument.es_spy_ratio, vol_scale=vs)
    compiled = scn.compile_scenarios(scenarios, session, t0=t0, t_end=t_end, config=config,
                                     fair_at=lambda ts: float(base_paths.at(base_paths.front, ts)))
    paths = base_paths if not compiled.pins else market.build_paths(
        seed, session, front_exp=front.expiration, next_exp=nxt.expiration, ratio=config.instrument.es_spy_ratio,
        pins=compiled.pins, vol_scale=vs)

    sims: list[BookSim] = []
    for k, (c, fair) in enumerate(((front, paths.front), (nxt, paths.next), (spread, paths.spread))):
        share = SHARES[("front", "next", "spread")[k]]
        if c.is_spread:
            prof = _profile(paths.weights, None, events * share, c.tick, ls_min=3, ls_max=40, sigma_ticks=0.25)
        else:
            prof = _profile(paths.weights, paths.var_min, events * share, c.tick,
                            ls_min=8 if k == 0 else 4, ls_max=200 if k == 0 else 60)
        script = np.zeros((0, 7), np.int64)
        if k == 0 and compiled.rows:
            base = BookSim.base_for(float(fair[0]), c.tick)
            arr = np.array(compiled.rows, dtype=np.int64)
            for i, (ti, t2, t3) in enumerate(compiled.tick_cols):
                if ti:
                    arr[i, 3] -= base
                if t2:
                    arr[i, 5] -= base
                if t3:
                    arr[i, 6] -= base
            script = arr
        sims.append(BookSim(instrument_id=c.instrument_id, tick_points=c.tick, t0_ns=t0, tend_ns=t_end, profile=prof,
                            fair_points=fair, script=script,
                            rng_state=seed_state(seed, session.date.toordinal(), 10 + k),
                            seq_base=(session.date.toordinal() % 1000) * 4_000_000 + k * 1_000_000,
                            init_level_size=float(prof.addm[0]),
                            cap_records=cap_records if k == 0 else max(4_096, cap_records // 4)))

    parts: dict[tuple[dt.date, str], Path] = {}
    counts: dict[tuple[dt.date, str], int] = {}
    handles: dict[tuple[dt.date, str], object] = {}
    mid_ts, mid_px, last_ts, last_px = [], [], [], []
    win_b: dict[int, list] = {i: [] for i, e in enumerate(compiled.events) if e.kind != "Drive"}
    win_t: dict[int, list] = {i: [] for i in win_b}
    lookback = int(round((config.barrier.baseline_window_s + 120) * NS))
    sdir = workdir / session.iso
    sdir.mkdir(parents=True, exist_ok=True)

    stop = (t0 // SLICE_NS) * SLICE_NS + SLICE_NS
    final = session.end_ns + 1
    try:
        while True:
            stop_now = min(stop, final)
            per_sim = [sim.run_until(stop_now) for sim in sims]
            day = from_ns(stop_now - 1).date()
            fb, ft = per_sim[0]
            for arr in fb:
                m = (arr["flags"] & F_LAST) != 0
                lv = arr["levels"]
                mid_ts.append(arr["ts_recv"][m])
                mid_px.append((lv["bid_px"][m, 0].astype(np.float64) + lv["ask_px"][m, 0]) / 2e9)
            for arr in ft:
                last_ts.append(arr["ts_recv"].copy())
                last_px.append(arr["price"] / 1e9)
            for i in win_b:
                ev = compiled.events[i]
                lo_t, hi_t = ev.bar_close_ns - lookback, ev.bar_close_ns + 5 * NS
                for src, dst in ((fb, win_b[i]), (ft, win_t[i])):
                    for arr in src:
                        sel = (arr["ts_recv"] >= lo_t) & (arr["ts_recv"] < hi_t)
                        if sel.any():
                            dst.append(take(arr, sel))
            for schema, pos in (("mbp-10", 0), ("trades", 1)):
                chunks = [c for ps in per_sim for c in ps[pos]]
                if not chunks:
                    continue
                arr = chunks[0] if len(chunks) == 1 else concat(chunks)
                if len(chunks) > 1:
                    arr = take(arr, np.argsort(arr["ts_recv"], kind="stable"))
                key = (day, schema)
                if key not in handles:
                    parts[key] = sdir / f"{day:%Y%m%d}.{schema}.raw"
                    handles[key] = open(parts[key], "wb")
                    counts[key] = 0
                handles[key].write(memoryview(arr).cast("B"))
                counts[key] += arr.shape[0]
            if stop_now >= final or all(s.done for s in sims):
                break
            stop += SLICE_NS
    finally:
        for h in handles.values():
            h.close()

    res = EsSessionResult(
        front=front, next=nxt, spread=spread, parts=parts, counts=counts,
        mid_ts=_cat(mid_ts, np.int64), mid_px=_cat(mid_px, np.float64),
        last_ts=_cat(last_ts, np.int64), last_px=_cat(last_px, np.float64),
        paths=paths, script_log=sims[0].script_log(),
        window_books={i: _cat(v, BOOK) for i, v in win_b.items()},
        window_trades={i: _cat(v, TRADE) for i, v in win_t.items()},
    )
    return res, compiled


def _words(arr: np.ndarray) -> np.ndarray:
    """A record array as (n, itemsize/8) int64 words (numpy copies nested structured dtypes
    field by field, ~1 µs per MBP-10 record; plain words copy at memory speed)."""
    return arr.view(np.int64).reshape(arr.shape[0], arr.dtype.itemsize // 8)


def take(arr: np.ndarray, index) -> np.ndarray:
    """``arr[index]`` (mask or positions) for DBN record arrays, fast."""
    return np.ascontiguousarray(_words(arr)[index]).view(arr.dtype).reshape(-1)


def concat(chunks: list[np.ndarray]) -> np.ndarray:
    """``np.concatenate`` for DBN record arrays of one dtype, fast."""
    return np.concatenate([_words(c) for c in chunks]).view(chunks[0].dtype).reshape(-1)


def _cat(chunks: list, dtype) -> np.ndarray:
    if not chunks:
        return np.zeros(0, dtype=dtype)
    if np.dtype(dtype).fields is not None and len(np.dtype(dtype)) > 1 and np.dtype(dtype).itemsize % 8 == 0:
        return concat(chunks)
    return np.concatenate(chunks)


def step_lookup(ts: np.ndarray, values: np.ndarray, at) -> np.ndarray:
    """Value of the step function (ts, values) at ``at`` (last ts <= at); NaN before the first."""
    at = np.asarray(at, dtype=np.int64)
    i = np.searchsorted(ts, at, side="right") - 1
    out = np.where(i >= 0, values[np.clip(i, 0, None)] if values.size else np.nan, np.nan)
    return out.astype(np.float64)
