"""The synthetic SPY option market (OPRA.PILLAR) of one session: definitions and trades.

* **Chain.** Two expiries: the 0DTE expiry (the trading date D) and the next weekly expiry
  (the first Friday after D, moved to the previous trading day if that Friday is a holiday) —
  consumers must filter. Strikes every $1 from round(spot) − 25 to + 25, spot taken when the
  definitions are published (11:30 UTC, before the open). OCC raw symbols (``format_occ``),
  ``expiration`` = midnight UTC of the expiry date, ``strike_price`` = strike × 1e9,
  instrument_class 'C'/'P', contract_multiplier left undefined (i32 max) like the real sample,
  publisher 30 (OPRA), and fresh instrument_ids every day (random per (seed, date)).
* **Trades.** 09:30 ET to the XNYS close, U-shaped in time; strikes concentrated near the money
  (Laplace, scale 3 strikes for 0DTE, 6 for the weekly); calls favoured above spot, puts below,
  both at the money; sizes geometric (mean 6) with 4 % blocks of 20–300. Price = Black–Scholes
  (r = ``fuel.rate``, no dividend) at the *true* spot and a volatility smile, rounded to $0.01
  (≥ $0.01); side 'N' (like real OPRA), flags 194, publisher = one of a dozen venues.
* **True spot** at a trade = the front ES committed mid (last MBP-10 F_LAST record with
  ts_recv ≤ the trade's ts_recv) / ratio − basis(ts_recv), the basis being the session's
  drifting ES–SPY spread (:mod:`.market`). T = (expiry − ts_recv) / (365·24·3600 s), floored at
  1 s. Smile: σ(K) = σ_atm(t) + skew·ln(K/S) + curv·ln(K/S)², σ_atm(t) elevated after the open.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from spymaster.calendar import MINUTE_NS, UTC, Session, session_for, to_ns, trading_days
from spymaster.instruments import format_occ
from spymaster.synth.dbnfile import definition_records, mapping

YEAR_S = 365.0 * 24 * 3600
VENUES = np.array([20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 31, 32, 36, 37], dtype=np.uint16)
VENUE_W = np.array([6, 4, 14, 6, 3, 3, 8, 3, 5, 9, 3, 7, 8, 6], dtype=np.float64)
OPRA_FLAGS = 194
N_STRIKES_EACH_SIDE = 25


@dataclass
class Chain:
    """The session's option contracts (index = position in every array)."""

    raw_symbol: list[str]
    instrument_id: np.ndarray   # uint32
    expiry: list[dt.date]
    expiry_ns: np.ndarray       # int64: XNYS close of the expiry date
    strike: np.ndarray          # float64 SPY $
    is_call: np.ndarray         # bool
    is_0dte: np.ndarray         # bool

    def __len__(self) -> int:
        return len(self.raw_symbol)


@dataclass
class Smile:
    atm0: float
    skew: float
    curv: float
    open_boost: float
    weekly_factor: float

    def to_dict(self) -> dict:
        return dict(atm0=self.atm0, skew=self.skew, curv=self.curv, open_boost=self.open_boost,
                    weekly_factor=self.weekly_factor)


def next_weekly_expiry(day: dt.date) -> dt.date:
    """The first Friday after ``day``, or the last trading day before it if it is a holiday."""
    fri = day + dt.timedelta(days=((4 - day.weekday()) % 7) or 7)
    days = trading_days(day + dt.timedelta(days=1), fri)
    return days[-1] if days else fri


def definitions_ts(day: dt.date) -> int:
    """ts_recv of the first definition record: 11:30 UTC of the trading date."""
    return to_ns(dt.datetime(day.year, day.month, day.day, 11, 30, tzinfo=UTC))


def build_chain(session: Session, seed: int, center: int, root: str = "SPY") -> Chain:
    d0 = session.date
    d1 = next_weekly_expiry(d0)
    close1 = session_for(d1).rth_close_ns
    syms, exps, exp_ns, ks, calls, zero = [], [], [], [], [], []
    for exp, ens in ((d0, session.expiry_ns), (d1, close1)):
        for k in range(center - N_STRIKES_EACH_SIDE, center + N_STRIKES_EACH_SIDE + 1):
            for is_call in (True, False):
                syms.append(format_occ(root, exp, is_call, float(k)))
                exps.append(exp)
                exp_ns.append(ens)
                ks.append(float(k))
                calls.append(is_call)
                zero.append(exp == d0)
    rng = np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, d0.toordinal(), 31]))
    ids = (rng.choice(2_000_000, size=len(syms), replace=False) + 16_000_000).astype(np.uint32)
    return Chain(syms, ids, exps, np.array(exp_ns, np.int64), np.array(ks), np.array(calls), np.array(zero))


def definition_array(chain: Chain, session: Session, root: str = "SPY") -> np.ndarray:
    t = definitions_ts(session.date)
    rows = []
    for i, sym in enumerate(chain.raw_symbol):
        exp = chain.expiry[i]
        ts_recv = t + i * 731_000 + 8_943_854_625 % 1_000_000
        rows.append(dict(
            publisher_id=30, instrument_id=int(chain.instrument_id[i]), ts_event=ts_recv - 210_465, ts_recv=ts_recv,
            expiration=to_ns(dt.datetime(exp.year, exp.month, exp.day, tzinfo=UTC)),
            strike_price=int(round(chain.strike[i] * 1e9)), raw_instrument_id=int(chain.instrument_id[i]),
            underlying_id=30, channel_id=1, currency="USD", raw_symbol=sym, group="popra-1", exchange="OPRA",
            asset=root, security_type="OPT", unit_of_measure="USD", underlying=root, strike_price_currency="USD",
            instrument_class="C" if chain.is_call[i] else "P", security_update_action="A",
            user_defined_instrument="N",
        ))
    return definition_records(rows)


def chain_mappings(chain: Chain, day: dt.date) -> list:
    return [mapping(s, int(i), day, day + dt.timedelta(days=1)) for s, i in zip(chain.raw_symbol, chain.instrument_id)]


# ------------------------------------------------------------------ Black–Scholes

@nb.njit(cache=True)
def _ncdf(x):
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


@nb.njit(cache=True)
def bs_price(s, k, t, r, sigma, is_call):
    """Black–Scholes prices (no dividend), vectorized over arrays (SPY $ per share, T in years)."""
    n = s.shape[0]
    out = np.empty(n)
    for i in range(n):
        sq = sigma[i] * math.sqrt(t[i])
        d1 = (math.log(s[i] / k[i]) + (r + 0.5 * sigma[i] * sigma[i]) * t[i]) / sq
        d2 = d1 - sq
        disc = k[i] * math.exp(-r * t[i])
        if is_call[i]:
            out[i] = s[i] * _ncdf(d1) - disc * _ncdf(d2)
        else:
            out[i] = disc * _ncdf(-d2) - s[i] * _ncdf(-d1)
    return out


def smile_for(seed: int, day: dt.date) -> Smile:
    rng = np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, day.toordinal(), 32]))
    return Smile(atm0=float(rng.uniform(0.11, 0.17)), skew=float(rng.uniform(-1.4, -0.6)),
                 curv=float(rng.uniform(6.0, 18.0)), open_boost=float(rng.uniform(0.15, 0.35)),
                 weekly_factor=float(rng.uniform(0.9, 1.0)))


def sigma_of(smile: Smile, spot: np.ndarray, strike: np.ndarray, ts: np.ndarray, open_ns: int,
             weekly: np.ndarray) -> np.ndarray:
    m = np.log(strike / spot)
    atm = smile.atm0 * (1.0 + smile.open_boost * np.exp(-np.maximum(ts - open_ns, 0) / (45 * MINUTE_NS)))
    atm = np.where(weekly, atm * smile.weekly_factor, atm)
    return np.clip(atm + smile.skew * m + smile.curv * m * m, 0.04, 2.0)


# ------------------------------------------------------------------ trades

@dataclass
class OptionTrades:
    records: np.ndarray          # DBN TradeMsg records (events.TRADE layout)
    contract: np.ndarray         # index into the chain per trade
    spot: np.ndarray             # true SPY spot used for the price
    sigma: np.ndarray
    t_years: np.ndarray
    theo: np.ndarray             # unrounded Black–Scholes value


def simulate_trades(session: Session, chain: Chain, *, seed: int, n_target: int, spot_at, rate: float,
                    smile: Smile) -> OptionTrades:
    """Option trades of the session; ``spot_at(ts_recv_ns) -> SPY spot`` (vectorized)."""
    from spymaster.events import TRADE

    rng = np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, session.date.toordinal(), 33]))
    open_ns, close_ns = session.rth_open_ns, session.rth_close_ns
    n_min = int((close_ns - open_ns) // MINUTE_NS)
    x = np.arange(n_min, dtype=np.float64)
    w = 1.0 + 3.0 * np.exp(-x / 20.0) + 1.5 * np.exp(-(n_min - 1 - x) / 30.0)
    w *= np.exp(0.2 * rng.standard_normal(n_min))
    n = int(round(n_target * rng.uniform(0.95, 1.05)))
    per_min = rng.multinomial(n, w / w.sum())
    ts_event = np.repeat(open_ns + np.arange(n_min, dtype=np.int64) * MINUTE_NS, per_min)
    ts_event = np.sort(ts_event + (rng.random(n) * (MINUTE_NS - 1)).astype(np.int64))
    lat = (150_000 + rng.exponential(60_000, n)).astype(np.int64)
    ts_recv = np.maximum.accumulate(ts_event + lat)

    spot = np.asarray(spot_at(ts_recv), dtype=np.float64)
    zero = rng.random(n) < 0.82
    scale = np.where(zero, 3.0, 6.0)
    strikes = np.unique(chain.strike)
    k = np.round(spot + rng.laplace(0.0, 1.0, n) * scale)
    k = np.clip(k, strikes[0], strikes[-1])
    p_call = 0.5 + 0.3 * np.tanh((k - spot) / 3.0)
    is_call = rng.random(n) < p_call
    # chain index: expiry block (0DTE first), strike, call before put
    nk = strikes.shape[0]
    idx = np.where(zero, 0, nk * 2) + (k - strikes[0]).astype(np.int64) * 2 + np.where(is_call, 0, 1)
    size = rng.geometric(1.0 / 6.0, n).astype(np.int64)
    block = rng.random(n) < 0.04
    size[block] = rng.integers(20, 301, block.sum())
    t_years = np.maximum((chain.expiry_ns[idx] - ts_recv) / 1e9, 1.0) / YEAR_S
    sig = sigma_of(smile, spot, k, ts_recv, open_ns, ~zero)
    theo = bs_price(spot, k, t_years, rate, sig, is_call)
    price = np.maximum(np.round(theo, 2), 0.01)

    rec = np.zeros(n, dtype=TRADE)
    rec["length"] = TRADE.itemsize // 4
    rec["rtype"] = 0
    rec["publisher_id"] = rng.choice(VENUES, size=n, p=VENUE_W / VENUE_W.sum())
    rec["instrument_id"] = chain.instrument_id[idx]
    rec["ts_event"] = ts_event
    rec["ts_recv"] = ts_recv
    rec["price"] = np.round(price * 100).astype(np.int64) * 10_000_000
    rec["size"] = size
    rec["action"] = ord("T")
    rec["side"] = ord("N")
    rec["flags"] = OPRA_FLAGS
    rec["depth"] = 0
    rec["ts_in_delta"] = 0
    rec["sequence"] = (np.arange(n, dtype=np.int64) * 7 + 713_382) % (2**32)
    return OptionTrades(rec, idx, spot, sig, t_years, theo)


def tick_rule(contract: np.ndarray, price: np.ndarray) -> np.ndarray:
    """Aggressor by the tick rule per contract: +1 uptick, −1 downtick, zero tick keeps the
    contract's previous sign, first trade 0 (trades in time order)."""
    return _tick_rule(contract.astype(np.int64), price.astype(np.float64), int(contract.max()) + 1 if contract.size else 1)


@nb.njit(cache=True)
def _tick_rule(contract, price, n_contracts):
    out = np.zeros(contract.shape[0], np.int8)
    last = np.full(n_contracts, np.nan)
    sign = np.zeros(n_contracts, np.int8)
    for i in range(contract.shape[0]):
        c = contract[i]
        if not np.isnan(last[c]):
            if price[i] > last[c] + 1e-12:
                sign[c] = 1
            elif price[i] < last[c] - 1e-12:
                sign[c] = -1
        out[i] = sign[c]
        last[c] = price[i]
    return out
