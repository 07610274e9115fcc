"""A bounded-memory, columnar, time-stamped row buffer whose live region is contiguous.

Rows live in ``cols[name][0:n]`` — one numpy array per field of a structured ``dtype``
(sub-array fields become extra dimensions, e.g. a ``(10,)`` field is a ``(capacity, 10)``
column) — sorted by the int64 ``ts`` column (ns since the epoch, ``ts_recv``). Because the
live region is one contiguous slice, a trailing window is found with two ``np.searchsorted``
calls and returned as views.

Appends happen inside numba kernels, not here: a kernel receives the column arrays and the
current count, appends until its input is done or the buffer is full, and returns how far it
got; the Python wrapper then calls :meth:`RingBuffer.make_room` and resumes. ``make_room``
first *compacts* — drops rows older than ``latest_ts − retention_ns``, always keeping the last
row before that cutoff (so "the state in effect at the window start" survives) — and grows the
arrays (doubling) when compaction alone leaves the buffer more than half full.

Guarantee (what queries may rely on): every row with ``ts ≥ latest_ts − retention_ns``, and
the last row before that instant, is always present. Compaction only ever happens at a cutoff
at or before that instant, and every query names its own time bounds, so no query answer
depends on when (or whether) compaction happened. A query whose bounds reach before the
newest compaction cutoff cannot be answered exactly and raises :class:`RetentionError`
instead of returning a silently truncated result.

Memory is bounded by the rows of the retention window (capacity ≤ about 4 × the largest number
of rows ever inside ``retention_ns`` + 1, and at least the initial capacity), not by the day.
"""

from __future__ import annotations

import numpy as np

_INT64_MIN = np.iinfo(np.int64).min


class RetentionError(ValueError):
    """A query reaches before the buffer's retention guarantee (a caller bug, not bad input)."""


class RingBuffer:
    """Columnar time-sorted rows with retention-based compaction (see the module docstring).

    ``dtype`` is a structured dtype that must contain an int64 field ``ts_field`` (default
    ``"ts"``). ``retention_ns`` is the trailing span (ns) that must survive compaction.
    """

    def __init__(self, dtype: np.dtype, *, retention_ns: int, capacity: int = 1024,
                 ts_field: str = "ts", name: str = "buffer") -> None:
        dtype = np.dtype(dtype)
        if dtype.names is None or ts_field not in dtype.names:
            raise ValueError(f"{name}: dtype needs a {ts_field!r} field")
        if dtype[ts_field] != np.dtype(np.int64):
            raise ValueError(f"{name}: {ts_field!r} must be int64 ns")
        if retention_ns <= 0:
            raise ValueError(f"{name}: retention_ns must be > 0")
        self.dtype = dtype
        self.name = name
        self.ts_field = ts_field
        self.retention_ns = int(retention_ns)
        self.n = 0
        self.compactions = 0
        self.dropped = 0
        # Queries with a lower time bound >= this are exact (INT64_MIN: nothing dropped yet).
        self.exact_from_ns = int(_INT64_MIN)
        cap = max(2, int(capacity))
        self.cols: dict[str, np.ndarray] = {
            nm: np.zeros((cap,) + dtype[nm].shape, dtype=dtype[nm].base) for nm in dtype.names
        }

    # ------------------------------------------------------------------ shape
    @property
    def capacity(self) -> int:
        return int(self.cols[self.ts_field].shape[0])

    @property
    def free(self) -> int:
        return self.capacity - self.n

    @property
    def ts(self) -> np.ndarray:
        """The live ``ts`` column (a view of rows ``0..n-1``)."""
        return self.cols[self.ts_field][: self.n]

    def __len__(self) -> int:
        return self.n

    def latest_ts(self) -> int | None:
        """ts of the newest row (ns), or None when empty."""
        return int(self.cols[self.ts_field][self.n - 1]) if self.n else None

    def nbytes(self) -> int:
        return int(sum(c.nbytes for c in self.cols.values()))

    # ------------------------------------------------------------------ room for kernels
    def make_room(self, need: int = 1) -> None:
        """Ensure at least ``need`` free rows: compact, then grow (doubling) if still crowded."""
        self.compact()
        cap = self.capacity
        if self.free >= need and self.n <= cap // 2:
            return
        new_cap = cap * 2
        while new_cap - self.n < need:
            new_cap *= 2
        for nm, col in self.cols.items():
            grown = np.zeros((new_cap,) + col.shape[1:], dtype=col.dtype)
            grown[: self.n] = col[: self.n]
            self.cols[nm] = grown

    def compact(self) -> int:
        """Drop rows older than ``latest_ts − retention_ns`` except the last one before it.

        Returns the number of rows dropped.
        """
        if self.n < 2:
            return 0
        ts = self.cols[self.ts_field]
        cutoff = int(ts[self.n - 1]) - self.retention_ns
        k = int(np.searchsorted(ts[: self.n], cutoff, side="left"))  # rows 0..k-1 have ts < cutoff
        drop = k - 1  # keep row k-1: the state in effect at the cutoff
        if drop <= 0:
            return 0
        m = self.n - drop
        for col in self.cols.values():
            col[:m] = col[drop: self.n]
        self.n = m
        self.compactions += 1
        self.dropped += drop
        self.exact_from_ns = max(self.exact_from_ns, cutoff)
        return drop

    def set_count(self, n: int) -> None:
        """Record the count a kernel returned (rows ``0..n-1`` are live)."""
        if not 0 <= n <= self.capacity:
            raise ValueError(f"{self.name}: count {n} outside [0, {self.capacity}]")
        self.n = int(n)

    def clear(self) -> None:
        self.n = 0
        self.exact_from_ns = int(_INT64_MIN)

    # ------------------------------------------------------------------ queries (time-bounded)
    def check_from(self, t0: int) -> None:
        """Raise :class:`RetentionError` if rows at or after ``t0`` (ns) may have been dropped."""
        if t0 < self.exact_from_ns:
            raise RetentionError(
                f"{self.name}: query from {t0} ns reaches before the retention horizon "
                f"{self.exact_from_ns} ns (retention {self.retention_ns / 1e9:g} s)")

    def index_range(self, t0: int, t1: int, *, inclusive_end: bool = False) -> tuple[int, int]:
        """Row index range ``[lo, hi)`` of the rows with ``t0 ≤ ts < t1`` (``≤ t1`` if inclusive)."""
        self.check_from(t0)
        ts = self.ts
        lo = int(np.searchsorted(ts, t0, side="left"))
        hi = int(np.searchsorted(ts, t1, side="right" if inclusive_end else "left"))
        return lo, max(lo, hi)

    def index_before(self, t: int) -> int:
        """Index of the last row with ``ts < t`` (the row in effect just before t), −1 if none."""
        self.check_from(t)
        return int(np.searchsorted(self.ts, t, side="left")) - 1

    def view(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Column views of rows ``lo..hi-1``."""
        return {nm: col[lo:hi] for nm, col in self.cols.items()}

    def window(self, t0: int, t1: int, *, inclusive_end: bool = False) -> dict[str, np.ndarray]:
        """Column views of the rows with ``t0 ≤ ts < t1`` (``≤ t1`` with ``inclusive_end``)."""
        lo, hi = self.index_range(t0, t1, inclusive_end=inclusive_end)
        return self.view(lo, hi)

    def live(self) -> dict[str, np.ndarray]:
        """Column views of every live row (for kernels and introspection)."""
        return self.view(0, self.n)
