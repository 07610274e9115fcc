"""``BookState``: committed ES MBP-10 book states and the barrier's per-pair change entries.

A component of the replay engine (SPEC §3 commit rule, §7 barrier inputs). :meth:`BookState.apply`
walks events ``lo..hi-1`` of a batch in one numba kernel call per buffer fill:

* **KIND_BOOK** (``batch.books``, dtype :data:`spymaster.events.BOOK`): a record whose action is
  Trade ``T`` or Fill ``F`` never changes the book. Any other record becomes the *pending* state
  (its ``levels`` after the change). At each record with ``F_LAST`` (``flags & 128``), if a
  non-T/F record arrived since the previous commit, the pending state is *committed* with
  commit ts = that ``F_LAST`` record's ``ts_recv``. The first committed state of the session is the
  baseline: it has no pair before it.
* **KIND_TRADE** (``batch.trades``): after the baseline, the volume of each trade with a known
  aggressor is accumulated per (price, side hit) until the next commit: a sell aggressor (``A``)
  hits the bid, a buy aggressor (``B``) hits the ask, ``N`` is ignored.

At every commit after the first, for each side, the *change entries* of the pair (previous
state, this state) are appended: for every price of that side that is no deeper than the 10th
visible level of that side in *both* states (a side showing fewer than 10 levels is visible
whole), with ``Δ = size_after − size_before`` (0 when the price is not among the levels) and
``V`` = the trade volume since the previous commit at that price hitting that side, an entry
is kept when ``Δ ≠ 0`` or (``V > 0`` and ``size_before > 0``). Each entry also carries its
split (SPEC §7): ``filled = min(V, size_before)``, ``rest = Δ + filled``, ``added = max(rest, 0)``,
``canceled = max(−rest, 0)``.

Per commit the buffer keeps the whole committed book (10 levels × px/sz per side), the sums of
the 10 bid / ask sizes (empty levels count 0) and their running time integrals (for the
time-weighted baseline in O(1)), so every query is a pure function of the events with
``ts_recv`` before its time bound.

Units: prices int64 1e-9 ES points (``UNDEF_PRICE`` for an empty level), sizes contracts,
times int64 ns ``ts_recv``. Side codes in entries: +1 = ask (defends an UP test), −1 = bid
(defends a DOWN test) — the same sign as the touch direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from spymaster.config import Config
from spymaster.errors import OrderingError
from spymaster.events import (ACTION_FILL, ACTION_TRADE, F_LAST, KIND_BOOK, KIND_TRADE, PRICE_SCALE,
                              UNDEF_PRICE, EventBatch)
from spymaster.state.ringbuffer import RingBuffer

NS = 1_000_000_000
NLEV = 10
ENTRIES_PER_COMMIT_MAX = 4 * NLEV  # ≤ 20 distinct prices per side (10 before ∪ 10 after), 2 sides

SIDE_ASK = 1
SIDE_BID = -1

COMMIT_ROW = np.dtype([
    ("ts", "<i8"), ("bid_sum", "<i8"), ("ask_sum", "<i8"), ("cum_bid", "<u8"), ("cum_ask", "<u8"),
    ("bid_px", "<i8", (NLEV,)), ("ask_px", "<i8", (NLEV,)),
    ("bid_sz", "<i8", (NLEV,)), ("ask_sz", "<i8", (NLEV,)),
])
"""One committed book state: commit ts (ns), Σ10 bid / ask sizes (contracts), the running time
integrals of those sums from the session's first commit to this one (contracts·ns, uint64 modulo
2^64: differences are exact while the true difference is below 2^63), the 10 levels per side."""

ENTRY_ROW = np.dtype([
    ("ts", "<i8"), ("side", "i1"), ("price", "<i8"), ("size_before", "<i8"), ("size_after", "<i8"),
    ("vol", "<i8"), ("added", "<i8"), ("canceled", "<i8"), ("filled", "<i8"),
])
"""One change entry of a committed pair: ts = the later state's commit ts (ns); side +1 ask / −1 bid."""

# kernel status codes
_OK, _COMMITS_FULL, _ENTRIES_FULL, _TRADES_FULL, _ORDER = 0, 1, 2, 3, 4
# layout of the int64 state vector shared with the kernel
_S_HAS_COMMIT, _S_HAS_PENDING, _S_PEND_POS, _S_NPT, _S_LAST_TS, _S_NE, _S_NC, _S_COMMITS, _S_MAXSUM = range(9)
# rows of the (4, 10) level matrices
_BPX, _APX, _BSZ, _ASZ = 0, 1, 2, 3

_INT64_MIN = np.iinfo(np.int64).min
_INT64_MAX = np.iinfo(np.int64).max
_UNDEF = np.int64(UNDEF_PRICE)
_SIDE_B = ord("B")
_SIDE_A = ord("A")


@numba.njit(cache=True, inline="always", nogil=True)
def _side_entries(c_px, c_sz, k0, k1, is_bid, side_code, t, pt_px, pt_side, pt_vol, n_pt,
                  e_ts, e_side, e_px, e_sb, e_sa, e_v, e_add, e_can, e_fill, ne):
    """Append the change entries of one side of the committed pair (row k0 → row k1 of that
    side's commit columns ``c_px`` / ``c_sz``); return the new entry count.

    Candidate prices: when both states show the same prices (most MBP-10 updates) those
    prices, all visible; otherwise the earlier state's prices then the prices only in the later
    state, each kept if no deeper than the 10th visible level of both states. An entry counts if
    Δ ≠ 0 or volume traded against resting size (no helper calls here: keeping the loop free of
    array-argument calls is what makes it fast).

    When the prices differ and both states are well formed (visible prices strictly better to
    worse from level 0, empty levels only after them — every real MBP-10 book), a price's size in
    the other state is found by walking the two ordered lists together (O(10) per side) instead
    of scanning the other state per price (O(10²)); any other shape takes the scan. Both give the
    same entries in the same order.
    """
    same = True
    for j in range(NLEV):
        same &= c_px[k0, j] == c_px[k1, j]
    thr = _INT64_MIN if is_bid else _INT64_MAX
    if not same:
        # the deepest visible price of each state (only binding when the side shows all 10 levels)
        nb = 0
        na = 0
        deep_b = c_px[k0, 0]
        deep_a = c_px[k1, 0]
        ordered = True  # both states well formed (see the docstring)
        for j in range(NLEV):
            pb = c_px[k0, j]
            pa = c_px[k1, j]
            if pb != _UNDEF:
                if nb != j or (nb > 0 and not ((is_bid and pb < deep_b) or ((not is_bid) and pb > deep_b))):
                    ordered = False
                if nb == 0 or (is_bid and pb < deep_b) or ((not is_bid) and pb > deep_b):
                    deep_b = pb
                nb += 1
            if pa != _UNDEF:
                if na != j or (na > 0 and not ((is_bid and pa < deep_a) or ((not is_bid) and pa > deep_a))):
                    ordered = False
                if na == 0 or (is_bid and pa < deep_a) or ((not is_bid) and pa > deep_a):
                    deep_a = pa
                na += 1
        if is_bid:
            lim_b = deep_b if nb == NLEV else _INT64_MIN
            lim_a = deep_a if na == NLEV else _INT64_MIN
            thr = max(lim_b, lim_a)  # visible in both: price >= thr
        else:
            lim_b = deep_b if nb == NLEV else _INT64_MAX
            lim_a = deep_a if na == NLEV else _INT64_MAX
            thr = min(lim_b, lim_a)  # visible in both: price <= thr
    else:
        ordered = False
        nb = 0
        na = 0
    npass = 1 if same else 2
    for pass_ in range(npass):
        k = k0 if pass_ == 0 else k1
        ko = k1 if pass_ == 0 else k0    # the other state of the pair
        no = na if pass_ == 0 else nb    # its visible levels (when ordered)
        q = 0                            # walk position in the other state (when ordered)
        for j in range(NLEV):
            if same and n_pt == 0 and c_sz[k0, j] == c_sz[k1, j]:
                continue  # nothing changed at this price and nothing traded
            px = c_px[k, j]
            if px == _UNDEF or (is_bid and px < thr) or ((not is_bid) and px > thr):
                continue
            if same:
                sb = c_sz[k0, j]
                sa = c_sz[k1, j]
            elif ordered:
                # px sits at level j of state k; find it in the other (both strictly ordered)
                while q < no and ((is_bid and c_px[ko, q] > px) or ((not is_bid) and c_px[ko, q] < px)):
                    q += 1
                found = q < no and c_px[ko, q] == px
                if pass_ == 0:
                    sb = c_sz[k0, j]
                    sa = c_sz[k1, q] if found else np.int64(0)
                else:
                    if found:
                        continue
                    sb = np.int64(0)
                    sa = c_sz[k1, j]
            else:
                sb = np.int64(0)
                sa = np.int64(0)
                in_before = False
                for m in range(NLEV):
                    if c_px[k0, m] == px:
                        sb = c_sz[k0, m]
                        in_before = True
                    if c_px[k1, m] == px:
                        sa = c_sz[k1, m]
                if pass_ == 1 and in_before:
                    continue
            v = np.int64(0)
            for m in range(n_pt):
                if pt_px[m] == px and pt_side[m] == side_code:
                    v = pt_vol[m]
                    break
            delta = sa - sb
            if delta == 0 and not (v > 0 and sb > 0):
                continue
            filled = min(v, sb)
            rest = delta + filled
            e_ts[ne] = t
            e_side[ne] = side_code
            e_px[ne] = px
            e_sb[ne] = sb
            e_sa[ne] = sa
            e_v[ne] = v
            e_add[ne] = rest if rest > 0 else 0
            e_can[ne] = -rest if rest < 0 else 0
            e_fill[ne] = filled
            ne += 1
    return ne


@numba.njit(cache=True, nogil=True)
def _book_apply(kind, pos, ts, bk_action, bk_flags, bk_iid, bk_bpx, bk_apx, bk_bsz, bk_asz,
                tr_price, tr_size, tr_side, tr_iid, iid, lo, hi,
                st, pend, pt_px, pt_side, pt_vol,
                c_ts, c_bsum, c_asum, c_cumb, c_cuma, c_bpx, c_apx, c_bsz, c_asz,
                e_ts, e_side, e_px, e_sb, e_sa, e_v, e_add, e_can, e_fill):
    """Apply events lo..hi-1; return (next event index, status). Counts/flags live in ``st``.

    The committed book is the last commit row (``nc − 1``; compaction always keeps it). The
    pending state is row ``pend_pos`` of this batch's records, or ``pend`` once its batch ends.
    """
    has_commit = st[_S_HAS_COMMIT]
    has_pending = st[_S_HAS_PENDING]
    pend_pos = st[_S_PEND_POS]
    n_pt = st[_S_NPT]
    last_ts = st[_S_LAST_TS]
    ne = st[_S_NE]
    nc = st[_S_NC]
    commits = st[_S_COMMITS]
    maxsum = st[_S_MAXSUM]
    c_cap = c_ts.shape[0]
    e_cap = e_ts.shape[0]
    pt_cap = pt_px.shape[0]
    status = _OK
    i = lo
    while i < hi:
        k = kind[i]
        if k == KIND_TRADE:
            p = pos[i]
            if iid >= 0 and tr_iid[p] != iid:
                i += 1
                continue
            t = ts[i]
            if t < last_ts:
                status = _ORDER
                break
            if has_commit != 0:
                s = tr_side[p]
                sd = 0
                if s == _SIDE_B:
                    sd = SIDE_ASK  # buy aggressor lifts the ask
                elif s == _SIDE_A:
                    sd = SIDE_BID  # sell aggressor hits the bid
                if sd != 0:
                    px = tr_price[p]
                    found = False
                    for m in range(n_pt):
                        if pt_px[m] == px and pt_side[m] == sd:
                            pt_vol[m] += np.int64(tr_size[p])
                            found = True
                            break
                    if not found:
                        if n_pt >= pt_cap:
                            status = _TRADES_FULL
                            break
                        pt_px[n_pt] = px
                        pt_side[n_pt] = sd
                        pt_vol[n_pt] = np.int64(tr_size[p])
                        n_pt += 1
            last_ts = t
        elif k == KIND_BOOK:
            p = pos[i]
            if iid >= 0 and bk_iid[p] != iid:
                i += 1
                continue
            t = ts[i]
            if t < last_ts:
                status = _ORDER
                break
            a = bk_action[p]
            changes = a != ACTION_TRADE and a != ACTION_FILL
            commit = (bk_flags[p] & F_LAST) != 0 and (has_pending != 0 or changes)
            if commit:
                if nc >= c_cap:
                    status = _COMMITS_FULL
                    break
                if has_commit != 0 and ne + ENTRIES_PER_COMMIT_MAX > e_cap:
                    status = _ENTRIES_FULL
                    break
            if changes:
                has_pending = 1
                pend_pos = p
            if commit:
                bsum = np.int64(0)
                asum = np.int64(0)
                c_ts[nc] = t
                for j in range(NLEV):
                    if pend_pos >= 0:
                        bpx = bk_bpx[pend_pos, j]
                        apx = bk_apx[pend_pos, j]
                        bsz = np.int64(bk_bsz[pend_pos, j])
                        asz = np.int64(bk_asz[pend_pos, j])
                    else:
                        bpx = pend[_BPX, j]
                        apx = pend[_APX, j]
                        bsz = pend[_BSZ, j]
                        asz = pend[_ASZ, j]
                    c_bpx[nc, j] = bpx
                    c_apx[nc, j] = apx
                    c_bsz[nc, j] = bsz
                    c_asz[nc, j] = asz
                    if bpx != _UNDEF:
                        bsum += bsz
                    if apx != _UNDEF:
                        asum += asz
                c_bsum[nc] = bsum
                c_asum[nc] = asum
                if bsum > maxsum:
                    maxsum = bsum
                if asum > maxsum:
                    maxsum = asum
                if has_commit != 0:
                    # running time integrals of Σ10 sizes (contracts·ns), modulo 2^64
                    d = np.uint64(t - c_ts[nc - 1])
                    c_cumb[nc] = c_cumb[nc - 1] + np.uint64(c_bsum[nc - 1]) * d
                    c_cuma[nc] = c_cuma[nc - 1] + np.uint64(c_asum[nc - 1]) * d
                else:
                    c_cumb[nc] = np.uint64(0)
                    c_cuma[nc] = np.uint64(0)
                if has_commit != 0:
                    ne = _side_entries(c_bpx, c_bsz, nc - 1, nc, True, SIDE_BID, t, pt_px, pt_side, pt_vol, n_pt,
                                       e_ts, e_side, e_px, e_sb, e_sa, e_v, e_add, e_can, e_fill, ne)
                    ne = _side_entries(c_apx, c_asz, nc - 1, nc, False, SIDE_ASK, t, pt_px, pt_side, pt_vol, n_pt,
                                       e_ts, e_side, e_px, e_sb, e_sa, e_v, e_add, e_can, e_fill, ne)
                nc += 1
                commits += 1
                has_commit = 1
                has_pending = 0
                pend_pos = -1
                n_pt = 0
            last_ts = t
        i += 1
    # the pending record lives in this batch only: keep a copy of its levels
    if pend_pos >= 0:
        for j in range(NLEV):
            pend[_BPX, j] = bk_bpx[pend_pos, j]
            pend[_APX, j] = bk_apx[pend_pos, j]
            pend[_BSZ, j] = bk_bsz[pend_pos, j]
            pend[_ASZ, j] = bk_asz[pend_pos, j]
        pend_pos = -1
    st[_S_HAS_COMMIT] = has_commit
    st[_S_HAS_PENDING] = has_pending
    st[_S_PEND_POS] = pend_pos
    st[_S_NPT] = n_pt
    st[_S_LAST_TS] = last_ts
    st[_S_NE] = ne
    st[_S_NC] = nc
    st[_S_COMMITS] = commits
    st[_S_MAXSUM] = maxsum
    return i, status


@dataclass(frozen=True)
class BookSnapshot:
    """One committed book state (for the debugger's ``book`` command and tests).

    Prices int64 1e-9 ES points (``UNDEF_PRICE`` when the level is empty), sizes contracts;
    ``ts_ns`` = the commit ts (ns ``ts_recv``).
    """

    ts_ns: int
    bid_px: np.ndarray
    bid_sz: np.ndarray
    ask_px: np.ndarray
    ask_sz: np.ndarray

    def rows(self) -> list[tuple[int, float | None, int, float | None, int]]:
        """(level, bid px in ES points or None, bid size, ask px or None, ask size) per level."""
        out = []
        for j in range(NLEV):
            b = None if self.bid_px[j] == UNDEF_PRICE else float(self.bid_px[j]) / PRICE_SCALE
            a = None if self.ask_px[j] == UNDEF_PRICE else float(self.ask_px[j]) / PRICE_SCALE
            out.append((j, b, int(self.bid_sz[j]), a, int(self.ask_sz[j])))
        return out

    def format(self) -> str:
        """A 10-line text table: level, bid size, bid px, ask px, ask size (ES points)."""
        lines = [f"{'lvl':>3} {'bid_sz':>8} {'bid_px':>10} | {'ask_px':<10} {'ask_sz':<8}"]
        for j, b, bs, a, as_ in self.rows():
            bt = f"{b:10.2f}" if b is not None else f"{'-':>10}"
            at = f"{a:<10.2f}" if a is not None else f"{'-':<10}"
            lines.append(f"{j:>3} {bs if b is not None else '':>8} {bt} | {at} {as_ if a is not None else '':<8}")
        return "\n".join(lines)


class BookState:
    """Committed MBP-10 states, change entries and trade volumes since the last commit.

    Buffers: :attr:`commits` (:data:`COMMIT_ROW`, retention ``max(baseline_window_s,
    barrier_window_s) + 1 s``) and :attr:`entries` (:data:`ENTRY_ROW`, retention
    ``barrier_window_s + 1 s``); both keep the last row before their retention cutoff.
    ``instrument_id`` (optional) keeps only that instrument's records.
    """

    def __init__(self, cfg: Config, *, capacity: int = 1 << 12, instrument_id: int | None = None,
                 extra_retention_s: float = 0.0) -> None:
        self.cfg = cfg
        b = cfg.barrier
        extra = float(extra_retention_s)
        self.commits = RingBuffer(COMMIT_ROW, retention_ns=int(round((max(b.baseline_window_s, b.barrier_window_s) + 1.0 + extra) * NS)),
                                  capacity=capacity, name="book commits")
        self.entries = RingBuffer(ENTRY_ROW, retention_ns=int(round((b.barrier_window_s + 1.0 + extra) * NS)),
                                  capacity=max(capacity, 2 * ENTRIES_PER_COMMIT_MAX), name="book change entries")
        self.instrument_id = -1 if instrument_id is None else int(instrument_id)
        self._st = np.zeros(9, np.int64)
        self._st[_S_PEND_POS] = -1
        self._st[_S_LAST_TS] = _INT64_MIN
        self._pend = np.zeros((4, NLEV), np.int64)
        self._pend[_BPX] = _UNDEF
        self._pend[_APX] = _UNDEF
        self._pt_px = np.zeros(64, np.int64)
        self._pt_side = np.zeros(64, np.int8)
        self._pt_vol = np.zeros(64, np.int64)
        self._src: tuple | None = None  # (books, trades, their column views) of the last batch

    # ------------------------------------------------------------------ component
    def apply(self, batch: EventBatch, lo: int = 0, hi: int | None = None) -> None:
        """Apply the KIND_BOOK and KIND_TRADE events ``lo..hi-1`` of ``batch`` (in order)."""
        hi = len(batch) if hi is None else hi
        if hi <= lo:
            return
        if hi - lo == 1 and batch.kind[lo] != KIND_BOOK and batch.kind[lo] != KIND_TRADE:
            return  # one event of another kind (the debugger's single steps): nothing to do
        bk_cols, tr_cols = self._columns(batch)
        i = lo
        while True:
            st = self._st
            st[_S_NE] = self.entries.n
            st[_S_NC] = self.commits.n
            c = self.commits.cols
            e = self.entries.cols
            i, status = _book_apply(
                batch.kind, batch.pos, batch.ts, *bk_cols, *tr_cols, self.instrument_id, i, hi,
                st, self._pend, self._pt_px, self._pt_side, self._pt_vol,
                c["ts"], c["bid_sum"], c["ask_sum"], c["cum_bid"], c["cum_ask"], c["bid_px"], c["ask_px"], c["bid_sz"], c["ask_sz"],
                e["ts"], e["side"], e["price"], e["size_before"], e["size_after"], e["vol"],
                e["added"], e["canceled"], e["filled"])
            self.entries.set_count(int(st[_S_NE]))
            self.commits.set_count(int(st[_S_NC]))
            if status == _OK:
                return
            if status == _ORDER:
                raise OrderingError(f"book state: event at ts_recv {int(batch.ts[i])} ns is earlier than the "
                                    f"previous ES event ({int(st[_S_LAST_TS])} ns); the merged stream must be sorted")
            if status == _COMMITS_FULL:
                self.commits.make_room(1)
            elif status == _ENTRIES_FULL:
                self.entries.make_room(ENTRIES_PER_COMMIT_MAX)
            elif status == _TRADES_FULL:
                n = self._pt_px.shape[0] * 2
                self._pt_px = np.concatenate([self._pt_px, np.zeros(n // 2, np.int64)])
                self._pt_side = np.concatenate([self._pt_side, np.zeros(n // 2, np.int8)])
                self._pt_vol = np.concatenate([self._pt_vol, np.zeros(n // 2, np.int64)])

    def _columns(self, batch: EventBatch) -> tuple[tuple, tuple]:
        """Column views of the batch's record arrays (cached while the same arrays are fed)."""
        bk, tr = batch.books, batch.trades
        if self._src is None or self._src[0] is not bk or self._src[1] is not tr:
            lv = bk["levels"]
            self._src = (bk, tr,
                         (bk["action"], bk["flags"], bk["instrument_id"], lv["bid_px"], lv["ask_px"],
                          lv["bid_sz"], lv["ask_sz"]),
                         (tr["price"], tr["size"], tr["side"], tr["instrument_id"]))
        return self._src[2], self._src[3]

    # ------------------------------------------------------------------ introspection
    @property
    def has_book(self) -> bool:
        """True once the baseline state has been committed."""
        return bool(self._st[_S_HAS_COMMIT])

    @property
    def commit_count(self) -> int:
        """Book states committed so far this session (the day's total, not the buffer's)."""
        return int(self._st[_S_COMMITS])

    @property
    def max_level_sum(self) -> int:
        """The largest Σ10 size of either side over every state committed so far (contracts)."""
        return int(self._st[_S_MAXSUM])

    @property
    def pending_trades(self) -> int:
        """Distinct (price, side) trade buckets accumulated since the last commit."""
        return int(self._st[_S_NPT])

    def current(self) -> BookSnapshot | None:
        """The current committed book (the latest commit), None before the baseline."""
        if not self.has_book:
            return None
        k = self.commits.n - 1
        return self._snapshot(k)

    def book_at(self, t: int) -> BookSnapshot | None:
        """The last committed state with commit ts < ``t`` (ns), None if there is none."""
        k = self.commits.index_before(int(t))
        return self._snapshot(k) if k >= 0 else None

    def _snapshot(self, k: int) -> BookSnapshot:
        c = self.commits.cols
        return BookSnapshot(int(c["ts"][k]), c["bid_px"][k].copy(), c["bid_sz"][k].copy(),
                            c["ask_px"][k].copy(), c["ask_sz"][k].copy())

    def entries_window(self, t0: int, t1: int) -> dict[str, np.ndarray]:
        """Change entries of the pairs whose later state has ``t0 ≤ ts < t1`` (ns)."""
        return self.entries.window(int(t0), int(t1))
