"""The replay core on the synthetic demo day: SPEC §2 invariants, levels and labels end to end."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import DEMO_DATE
from spymaster.calendar import MINUTE_NS
from spymaster.events import KIND_BOOK, KIND_OPTION, KIND_TRADE, EventBatch
from spymaster.pipeline import Pipeline
from spymaster.replay.engine import ReplayEngine
from spymaster.replay.merge import interleave
from spymaster.touches.schema import FEATURE_COLUMNS, SCHEMA, table_from_rows

NS = 1_000_000_000


def _replay(config, session, batches) -> "pa.Table":  # noqa: F821
    eng = ReplayEngine(config, session)
    for b in batches:
        eng.feed(b)
    return table_from_rows(eng.finish())


@pytest.fixture(scope="module")
def reference(demo_config, demo_batches):
    merged, session = demo_batches
    return _replay(demo_config, session, [merged])


def test_demo_day_produces_touches_with_the_exact_schema(reference):
    assert reference.schema.equals(SCHEMA, check_metadata=False)
    assert reference.num_rows > 20
    ts = reference.column("ts_event_ns").to_pylist()
    ids = reference.column("level_id").to_pylist()
    assert list(zip(ts, ids)) == sorted(zip(ts, ids))
    assert len(set(reference.column("event_id").to_pylist())) == reference.num_rows


def test_determinism_two_runs_give_byte_identical_files(demo_config):
    pipe = Pipeline(demo_config)
    first = pipe.execute(DEMO_DATE, force=True).path.read_bytes()
    second = pipe.execute(DEMO_DATE, force=True).path.read_bytes()
    assert first == second


def test_existing_output_is_skipped_unless_forced(demo_config):
    pipe = Pipeline(demo_config)
    pipe.execute(DEMO_DATE, force=True)
    assert pipe.execute(DEMO_DATE).skipped
    assert not pipe.execute(DEMO_DATE, force=True).skipped


def _feed_in_chunks(config, session, merged: EventBatch, sizes: list[int]):
    eng = ReplayEngine(config, session)
    i, k = 0, 0
    while i < len(merged):
        step = sizes[k % len(sizes)]
        eng.feed(merged.slice(i, min(len(merged), i + step)))
        i += step
        k += 1
    return table_from_rows(eng.finish())


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(1, 200_000), min_size=1, max_size=6))
def test_batch_size_invariance_random_chunkings(demo_config, demo_batches, reference, sizes):
    merged, session = demo_batches
    assert _feed_in_chunks(demo_config, session, merged, sizes).equals(reference)


def test_batch_size_invariance_one_event_at_a_time_over_a_slice_of_the_day(demo_config, demo_batches, reference):
    merged, session = demo_batches
    lo = int(np.searchsorted(merged.ts, session.rth_open_ns + 20 * MINUTE_NS))
    hi = int(np.searchsorted(merged.ts, session.rth_open_ns + 32 * MINUTE_NS))
    assert hi - lo > 500
    eng = ReplayEngine(demo_config, session)
    eng.feed(merged.slice(0, lo))
    for i in range(lo, hi):
        eng.feed(merged.slice(i, i + 1))
    eng.feed(merged.slice(hi, len(merged)))
    assert table_from_rows(eng.finish()).equals(reference)


def _split(merged: EventBatch, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-kind arrays of the events with ts_recv < t and of all events."""
    keep = merged.ts < t
    parts = []
    for kind, arr in ((KIND_TRADE, merged.trades), (KIND_BOOK, merged.books), (KIND_OPTION, merged.options)):
        parts.append(arr[merged.pos[(merged.kind == kind) & keep]])
    return tuple(parts)


def _perturbed_after(merged: EventBatch, t: int, seed: int) -> EventBatch:
    rng = np.random.default_rng(seed)
    tr, bk, op = merged.trades.copy(), merged.books.copy(), merged.options.copy()
    late = tr["ts_recv"] >= t
    tr["price"][late] += 250_000_000 * rng.integers(-8, 9, late.sum())
    tr["size"][late] = tr["size"][late] * 3 + 1
    lb = bk["ts_recv"] >= t
    bk["levels"]["bid_sz"][lb] = bk["levels"]["bid_sz"][lb] * 2 + 7
    lo = op["ts_recv"] >= t
    op["price"][lo] = op["price"][lo] * 1.5 + 0.05
    op["size"][lo] += 50
    return interleave(tr, bk, op)


def test_no_look_ahead_truncating_or_perturbing_input_after_t_leaves_features_unchanged(demo_config, demo_batches,
                                                                                       reference):
    merged, session = demo_batches
    ts_all = np.array(reference.column("ts_event_ns").to_pylist())
    picks = sorted(set(ts_all[np.linspace(0, len(ts_all) - 1, 4).astype(int)].tolist()))
    ref_rows = {r["event_id"]: r for r in reference.to_pylist()}
    for k, t in enumerate(picks):
        truncated = _replay(demo_config, session, [interleave(*_split(merged, t))])
        perturbed = _replay(demo_config, session, [_perturbed_after(merged, t, k)])
        for other in (truncated, perturbed):
            rows = {r["event_id"]: r for r in other.to_pylist() if r["ts_event_ns"] <= t}
            want = {e: r for e, r in ref_rows.items() if r["ts_event_ns"] <= t}
            assert rows.keys() == want.keys()
            for e, r in want.items():
                assert {c: rows[e][c] for c in FEATURE_COLUMNS} == {c: r[c] for c in FEATURE_COLUMNS}, e


# ---------------------------------------------------------------- levels vs an independent computation
def _independent_levels(trades: np.ndarray, session, ratio: float = 10.0) -> dict:
    ts = trades["ts_recv"].astype(np.int64)
    px = trades["price"].astype(np.int64)
    sz = trades["size"].astype(np.int64)
    bars = {}
    for bucket, minutes in ((60, 1), (120, 2)):
        b = ts // (bucket * NS)
        starts, first = np.unique(b, return_index=True)
        last = np.r_[first[1:], len(b)] - 1
        highs = np.maximum.reduceat(px, first)
        lows = np.minimum.reduceat(px, first)
        closes = px[last]
        bars[minutes] = (starts * bucket * NS, highs, lows, closes)
    return {"bars1": bars[1], "bars2": bars[2], "ts": ts, "px": px, "sz": sz, "scale": 1e9 * ratio}


def test_levels_equal_a_straightforward_computation_from_the_raw_trades(demo_config, demo_batches):
    merged, session = demo_batches
    ind = _independent_levels(merged.trades, session)
    starts, highs, lows, closes = ind["bars1"]
    s2, _, _, c2 = ind["bars2"]
    scale = ind["scale"]
    eng = ReplayEngine(demo_config, session)
    seen: list = []
    eng.on_bar = lambda bar: seen.append((bar.start_ns, eng.levels.testable_on(bar.start_ns)))
    eng.feed(merged)
    eng.finish()
    checked = {k: 0 for k in ("PM_HIGH", "PM_LOW", "OR_HIGH", "OR_LOW", "SESSION_HIGH", "SESSION_LOW", "VWAP",
                              "SMA_200", "SMA_400", "ROUND")}
    pm = (starts >= session.premarket_ns) & (starts < session.rth_open_ns)
    opening = (starts >= session.rth_open_ns) & (starts < session.or_end_ns)
    for start, snap in seen:
        if snap is None:
            continue
        got = {lv.level_id: lv.price for lv in snap.levels}
        rth_before = (starts >= session.rth_open_ns) & (starts < min(start, session.rth_close_ns))
        want: dict[str, float] = {}
        if start >= session.rth_open_ns and pm.any():
            want["PM_HIGH"], want["PM_LOW"] = highs[pm].max() / scale, lows[pm].min() / scale
        if start >= session.or_end_ns:
            want["OR_HIGH"], want["OR_LOW"] = highs[opening].max() / scale, lows[opening].min() / scale
        if start >= session.rth_open_ns + MINUTE_NS and rth_before.any():
            want["SESSION_HIGH"] = highs[rth_before].max() / scale
            want["SESSION_LOW"] = lows[rth_before].min() / scale
        rth_tr = (ind["ts"] >= session.rth_open_ns) & (ind["ts"] < min(start, session.rth_close_ns))
        if start >= session.rth_open_ns + MINUTE_NS and rth_tr.any():
            want["VWAP"] = float(np.sum(ind["px"][rth_tr] / 1e9 * ind["sz"][rth_tr]) / np.sum(ind["sz"][rth_tr])) / 10
        done2 = (s2 + 120 * NS <= start) & (s2 + 120 * NS > session.start_ns)
        for n in (200, 400):
            if done2.sum() >= n:
                want[f"SMA_{n}"] = c2[done2][-n:].sum() / n / scale
        prev = np.flatnonzero(starts < start)
        if prev.size:
            c = closes[prev[-1]] / scale
            for k in range(int(np.ceil(c - 5 - 1e-9)), int(np.floor(c + 5 + 1e-9)) + 1):
                want[f"ROUND@{k:.2f}"] = float(k)
        for lid, v in want.items():
            assert lid in got, (start, lid)
            assert abs(got[lid] - v) <= 1e-9 * max(1.0, abs(v)), (start, lid, got[lid], v)
            checked[lid.split("@")[0]] += 1
        assert {k for k in got if not k.startswith(("STRIKE", "CALL_WALL", "PUT_WALL", "GAMMA_FLIP"))} == set(want)
    assert all(v > 0 for v in checked.values()), checked


def test_labels_of_the_day_match_an_independent_first_passage_computation(demo_config, demo_batches, reference):
    merged, _ = demo_batches
    ts = merged.trades["ts_recv"].astype(np.int64)
    px = merged.trades["price"] / 1e10
    thr = demo_config.labels.label_threshold
    last_ts = int(merged.ts[-1])
    for r in reference.to_pylist():
        t = r["ts_event_ns"]
        d = 1 if r["direction"] == "UP" else -1
        m = (ts >= t) & (ts <= t + 300 * NS)
        path = px[m]
        x = d * (path - r["level_price"])
        brk = np.flatnonzero(x >= thr - 1e-9)
        bnc = np.flatnonzero(d * (path - r["spot"]) <= -thr + 1e-9)
        first_b = brk[0] if brk.size else np.inf
        first_n = bnc[0] if bnc.size else np.inf
        want = "CHOP" if first_b == first_n == np.inf else ("BREAK" if first_b <= first_n else "BOUNCE")
        assert r["outcome"] == want, r["event_id"]
        assert r["label_complete"] == (last_ts > t + 300 * NS)
        if path.size:
            assert r["future_price_5min"] == pytest.approx(path[-1], abs=1e-12)
            assert r["excursion_max"] == pytest.approx(x.max(), abs=1e-9)
            assert r["excursion_min"] == pytest.approx(x.min(), abs=1e-9)
        else:
            assert r["excursion_max"] is None and r["future_price_5min"] == r["spot"]
