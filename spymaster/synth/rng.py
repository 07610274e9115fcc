"""A small counter-free PRNG (xoshiro256**) usable inside numba kernels.

The synthetic market keeps its random state in a ``uint64[4]`` array owned by the simulator, so
a kernel can stop anywhere (full output buffer, slice boundary) and resume with exactly the
same stream: the output never depends on how the run was sliced. Seeds come from
:func:`seed_state` — a NumPy ``SeedSequence`` over (seed, date ordinal, stream id) — so every
(seed, trading date, instrument) has its own independent stream.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

_U11 = np.uint64(11)
_U17 = np.uint64(17)
_U45 = np.uint64(45)
_U7 = np.uint64(7)
_U5 = np.uint64(5)
_U9 = np.uint64(9)
_U64 = np.uint64(64)
_INV53 = 1.0 / 9007199254740992.0


def seed_state(*key: int) -> np.ndarray:
    """The 4-word xoshiro state of stream ``key`` (e.g. ``(seed, date.toordinal(), stream)``)."""
    st = np.random.SeedSequence([int(k) & 0xFFFFFFFFFFFF for k in key]).generate_state(4, dtype=np.uint64)
    if not st.any():  # pragma: no cover - astronomically unlikely
        st[0] = np.uint64(1)
    return st


@nb.njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << k) | (x >> (_U64 - k))


@nb.njit(cache=True)
def next_u64(s):
    """Next 64-bit output; advances ``s`` in place."""
    result = _rotl(s[1] * _U5, _U7) * _U9
    t = s[1] << _U17
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], _U45)
    return result


@nb.njit(cache=True)
def uniform(s):
    """Uniform float in [0, 1)."""
    return float(next_u64(s) >> _U11) * _INV53


@nb.njit(cache=True)
def uniform_open(s):
    """Uniform float in (0, 1)."""
    return (float(next_u64(s) >> _U11) + 0.5) * _INV53


@nb.njit(cache=True)
def exponential(s):
    """Exponential with mean 1."""
    return -math.log(uniform_open(s))


@nb.njit(cache=True)
def normal(s):
    """Standard normal (Box–Muller, one draw per call)."""
    u1 = uniform_open(s)
    u2 = uniform(s)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@nb.njit(cache=True)
def geometric(s, mean):
    """Geometric on {1, 2, ...} with the given mean (>= 1)."""
    if mean <= 1.0:
        return 1
    p = 1.0 / mean
    return 1 + int(math.floor(math.log(uniform_open(s)) / math.log(1.0 - p)))


@nb.njit(cache=True)
def randint(s, n):
    """Uniform integer in [0, n)."""
    k = int(uniform(s) * n)
    return k if k < n else n - 1
