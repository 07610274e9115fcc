"""BookState: the SPEC §3 MBP-10 commit rule and the barrier's change entries (SPEC §7)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketbuild import BookSim, T0, book_rec, concat_books, feed, ladder, merge, ns, split_batches, trades
from spymaster.config import Config
from spymaster.errors import OrderingError
from spymaster.events import F_LAST
from spymaster.state.book import SIDE_ASK, SIDE_BID, BookState

CFG = Config()


def _base() -> BookSim:
    """Bids 5000.00 down, asks 5000.25 up, 100 contracts each, 12 levels per side."""
    return BookSim({5000.0 - 0.25 * j: 100 for j in range(12)}, {5000.25 + 0.25 * j: 100 for j in range(12)})


def _run(recs, trs=(), sizes=None) -> BookState:
    bs = BookState(CFG)
    feed(bs, merge(trades(trs), concat_books(recs)), sizes)
    return bs


def _entries(bs: BookState) -> list[tuple]:
    e = bs.entries.live()
    return [((int(e["ts"][i]) - T0) / 1e9, int(e["side"][i]), e["price"][i] / 1e9, int(e["size_before"][i]),
             int(e["size_after"][i]), int(e["vol"][i]), int(e["added"][i]), int(e["canceled"][i]),
             int(e["filled"][i])) for i in range(len(bs.entries))]


# ---------------------------------------------------------------- the commit rule

def test_trade_and_fill_records_never_change_the_book():
    b = _base()
    r0 = b.rec(0)
    b.set("B", 5000.0, 1)  # a T / F record carrying different levels must be ignored
    recs = [r0, b.rec(1, action="T"), b.rec(2, action="F")]
    bs = _run(recs)
    assert bs.commit_count == 1
    assert bs.current().bid_sz[0] == 100
    assert len(bs.entries) == 0


def test_commit_only_at_f_last_after_a_non_trade_record():
    b = _base()
    recs = [b.rec(0)]
    b.set("B", 5000.0, 90)
    recs.append(b.rec(1, flags=0))          # change, no F_LAST: pending
    assert _run(recs).commit_count == 1
    b.set("B", 5000.0, 80)
    recs.append(b.rec(2, flags=0))          # a later change, still pending
    recs.append(b.rec(3, action="T"))       # F_LAST on a trade record commits the pending change
    bs = _run(recs)
    assert bs.commit_count == 2
    assert int(bs.commits.ts[-1]) == ns(3)  # commit ts = the F_LAST record's ts_recv
    assert bs.current().bid_sz[0] == 80     # levels of the latest non-T/F record
    recs.append(b.rec(4, action="T"))       # F_LAST with no change since the commit: nothing
    assert _run(recs).commit_count == 2


def test_pending_change_survives_the_end_of_its_batch():
    b = _base()
    r0 = b.rec(0)
    b.set("B", 5000.0, 70)
    r1 = b.rec(1, flags=0)                      # pending at the end of the first batch
    b.set("B", 5000.0, 1)
    r2 = b.rec(2, action="T")                   # a T record (levels ignored) with F_LAST, next batch
    bs = BookState(CFG)
    for part in split_batches(merge(trades([]), concat_books([r0, r1, r2])), [2, 1]):
        bs.apply(part, 0, len(part))
    assert bs.commit_count == 2 and bs.current().bid_sz[0] == 70


def test_first_committed_state_is_the_baseline_without_a_pair():
    b = _base()
    bs = _run([b.rec(0)])
    assert bs.has_book and bs.commit_count == 1
    assert len(bs.entries) == 0
    assert BookState(CFG).current() is None


def test_commit_keeps_the_ten_level_sums_and_the_book():
    bs = _run([book_rec(0, [(5000.0, 7), (4999.75, 3)], ladder(5000.25, [1] * 10, bid=False))])
    c = bs.commits.live()
    assert int(c["bid_sum"][0]) == 10 and int(c["ask_sum"][0]) == 10
    snap = bs.current()
    assert snap.rows()[1] == (1, 4999.75, 3, 5000.5, 1)
    assert snap.rows()[2][1] is None  # empty level
    assert "5000.00" in snap.format()


def test_book_at_returns_the_last_state_strictly_before_t():
    b = _base()
    recs = [b.rec(0)]
    b.set("A", 5000.25, 50)
    recs.append(b.rec(10))
    bs = _run(recs)
    assert bs.book_at(ns(10)).ask_sz[0] == 100
    assert bs.book_at(ns(10) + 1).ask_sz[0] == 50
    assert bs.book_at(ns(0)) is None


# ---------------------------------------------------------------- fills, cancels, adds

def test_trade_then_decrease_at_the_same_ts_recv_is_filled_not_canceled():
    b = _base()
    recs = [b.rec(0)]
    b.set("B", 5000.0, 60)
    recs.append(b.rec(5))
    bs = _run(recs, [(5, 5000.0, 40, "A")])  # trades sort before MBP-10 at equal ts_recv
    assert _entries(bs) == [(5, SIDE_BID, 5000.0, 100, 60, 40, 0, 0, 40)]


def test_decrease_without_trades_is_canceled():
    b = _base()
    recs = [b.rec(0)]
    b.set("A", 5000.5, 30)
    recs.append(b.rec(5))
    assert _entries(_run(recs)) == [(5, SIDE_ASK, 5000.5, 100, 30, 0, 0, 70, 0)]


def test_hit_and_refill_is_added():
    b = _base()
    recs = [b.rec(0), b.rec(5, action="C")]  # a change record that leaves sizes as they were
    bs = _run(recs, [(3, 5000.25, 40, "B")])
    assert _entries(bs) == [(5, SIDE_ASK, 5000.25, 100, 100, 40, 40, 0, 40)]


def test_fill_and_cancel_split_when_the_decrease_exceeds_the_traded_volume():
    b = _base()
    recs = [b.rec(0)]
    b.set("B", 5000.0, 20)
    recs.append(b.rec(5))
    bs = _run(recs, [(4, 5000.0, 30, "A")])
    assert _entries(bs) == [(5, SIDE_BID, 5000.0, 100, 20, 30, 0, 50, 30)]


def test_filled_is_capped_at_size_before():
    b = _base()
    b.set("B", 5000.0, 10)
    recs = [b.rec(0)]
    b.set("B", 5000.0, 25)  # 30 traded against 10 resting, then 25 new contracts rest there
    recs.append(b.rec(5))
    bs = _run(recs, [(4, 5000.0, 30, "A")])
    assert _entries(bs) == [(5, SIDE_BID, 5000.0, 10, 25, 30, 25, 0, 10)]


def test_aggressor_side_decides_which_book_side_was_hit():
    b = _base()
    recs = [b.rec(0), b.rec(5, action="C")]
    # buy aggressor at a bid price and sell aggressor at an ask price hit nothing; N is ignored
    bs = _run(recs, [(1, 5000.0, 10, "B"), (2, 5000.25, 10, "A"), (3, 5000.0, 10, "N"),
                     (4, 4999.75, 5, "A"), (4.5, 5000.5, 6, "B")])
    assert _entries(bs) == [(5, SIDE_BID, 4999.75, 100, 100, 5, 5, 0, 5),
                            (5, SIDE_ASK, 5000.5, 100, 100, 6, 6, 0, 6)]


def test_trades_are_attributed_to_the_pair_they_fall_in():
    b = _base()
    recs = [b.rec(0)]
    b.set("B", 5000.0, 90)
    recs.append(b.rec(5))
    b.set("B", 5000.0, 80)
    recs.append(b.rec(10))
    bs = _run(recs, [(-1, 5000.0, 7, "A"), (7, 5000.0, 10, "A")])  # the first precedes the baseline
    assert _entries(bs) == [(5, SIDE_BID, 5000.0, 100, 90, 0, 0, 10, 0),
                            (10, SIDE_BID, 5000.0, 90, 80, 10, 0, 0, 10)]


def test_new_price_inside_the_top10_is_an_addition():
    b = _base()
    recs = [b.rec(0)]
    b.set("A", 5000.0, 0).set("B", 5000.0, 0)
    b.set("A", 5000.0, 40)  # the bid at 5000.00 leaves; an ask appears there
    recs.append(b.rec(5))
    ent = _entries(_run(recs))
    assert (5, SIDE_BID, 5000.0, 100, 0, 0, 0, 100, 0) in ent
    assert (5, SIDE_ASK, 5000.0, 0, 40, 0, 40, 0, 0) in ent


def test_levels_scrolling_in_or_out_of_the_top10_are_not_counted():
    b = _base().set("A", 5000.25, 0)  # 12 bid levels: the 10th bid is 4997.75
    recs = [b.rec(0)]
    b.set("B", 5000.25, 50)  # a better bid pushes 4997.75 out of the visible 10
    recs.append(b.rec(5))
    ent = _entries(_run(recs))
    assert ent == [(5, SIDE_BID, 5000.25, 0, 50, 0, 50, 0, 0)]  # no cancel at 4997.75
    b.set("B", 5000.25, 0)   # it leaves again: 4997.75 scrolls back in, not an addition
    recs.append(b.rec(10))
    ent = _entries(_run(recs))
    assert ent[-1] == (10, SIDE_BID, 5000.25, 50, 0, 0, 0, 50, 0)
    assert all(e[2] != 4997.75 for e in ent)


def test_a_shifting_book_counts_each_common_price_once():
    b = _base().set("A", 5000.25, 0)
    recs = [b.rec(0)]
    b.set("B", 5000.25, 50).set("B", 4999.5, 70)  # a new best bid and a change deeper, one state
    recs.append(b.rec(5))
    assert _entries(_run(recs)) == [(5, SIDE_BID, 4999.5, 100, 70, 0, 0, 30, 0),
                                    (5, SIDE_BID, 5000.25, 0, 50, 0, 50, 0, 0)]


def test_a_side_with_fewer_than_ten_levels_is_visible_whole():
    recs = [book_rec(0, [(5000.0, 10), (4999.75, 10)], [(5000.25, 10)])]
    recs.append(book_rec(5, [(5000.0, 10), (4999.75, 10), (4998.0, 9)], [(5000.25, 10)]))
    assert _entries(_run(recs)) == [(5, SIDE_BID, 4998.0, 0, 9, 0, 9, 0, 0)]


def _reference_entries(states, vols):
    """The change-entry rule written out directly (module docstring of spymaster.state.book):
    ``states`` = [(t_s, bids, asks)] with 10 (price, size) slots per side (price None = empty),
    ``vols[k]`` = {(price, side code): volume} traded between state k−1 and state k."""
    out = []
    for k in range(1, len(states)):
        t = states[k][0]
        for side, i, is_bid in ((SIDE_BID, 1, True), (SIDE_ASK, 2, False)):
            before, after = states[k - 1][i], states[k][i]
            limits = []
            for lv in (before, after):
                px = [p for p, _ in lv if p is not None]
                if len(px) == 10:
                    limits.append(min(px) if is_bid else max(px))
            seen = [p for p, _ in before if p is not None]
            cands = seen + [p for p, _ in after if p is not None and p not in seen]
            for p in cands:
                if not all((p >= lim) if is_bid else (p <= lim) for lim in limits):
                    continue
                sb = next((z for q, z in before if q == p), 0)
                sa = next((z for q, z in after if q == p), 0)
                v = vols[k].get((p, side), 0)
                delta = sa - sb
                if delta == 0 and not (v > 0 and sb > 0):
                    continue
                filled = min(v, sb)
                rest = delta + filled
                out.append((t, side, p, sb, sa, v, max(rest, 0), max(-rest, 0), filled))
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 100_000), malformed=st.sampled_from([0.0, 0.0, 0.3]))
def test_change_entries_equal_the_rule_on_random_books(seed, malformed):
    """Random shifting books (levels scrolling in and out, fewer than 10 levels, prices moving
    through the spread) with trades between commits; with ``malformed`` some states have their
    levels shuffled or an empty level in the middle — every shape gives the rule's entries."""
    rng = np.random.default_rng(seed)
    mid = 5000.0
    states, vols, recs, trs = [], [], [], []
    for k in range(40):
        t = 1.0 + k
        mid += 0.25 * int(rng.integers(-2, 3))
        sides = []
        for is_bid in (True, False):
            n = int(rng.choice([10, 10, 10, 7, 3, 0]))
            best = mid - 0.25 * int(rng.integers(0, 2)) if is_bid else mid + 0.25 * int(rng.integers(1, 3))
            px = [best - 0.25 * j if is_bid else best + 0.25 * j for j in range(14)]
            keep = sorted(rng.choice(14, size=n, replace=False).tolist()) if n else []
            lv = [(px[j], int(rng.integers(1, 6)) * 10) for j in keep]
            if rng.random() < malformed:
                if rng.random() < 0.5:
                    rng.shuffle(lv)
                elif lv:
                    lv.insert(int(rng.integers(0, len(lv))), None)
            lv = (lv + [None] * 10)[:10]
            sides.append(lv)
        bids, asks = sides
        recs.append(book_rec(t, [x if x is not None else (0.0, 0) for x in bids],
                             [x if x is not None else (0.0, 0) for x in asks]))
        # empty slots: UNDEF price, size 0 (book_rec writes (0.0, 0); mark them undefined)
        lvr = recs[-1]["levels"][0]
        for j in range(10):
            if bids[j] is None:
                lvr["bid_px"][j] = np.iinfo(np.int64).max
            if asks[j] is None:
                lvr["ask_px"][j] = np.iinfo(np.int64).max
        recs[-1]["levels"][0] = lvr
        states.append((t, [(None, 0) if x is None else (int(round(x[0] * 1e9)), x[1]) for x in bids],
                       [(None, 0) if x is None else (int(round(x[0] * 1e9)), x[1]) for x in asks]))
        v: dict = {}
        if k > 0:
            for _ in range(int(rng.integers(0, 5))):
                side = "BAN"[int(rng.integers(0, 3))]
                tp = mid + 0.25 * int(rng.integers(-3, 4))
                sz = int(rng.integers(1, 40))
                trs.append((t - 0.5, tp, sz, side))
                if side != "N":
                    key = (int(round(tp * 1e9)), SIDE_ASK if side == "B" else SIDE_BID)
                    v[key] = v.get(key, 0) + sz
        vols.append(v)
    bs = _run(recs, sorted(trs))
    got = [((int(e[0]) - T0) / 1e9, *e[1:]) for e in _raw_entries(bs)]
    assert got == [(t, *rest) for t, *rest in _reference_entries(states, vols)]


def _raw_entries(bs: BookState) -> list[tuple]:
    e = bs.entries.live()
    return [(int(e["ts"][i]), int(e["side"][i]), int(e["price"][i]), int(e["size_before"][i]), int(e["size_after"][i]),
             int(e["vol"][i]), int(e["added"][i]), int(e["canceled"][i]), int(e["filled"][i]))
            for i in range(len(bs.entries))]


# ---------------------------------------------------------------- engine contract

def _random_stream(seed: int, n: int = 400):
    rng = np.random.default_rng(seed)
    b = _base()
    recs, trs = [], []
    t = 0.0
    for _ in range(n):
        t += float(rng.choice([0.0, 0.001, 0.3, 2.0]))
        if rng.random() < 0.4:
            trs.append((t, 5000.0 + 0.25 * int(rng.integers(-3, 4)), int(rng.integers(1, 30)), "BAN"[int(rng.integers(0, 3))]))
        else:
            side = "B" if rng.random() < 0.5 else "A"
            px = (5000.0 - 0.25 * int(rng.integers(0, 13))) if side == "B" else (5000.25 + 0.25 * int(rng.integers(0, 13)))
            b.set(side, px, int(rng.integers(0, 200)))
            action = "TFAC"[int(rng.integers(0, 4))]
            flags = F_LAST if rng.random() < 0.7 else 0
            recs.append(b.rec(t, action=action, flags=flags))
    return merge(trades(trs), concat_books(recs))


def _state(bs: BookState, t0: int | None = None):
    """The buffers' rows from t0 on (default: everything held) and the counters."""
    if t0 is None:
        c, e = bs.commits.live(), bs.entries.live()
    else:
        c = bs.commits.view(max(0, bs.commits.index_before(t0)), bs.commits.n)
        e = bs.entries.window(t0, np.iinfo(np.int64).max)
    return ({k: v.tolist() for k, v in c.items()}, {k: v.tolist() for k, v in e.items()},
            bs.commit_count, bs.pending_trades, bs._st.tolist())


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), sizes=st.lists(st.integers(1, 50), min_size=1, max_size=8))
def test_batch_size_invariance_of_the_book_state(seed, sizes):
    batch = _random_stream(seed)
    whole = BookState(CFG)
    feed(whole, batch)
    ones = BookState(CFG)
    feed(ones, batch, [1])
    chunked = BookState(CFG)
    feed(chunked, batch, sizes)
    separate = BookState(CFG)  # independent batches: a pending record must survive its batch
    for part in split_batches(batch, sizes):
        separate.apply(part, 0, len(part))
    assert _state(whole) == _state(ones) == _state(chunked) == _state(separate)
    # tiny buffers compact and grow many times: everything within retention is the same
    tiny = BookState(CFG, capacity=2)
    feed(tiny, batch, sizes)
    t0 = int(batch.ts[-1]) - tiny.entries.retention_ns
    assert tiny.entries.compactions > 0
    st_tiny, st_whole = _state(tiny, t0), _state(whole, t0)
    assert st_tiny[1:4] == st_whole[1:4]
    assert st_tiny[0] == st_whole[0]


def test_out_of_order_events_raise_an_ordering_error():
    b = _base()
    batch = merge(trades([]), concat_books([b.rec(5), b.rec(1)]))
    batch.ts[:] = batch.ts[::-1].copy()  # the merge would sort; force a decreasing sequence
    batch.pos[:] = batch.pos[::-1].copy()
    with pytest.raises(OrderingError, match="sorted"):
        BookState(CFG).apply(batch, 0, len(batch))


def test_instrument_filter_keeps_only_the_chosen_contract():
    b = _base()
    r0, r1 = b.rec(0), b.rec(1)
    b.set("B", 5000.0, 1)
    r2 = b.rec(2)
    r2["instrument_id"] = 99
    bs = BookState(CFG, instrument_id=1)
    feed(bs, merge(trades([]), concat_books([r0, r1, r2])))
    assert bs.current().bid_sz[0] == 100


def test_retention_covers_the_barrier_and_baseline_windows():
    bs = BookState(CFG)
    assert bs.commits.retention_ns >= int(CFG.barrier.baseline_window_s * 1e9)
    assert bs.entries.retention_ns >= int(CFG.barrier.barrier_window_s * 1e9)
