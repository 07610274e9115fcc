"""Black–Scholes greeks and the IV solver against an independent scipy reference (SPEC §8)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import ndtr
from scipy.stats import norm

from spymaster.config import Config
from spymaster.engines import greeks as g

EPS = np.finfo(float).eps
CFG = Config().fuel
S0 = 680.0
STRIKES = (500.0, 600.0, 650.0, 670.0, 678.0, 679.5, 680.0, 680.5, 682.0, 690.0, 710.0, 760.0, 900.0)
# seconds to expiry, before the floor: minutes before a 0DTE expiry, a day, a month, a year
SECONDS = (30.0, 299.0, 300.0, 301.0, 1800.0, 6.5 * 3600, 86400.0, 30 * 86400.0, 365 * 86400.0)
SIGMAS = (0.01, 0.03, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0)
RATES = (0.045, 0.0)


# ------------------------------------------------------------------ the independent reference
# closed forms with scipy's normal distribution (norm.cdf is scipy.special.ndtr; the scalar ufunc
# is called directly inside brentq, where norm.cdf's per-call overhead would dominate)
def ref_d1(S, K, T, s, r):
    return (math.log(S / K) + (r + 0.5 * s * s) * T) / (s * math.sqrt(T))


def ref_price(S, K, T, s, r, call):
    d1 = ref_d1(S, K, T, s, r)
    d2 = d1 - s * math.sqrt(T)
    if call:
        return S * ndtr(d1) - K * math.exp(-r * T) * ndtr(d2)
    return K * math.exp(-r * T) * ndtr(-d2) - S * ndtr(-d1)


def ref_delta(S, K, T, s, r, call):
    d1 = ref_d1(S, K, T, s, r)
    return norm.cdf(d1) if call else -norm.cdf(-d1)


def ref_gamma(S, K, T, s, r):
    return norm.pdf(ref_d1(S, K, T, s, r)) / (S * s * math.sqrt(T))


def ref_vega(S, K, T, s, r):
    return S * norm.pdf(ref_d1(S, K, T, s, r)) * math.sqrt(T)


def ref_iv(price, S, K, T, r, call, lo, hi):
    """brentq on the closed form; None when the bracket has no sign change."""
    f = lambda s: ref_price(S, K, T, s, r, call) - price  # noqa: E731
    fa, fb = f(lo), f(hi)
    if fa == 0.0:
        return lo
    if fb == 0.0:
        return hi
    if fa * fb > 0.0:
        return None
    return brentq(f, lo, hi, xtol=1e-15, rtol=8.9e-16, maxiter=500)


def grid():
    for secs in SECONDS:
        T = max(secs, CFG.min_t_seconds) / g.YEAR_SECONDS
        for K in STRIKES:
            for s in SIGMAS:
                for r in RATES:
                    for call in (True, False):
                        yield T, K, s, r, call


def close(a: float, b: float, rtol: float) -> bool:
    # relative, with an absolute floor in the subnormal range only (exp(-x²/2) there has no digits)
    return abs(a - b) <= rtol * abs(b) + 1e-300


TINY_PRICE = 1e-10  # $; far below the $0.01 tick


def close_price(a: float, b: float) -> bool:
    """Prices: 1e-8 relative; below TINY_PRICE 1e-18 $ absolute. A far out-of-the-money price is a
    difference of two nearly equal tail terms (e.g. K·e^{-rT}·N(-d2) - S·N(-d1) with d1 - d2 = σ√T
    tiny), so at 1e-225 $ the closed form itself carries ~1e-8 relative rounding in any
    implementation (checked against mpmath); such prices are compared absolutely."""
    if abs(b) < TINY_PRICE:
        return abs(a - b) <= 1e-18
    return close(a, b, 1e-8)


# ------------------------------------------------------------------ tests
def test_year_fraction_floors_at_min_t_seconds():
    exp = 1_000_000_000_000
    assert g.year_fraction(exp, exp - 60 * 10**9, 300.0) == 300.0 / g.YEAR_SECONDS
    assert g.year_fraction(exp, exp - 301 * 10**9, 300.0) == 301.0 / g.YEAR_SECONDS
    assert g.year_fraction(exp, exp + 10**9, 300.0) == 300.0 / g.YEAR_SECONDS      # after expiry: the floor
    assert g.year_fraction(exp, exp - 86_400 * 10**9, 300.0) == 86_400.0 / (365 * 24 * 3600)
    ts = np.array([exp - 60 * 10**9, exp - 3600 * 10**9])
    assert np.array_equal(g.year_fraction_array(exp, ts, 300.0), np.array([300.0, 3600.0]) / g.YEAR_SECONDS)


def test_price_delta_gamma_vega_match_the_reference_on_the_grid():
    n = 0
    for T, K, s, r, call in grid():
        p, d = g.bs_price(S0, K, T, s, r, call), g.bs_delta(S0, K, T, s, r, call)
        gm, v = g.bs_gamma(S0, K, T, s, r), g.bs_vega(S0, K, T, s, r)
        assert close_price(p, ref_price(S0, K, T, s, r, call)), (T, K, s, r, call, p)
        assert close(d, ref_delta(S0, K, T, s, r, call), 1e-8), (T, K, s, r, call, d)
        assert close(gm, ref_gamma(S0, K, T, s, r), 1e-8), (T, K, s, r, gm)
        assert close(v, ref_vega(S0, K, T, s, r), 1e-8), (T, K, s, r, v)
        n += 1
    assert n == len(SECONDS) * len(STRIKES) * len(SIGMAS) * len(RATES) * 2


def test_array_versions_equal_the_scalar_functions_and_broadcast():
    pts = list(grid())
    T, K, s, r, c = (np.array(x) for x in zip(*pts))
    price = g.bs_price_array(S0, K, T, s, r, c)
    assert price.shape == K.shape
    assert np.array_equal(price, [g.bs_price(S0, k, t, si, ri, ci) for t, k, si, ri, ci in pts])
    assert np.array_equal(g.bs_delta_array(S0, K, T, s, r, c), [g.bs_delta(S0, k, t, si, ri, ci) for t, k, si, ri, ci in pts])
    assert np.array_equal(g.bs_gamma_array(S0, K, T, s, r), [g.bs_gamma(S0, k, t, si, ri) for t, k, si, ri, _ in pts])
    assert np.array_equal(g.bs_vega_array(S0, K, T, s, r), [g.bs_vega(S0, k, t, si, ri) for t, k, si, ri, _ in pts])
    two_d = g.bs_gamma_array(np.array([[670.0], [690.0]]), np.array([675.0, 680.0, 685.0]), 0.001, 0.2, 0.045)
    assert two_d.shape == (2, 3)
    assert two_d[1, 2] == g.bs_gamma(690.0, 685.0, 0.001, 0.2, 0.045)


def test_implied_vol_agrees_with_brentq_to_1e10():
    """Where double precision determines σ to better than 1e-11 (vega large enough against the
    rounding of a price of size S + K), |σ − σ_brentq| ≤ 1e-10. Elsewhere no solver can pin σ
    that well; both must then reproduce the price to rounding."""
    well = ill = 0
    well_0dte = well_deep = 0
    for T, K, s, r, call in grid():
        if not 0.01 < s < 5.0:
            continue
        price = ref_price(S0, K, T, s, r, call)
        noise = 64 * EPS * (S0 + K)
        f_lo = ref_price(S0, K, T, CFG.iv_min, r, call) - price
        f_hi = ref_price(S0, K, T, CFG.iv_max, r, call) - price
        if abs(f_lo) <= noise or abs(f_hi) <= noise:
            continue   # the price is indistinguishable from a bracket end: solvability is rounding
        ref = ref_iv(price, S0, K, T, r, call, CFG.iv_min, CFG.iv_max)
        iv = g.implied_vol(price, S0, K, T, r, call, CFG.iv_min, CFG.iv_max)
        assert ref is not None and iv == iv, (T, K, s, r, call)
        vega = ref_vega(S0, K, T, s, r)
        if noise / max(vega, 1e-300) < 1e-11:
            well += 1
            assert abs(iv - ref) <= 1e-10, (T, K, s, r, call, iv, ref)
            well_0dte += T * g.YEAR_SECONDS <= 1800
            well_deep += abs(math.log(S0 / K)) >= 0.05
        else:
            ill += 1
            assert abs(g.bs_price(S0, K, T, iv, r, call) - price) <= noise, (T, K, s, r, call, iv)
    assert well > 300 and well_0dte > 40 and well_deep > 40 and ill > 0


def test_implied_vol_ignores_the_starting_guess():
    for T, K, s, r, call in grid():
        if not 0.01 < s < 5.0 or ref_vega(S0, K, T, s, r) < 1e-3:
            continue
        price = g.bs_price(S0, K, T, s, r, call)
        base = g.implied_vol(price, S0, K, T, r, call, CFG.iv_min, CFG.iv_max)
        for guess in (0.011, 0.3, 4.9, np.nan, 17.0):
            assert abs(g.implied_vol_from(price, S0, K, T, r, call, CFG.iv_min, CFG.iv_max, guess) - base) <= 1e-11


def test_implied_vol_unsolvable_below_intrinsic_or_above_the_sigma_max_price():
    lo, hi = CFG.iv_min, CFG.iv_max
    cases = []
    for secs in (300.0, 3600.0, 86400.0):
        T = secs / g.YEAR_SECONDS
        for r in RATES:
            fwd_call = S0 - 660.0 * math.exp(-r * T)          # ITM call intrinsic (forward)
            fwd_put = 700.0 * math.exp(-r * T) - S0           # ITM put intrinsic (forward)
            cases += [(fwd_call - 0.01, 660.0, T, r, True), (fwd_put - 0.01, 700.0, T, r, False),
                      (-1.0, 670.0, T, r, False)]
            for K, call in ((680.0, True), (700.0, True), (660.0, False), (650.0, True)):
                cases.append((ref_price(S0, K, T, hi, r, call) * 1.01 + 0.01, K, T, r, call))
            cases.append((S0 + 1.0, 680.0, T, r, True))       # a call above the spot
    for price, K, T, r, call in cases:
        assert ref_iv(price, S0, K, T, r, call, lo, hi) is None, (price, K, T, r, call)
        assert math.isnan(g.implied_vol(price, S0, K, T, r, call, lo, hi)), (price, K, T, r, call)
    out = g.implied_vol_array(np.array([c[0] for c in cases]), S0, np.array([c[1] for c in cases]),
                              np.array([c[2] for c in cases]), np.array([c[3] for c in cases]),
                              np.array([c[4] for c in cases]), lo, hi)
    assert np.isnan(out).all()


@pytest.mark.parametrize("bad", [dict(price=np.nan), dict(S=0.0), dict(K=-1.0), dict(T=0.0)])
def test_implied_vol_nan_for_invalid_inputs(bad):
    args = dict(price=2.0, S=S0, K=680.0, T=0.001, r=0.045, is_call=True, lo=0.01, hi=5.0) | bad
    assert math.isnan(g.implied_vol(**args))
