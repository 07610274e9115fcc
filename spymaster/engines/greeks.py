"""Black–Scholes price, delta, gamma, vega and implied volatility (SPEC §8), numba-compiled.

Conventions: European options on SPY, no dividend, continuously compounded rate ``r`` (per
year). ``S`` and ``K`` are SPY $ per share, ``T`` is in years (see :func:`year_fraction`:
seconds / (365·24·3600), floored at ``min_t_seconds``), ``sigma`` is per √year. Prices are SPY $
per share; delta is per share (dimensionless); gamma is per share per $1 of S (1/$); vega is $
per unit of sigma.

The closed forms are the textbook ones:

    d1 = (ln(S/K) + (r + σ²/2)·T) / (σ√T),   d2 = d1 − σ√T
    call = S·N(d1) − K·e^{−rT}·N(d2),   put = K·e^{−rT}·N(−d2) − S·N(−d1)
    delta_call = N(d1),   delta_put = −N(−d1),   gamma = φ(d1) / (S·σ√T),   vega = S·φ(d1)·√T

with N(x) = erfc(−x/√2)/2 (accurate in both tails). Scalar functions are ``@njit`` and can be
called from other kernels; the ``*_array`` functions broadcast numpy inputs and loop in one
compiled call.

The implied-volatility solver (:func:`implied_vol_from`) is a safeguarded Newton iteration
(Newton steps while they stay inside the current bracket and shrink fast enough, bisection
otherwise) on [lo, hi], run on the log price of the out-of-the-money side. A price whose root is
not bracketed (below the σ=lo price — e.g. below intrinsic value — or above the σ=hi price) is
unsolvable and gives NaN.
"""

from __future__ import annotations

import math

import numba
import numpy as np

YEAR_SECONDS = 365.0 * 24.0 * 3600.0  # seconds per year of the year fraction
_SQRT2 = math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)
IV_XTOL = 1e-12  # the solver stops after a step (or with a bracket) smaller than this (σ, per √year)
IV_MAXITER = 200


# ---------------------------------------------------------------------------------- time
@numba.njit(cache=True, nogil=True)
def year_fraction(expiry_ns: int, ts_ns: int, min_t_seconds: float) -> float:
    """Years from ``ts_ns`` to ``expiry_ns`` (int ns), floored at ``min_t_seconds`` seconds."""
    secs = (expiry_ns - ts_ns) / 1e9
    if secs < min_t_seconds:
        secs = min_t_seconds
    return secs / YEAR_SECONDS


# ---------------------------------------------------------------------------------- scalars
@numba.njit(cache=True, nogil=True)
def norm_cdf(x: float) -> float:
    """Standard normal CDF, accurate to ~1e-16 relative in both tails."""
    return 0.5 * math.erfc(-x / _SQRT2)


@numba.njit(cache=True, nogil=True)
def norm_pdf(x: float) -> float:
    return _INV_SQRT2PI * math.exp(-0.5 * x * x)


@numba.njit(cache=True, nogil=True)
def d1_d2(S: float, K: float, T: float, sigma: float, r: float):
    """(d1, d2, σ√T)."""
    sd = sigma * math.sqrt(T)
    d1 = (math.log(S / K) + (r + 0.5 * sigma * sigma) * T) / sd
    return d1, d1 - sd, sd


@numba.njit(cache=True, nogil=True)
def bs_price(S: float, K: float, T: float, sigma: float, r: float, is_call: bool) -> float:
    """Black–Scholes price (SPY $ per share)."""
    d1, d2, _ = d1_d2(S, K, T, sigma, r)
    disc = K * math.exp(-r * T)
    if is_call:
        return S * norm_cdf(d1) - disc * norm_cdf(d2)
    return disc * norm_cdf(-d2) - S * norm_cdf(-d1)


@numba.njit(cache=True, nogil=True)
def bs_delta(S: float, K: float, T: float, sigma: float, r: float, is_call: bool) -> float:
    """∂price/∂S (per share): N(d1) for a call, −N(−d1) for a put."""
    d1, _, _ = d1_d2(S, K, T, sigma, r)
    if is_call:
        return norm_cdf(d1)
    return -norm_cdf(-d1)


@numba.njit(cache=True, nogil=True)
def bs_gamma(S: float, K: float, T: float, sigma: float, r: float) -> float:
    """∂²price/∂S² (1/$ per share), the same for calls and puts."""
    d1, _, sd = d1_d2(S, K, T, sigma, r)
    return norm_pdf(d1) / (S * sd)


@numba.njit(cache=True, nogil=True)
def bs_vega(S: float, K: float, T: float, sigma: float, r: float) -> float:
    """∂price/∂σ ($ per unit of σ), the same for calls and puts."""
    d1, _, _ = d1_d2(S, K, T, sigma, r)
    return S * norm_pdf(d1) * math.sqrt(T)


@numba.njit(cache=True, nogil=True)
def _price_vega(S: float, K: float, T: float, sigma: float, r: float, is_call: bool):
    sqt = math.sqrt(T)
    sd = sigma * sqt
    d1 = (math.log(S / K) + (r + 0.5 * sigma * sigma) * T) / sd
    d2 = d1 - sd
    disc = K * math.exp(-r * T)
    if is_call:
        p = S * norm_cdf(d1) - disc * norm_cdf(d2)
    else:
        p = disc * norm_cdf(-d2) - S * norm_cdf(-d1)
    return p, S * norm_pdf(d1) * sqt


@numba.njit(cache=True, nogil=True)
def implied_vol(price: float, S: float, K: float, T: float, r: float, is_call: bool,
                lo: float, hi: float) -> float:
    """Implied volatility of ``price`` on [lo, hi]; NaN when the root is not bracketed.

    f(σ) = bs_price(σ) − price is increasing in σ. Unsolvable (NaN) when f(lo) > 0 (price below
    the σ=lo price, e.g. below intrinsic) or f(hi) < 0 (above the σ=hi price), or when an input is
    not a positive finite number. Stops after a Newton step below 1e-12 (the error is then
    far smaller) or on a bracket narrower than 1e-12.
    """
    return implied_vol_from(price, S, K, T, r, is_call, lo, hi, np.nan)


@numba.njit(cache=True, nogil=True)
def _log_otm(lnSK: float, S: float, disc: float, sqt: float, T: float, sigma: float, r: float,
             otm_call: bool, ln_p: float):
    """h(σ) = ln(price of the out-of-the-money side at σ) − ln_p and dh/dσ = vega / price, from the
    per-solve constants ln(S/K), K·e^{−rT} and √T (the same arithmetic as :func:`bs_price`)."""
    sd = sigma * sqt
    d1 = (lnSK + (r + 0.5 * sigma * sigma) * T) / sd
    d2 = d1 - sd
    if otm_call:
        p = S * norm_cdf(d1) - disc * norm_cdf(d2)
    else:
        p = disc * norm_cdf(-d2) - S * norm_cdf(-d1)
    if not p > 0.0:
        return -np.inf, 0.0
    return math.log(p) - ln_p, S * norm_pdf(d1) * sqt / p


@numba.njit(cache=True, nogil=True)
def implied_vol_from(price: float, S: float, K: float, T: float, r: float, is_call: bool,
                     lo: float, hi: float, guess: float) -> float:
    """:func:`implied_vol` started from ``guess`` (e.g. the contract's previous IV; NaN or outside
    (lo, hi) → the Manaster–Koehler guess). The root does not depend on the guess beyond the
    solver tolerance; a good guess only saves iterations.

    Method: an in-the-money price is turned into the price of the out-of-the-money side by put–call
    parity (call − put = S − K·e^{−rT}; the same σ solves both), then a safeguarded Newton
    iteration (Newton while the step stays inside the bracket and the residual at least halves,
    else bisection) runs on h(σ) = ln(otm price(σ)) − ln(otm price), much closer to linear in σ
    than the price for far out-of-the-money options. h and f(σ) = price(σ) − price have the same sign, so the
    bracket and the unsolvable cases are those of f: a price at or below intrinsic (forward)
    value or below the σ=lo price, or above the σ=hi price → NaN.
    """
    if not (price == price and S > 0.0 and K > 0.0 and T > 0.0 and hi > lo and lo > 0.0):
        return np.nan
    disc = K * math.exp(-r * T)
    if is_call:
        otm_call = not S > disc
        p_otm = price if otm_call else price - (S - disc)
    else:
        otm_call = S < disc
        p_otm = price - (disc - S) if otm_call else price
    if not p_otm > 0.0:
        return np.nan
    ln_p = math.log(p_otm)
    lnSK = math.log(S / K)
    sqt = math.sqrt(T)
    x = guess
    if not (lo < x < hi):
        x = math.sqrt(abs(math.log(S / K) + r * T) * 2.0 / T)
        if not (lo < x < hi):
            x = 0.5 * (lo + hi)
    f, v = _log_otm(lnSK, S, disc, sqt, T, x, r, otm_call, ln_p)
    if f == 0.0:
        return x
    # bracket [a, b] ∋ root: a sampled point with h < 0 (or lo), b one with h > 0 (or hi). The end
    # points are evaluated only when needed (a bisection, i.e. Newton leaving the bracket): a
    # Newton iteration converging inside (lo, hi) has found the root, so the bracket had a sign
    # change (h is increasing).
    a, b = lo, hi
    a_ok = f < 0.0
    b_ok = not a_ok
    if a_ok:
        a = x
    else:
        b = x
    f_old = np.inf
    for _ in range(IV_MAXITER):
        # Newton while its step stays inside the bracket and the residual at least halves
        x_newton = x - f / v if v > 0.0 else np.nan
        if not (a < x_newton < b) or abs(f) > 0.5 * f_old:
            if not a_ok:
                f_end, _ = _log_otm(lnSK, S, disc, sqt, T, lo, r, otm_call, ln_p)
                if f_end == 0.0:
                    return lo
                if f_end > 0.0:
                    return np.nan
                a_ok = True
            if not b_ok:
                f_end, _ = _log_otm(lnSK, S, disc, sqt, T, hi, r, otm_call, ln_p)
                if f_end == 0.0:
                    return hi
                if f_end < 0.0:
                    return np.nan
                b_ok = True
            x_new = 0.5 * (a + b)
        else:
            x_new = x_newton
        dx = x_new - x
        x = x_new
        if abs(dx) < IV_XTOL:
            return x
        f_old = abs(f)
        f, v = _log_otm(lnSK, S, disc, sqt, T, x, r, otm_call, ln_p)
        if f < 0.0:
            a = x
            a_ok = True
        elif f > 0.0:
            b = x
            b_ok = True
        else:
            return x
        if b - a < IV_XTOL:
            return 0.5 * (a + b)
    return x


# ---------------------------------------------------------------------------------- arrays
@numba.njit(cache=True, nogil=True)
def _price_loop(S, K, T, sigma, r, is_call, out):
    for i in range(out.shape[0]):
        out[i] = bs_price(S[i], K[i], T[i], sigma[i], r[i], is_call[i])


@numba.njit(cache=True, nogil=True)
def _delta_loop(S, K, T, sigma, r, is_call, out):
    for i in range(out.shape[0]):
        out[i] = bs_delta(S[i], K[i], T[i], sigma[i], r[i], is_call[i])


@numba.njit(cache=True, nogil=True)
def _gamma_loop(S, K, T, sigma, r, out):
    for i in range(out.shape[0]):
        out[i] = bs_gamma(S[i], K[i], T[i], sigma[i], r[i])


@numba.njit(cache=True, nogil=True)
def _vega_loop(S, K, T, sigma, r, out):
    for i in range(out.shape[0]):
        out[i] = bs_vega(S[i], K[i], T[i], sigma[i], r[i])


@numba.njit(cache=True, nogil=True)
def _iv_loop(price, S, K, T, r, is_call, lo, hi, out):
    for i in range(out.shape[0]):
        out[i] = implied_vol(price[i], S[i], K[i], T[i], r[i], is_call[i], lo, hi)


def _flat(*arrays, bools: int = 0):
    """Broadcast inputs; return (shape, flat float64 arrays..., flat bool arrays...)."""
    b = np.broadcast_arrays(*[np.asarray(a) for a in arrays])
    shape = b[0].shape
    n_float = len(b) - bools
    out = [np.ascontiguousarray(x, dtype=np.float64).ravel() for x in b[:n_float]]
    out += [np.ascontiguousarray(x, dtype=np.bool_).ravel() for x in b[n_float:]]
    return shape, out


def bs_price_array(S, K, T, sigma, r, is_call) -> np.ndarray:
    """Vectorized :func:`bs_price` (numpy broadcasting)."""
    shape, (S, K, T, sigma, r, c) = _flat(S, K, T, sigma, r, is_call, bools=1)
    out = np.empty(S.shape[0])
    _price_loop(S, K, T, sigma, r, c, out)
    return out.reshape(shape)


def bs_delta_array(S, K, T, sigma, r, is_call) -> np.ndarray:
    """Vectorized :func:`bs_delta`."""
    shape, (S, K, T, sigma, r, c) = _flat(S, K, T, sigma, r, is_call, bools=1)
    out = np.empty(S.shape[0])
    _delta_loop(S, K, T, sigma, r, c, out)
    return out.reshape(shape)


def bs_gamma_array(S, K, T, sigma, r) -> np.ndarray:
    """Vectorized :func:`bs_gamma`."""
    shape, (S, K, T, sigma, r) = _flat(S, K, T, sigma, r)
    out = np.empty(S.shape[0])
    _gamma_loop(S, K, T, sigma, r, out)
    return out.reshape(shape)


def bs_vega_array(S, K, T, sigma, r) -> np.ndarray:
    """Vectorized :func:`bs_vega`."""
    shape, (S, K, T, sigma, r) = _flat(S, K, T, sigma, r)
    out = np.empty(S.shape[0])
    _vega_loop(S, K, T, sigma, r, out)
    return out.reshape(shape)


def implied_vol_array(price, S, K, T, r, is_call, lo: float, hi: float) -> np.ndarray:
    """Vectorized :func:`implied_vol` (NaN where unsolvable)."""
    shape, (price, S, K, T, r, c) = _flat(price, S, K, T, r, is_call, bools=1)
    out = np.empty(S.shape[0])
    _iv_loop(price, S, K, T, r, c, float(lo), float(hi), out)
    return out.reshape(shape)


def year_fraction_array(expiry_ns: int, ts_ns, min_t_seconds: float) -> np.ndarray:
    """Vectorized :func:`year_fraction` over int64 ns timestamps."""
    ts = np.asarray(ts_ns, dtype=np.int64)
    secs = (np.int64(expiry_ns) - ts) / 1e9
    return np.maximum(secs, float(min_t_seconds)) / YEAR_SECONDS
