"""The synthetic market's Bronze files: real DBN, the SPEC §12 layout, honest books, determinism."""

from __future__ import annotations

import datetime as dt
import json
import re

import databento as db
import numpy as np
import pyarrow.parquet as pq
import pytest

from spymaster.calendar import ET, NS, UTC, from_ns, session_for, to_ns
from spymaster.errors import OutputError
from spymaster.events import F_LAST, UNDEF_PRICE, as_books, as_trades
from spymaster.instruments import choose_by_roll_rule, FutureContract, es_expiration_from_symbol
from spymaster.sources.lake import GLBX, OPRA
from spymaster.synth import Scale, generate

DEMO = dt.date(2025, 12, 17)
TINY = Scale("tiny", 4_000, 12_000, 2_000)


def _files(lake):
    return sorted(p for p in (lake.root / "bronze").rglob("*.dbn.zst"))


def _day_of(path) -> dt.date:
    m = re.match(r"^(glbx-mdp3|opra-pillar)-(\d{8})\.([a-z0-9-]+)\.dbn\.zst$", path.name)
    assert m, path.name
    return dt.datetime.strptime(m.group(2), "%Y%m%d").date()


def _read(path, count=50_000):
    store = db.DBNStore.from_file(path)
    chunks = list(store.to_ndarray(count=count))
    arr = np.concatenate(chunks) if chunks else np.zeros(0)
    return store, arr


@pytest.fixture(scope="module")
def demo(demo_lake):
    """Decoded demo-day files: ES trades / MBP-10 of both UTC days, definitions, OPRA."""
    s = session_for(DEMO)
    books = np.concatenate([as_books(_read(demo_lake.find_bronze(GLBX, "mbp-10", u))[1]) for u in s.utc_days()])
    trades = np.concatenate([as_trades(_read(demo_lake.find_bronze(GLBX, "trades", u))[1]) for u in s.utc_days()])
    defs = {u: _read(demo_lake.find_bronze(GLBX, "definition", u))[1] for u in s.utc_days()}
    odefs = _read(demo_lake.find_bronze(OPRA, "definition", DEMO))[1]
    otrades = as_trades(_read(demo_lake.find_bronze(OPRA, "trades", DEMO))[1])
    front = next(int(r["instrument_id"]) for r in defs[DEMO] if r["raw_symbol"] == b"ESH6")
    return dict(session=s, books=books, trades=trades, defs=defs, odefs=odefs, otrades=otrades, front=front,
                lake=demo_lake)


def test_every_file_decodes_with_its_schema_dataset_and_symbology_mappings(demo_lake):
    files = _files(demo_lake)
    assert len(files) == 8  # ES 3 schemas x 2 UTC days + OPRA 2 schemas
    for p in files:
        dataset_dir, schema = p.parent.parent.name, p.parent.name
        store, arr = _read(p, count=7_919)
        assert store.metadata.version == 3
        assert store.metadata.schema == schema
        assert store.metadata.dataset == {"glbx-mdp3": "GLBX.MDP3", "opra-pillar": "OPRA.PILLAR"}[dataset_dir]
        assert arr.shape[0] > 0
        ids = {str(i) for i in np.unique(arr["instrument_id"])}
        mapped = {iv["symbol"] for ivs in store.metadata.mappings.values() for iv in ivs}
        assert ids <= mapped, f"{p.name}: instrument ids without a symbology mapping"
        assert p.name == f"{dataset_dir}-{_day_of(p):%Y%m%d}.{schema}.dbn.zst"


def test_ts_recv_is_sorted_within_every_file(demo_lake):
    for p in _files(demo_lake):
        ts = _read(p)[1]["ts_recv"].astype(np.int64)
        assert (np.diff(ts) >= 0).all(), p.name


def test_session_records_lie_in_the_session_window_and_their_utc_day_file(demo_lake):
    s = session_for(DEMO)
    for p in _files(demo_lake):
        if p.parent.name == "definition":
            continue
        day = _day_of(p)
        ts = _read(p)[1]["ts_recv"].astype(np.int64)
        lo = to_ns(dt.datetime(day.year, day.month, day.day, tzinfo=UTC))
        assert ts.min() >= lo and ts.max() < lo + 86_400 * NS, p.name
        assert ts.min() > s.start_ns and ts.max() <= s.end_ns, p.name
    first = min(_read(demo_lake.find_bronze(GLBX, "trades", u))[1]["ts_recv"].min() for u in s.utc_days())
    assert from_ns(int(first), ET).strftime("%H") == "18"  # Globex reopens 18:00 ET the evening before


def test_each_trade_appears_as_a_T_record_right_before_the_decrease_it_causes(demo):
    b, t = demo["books"], demo["trades"]
    for iid in np.unique(b["instrument_id"]):
        bb = b[b["instrument_id"] == iid]
        tt = t[t["instrument_id"] == iid]
        is_t = np.nonzero(bb["action"] == ord("T"))[0]
        assert is_t.size == tt.shape[0]
        assert (bb["ts_recv"][is_t] == tt["ts_recv"]).all()
        assert (bb["price"][is_t] == tt["price"]).all()
        assert (bb["size"][is_t] == tt["size"]).all()
        assert (bb["side"][is_t] == tt["side"]).all()
        nxt = bb[is_t + 1]
        assert (nxt["action"] == ord("C")).all()
        assert (nxt["ts_recv"] == bb["ts_recv"][is_t]).all()
        assert (nxt["price"] == bb["price"][is_t]).all() and (nxt["size"] == bb["size"][is_t]).all()
        hit_ask = tt["side"] == ord("B")
        assert (nxt["side"][hit_ask] == ord("A")).all() and (nxt["side"][~hit_ask] == ord("B")).all()
        assert ((bb["flags"][is_t] & F_LAST) == 0).all()
        assert set(np.unique(tt["side"]).tolist()) == {ord("A"), ord("B")}


def test_T_records_leave_the_book_unchanged_and_trade_only_against_resting_size(demo):
    b = demo["books"]
    b = b[b["instrument_id"] == demo["front"]]
    is_t = np.nonzero(b["action"] == ord("T"))[0]
    is_t = is_t[is_t > 0]
    assert (b["levels"][is_t] == b["levels"][is_t - 1]).all()
    lv = b["levels"][is_t]
    buy = b["side"][is_t] == ord("B")
    px = b["price"][is_t]
    size = b["size"][is_t]
    ask_hit = (lv["ask_px"] == px[:, None]) & (lv["ask_sz"] >= size[:, None])
    bid_hit = (lv["bid_px"] == px[:, None]) & (lv["bid_sz"] >= size[:, None])
    assert ask_hit[buy, 0].all(), "a buy must hit the best ask"
    assert bid_hit[~buy, 0].all(), "a sell must hit the best bid"


def test_book_never_crossed_at_F_LAST_levels_sorted_and_sizes_consistent(demo):
    b = demo["books"]
    last = b[(b["flags"] & F_LAST) != 0]
    lv = last["levels"]
    for side, sign in (("bid", -1), ("ask", 1)):
        px, sz, ct = lv[f"{side}_px"], lv[f"{side}_sz"].astype(np.int64), lv[f"{side}_ct"].astype(np.int64)
        empty = px == UNDEF_PRICE
        assert ((sz == 0) == empty).all() and ((ct == 0) == empty).all()
        assert (sz >= 0).all()
        # defined levels first, strictly sorted away from the touch
        assert not (empty[:, :-1] & ~empty[:, 1:]).any()
        d = np.diff(np.where(empty, 0, px), axis=1) * sign
        ok = empty[:, 1:] | (d > 0)
        assert ok.all()
    both = (lv["bid_px"][:, 0] != UNDEF_PRICE) & (lv["ask_px"][:, 0] != UNDEF_PRICE)
    assert both.mean() > 0.999
    assert (lv["bid_px"][both, 0] < lv["ask_px"][both, 0]).all()


def test_the_last_record_of_every_event_and_only_it_has_F_LAST(demo):
    b = demo["books"]
    for iid in np.unique(b["instrument_id"]):
        x = b[b["instrument_id"] == iid]
        ts = x["ts_recv"].astype(np.int64)
        assert (np.diff(ts) >= 0).all()
        end_of_group = np.r_[ts[1:] != ts[:-1], True]
        assert (((x["flags"] & F_LAST) != 0) == end_of_group).all()


def test_definitions_hold_two_outrights_and_a_spread_with_stable_ids_and_the_front_trades_most(demo):
    syms = {}
    for u, d in demo["defs"].items():
        assert (d["ts_recv"] == to_ns(dt.datetime(u.year, u.month, u.day, tzinfo=UTC))).all()
        got = {r["raw_symbol"].decode(): (int(r["instrument_id"]), r["instrument_class"].decode()) for r in d}
        assert got == {"ESH6": got["ESH6"], "ESM6": got["ESM6"], "ESH6-ESM6": got["ESH6-ESM6"]}
        assert got["ESH6"][1] == "F" and got["ESM6"][1] == "F" and got["ESH6-ESM6"][1] == "S"
        syms.setdefault("ids", set()).add(tuple(sorted(v[0] for v in got.values())))
    assert len(syms["ids"]) == 1  # the same ids on both UTC days
    d = demo["defs"][DEMO]
    contracts = [FutureContract(r["raw_symbol"].decode(), int(r["instrument_id"]),
                                from_ns(int(r["expiration"]), ET).date()) for r in d if r["instrument_class"] == b"F"]
    for c in contracts:
        assert c.expiration == es_expiration_from_symbol(c.raw_symbol, DEMO)
    front = choose_by_roll_rule(DEMO, contracts, 8)
    assert front.raw_symbol == "ESH6"  # ESZ5 rolled on Dec 11
    vols = {iid: int(demo["trades"]["size"][demo["trades"]["instrument_id"] == iid].sum())
            for iid in np.unique(demo["trades"]["instrument_id"])}
    assert len(vols) == 3 and max(vols, key=vols.get) == front.instrument_id
    spread_id = next(int(r["instrument_id"]) for r in d if r["instrument_class"] == b"S")
    assert 0 < vols[spread_id] < vols[front.instrument_id] / 10


def test_prices_sit_around_es_6800_with_the_spread_near_the_carry(demo):
    t = demo["trades"]
    f = t[t["instrument_id"] == demo["front"]]["price"] / 1e9
    assert 6500 < f.min() and f.max() < 7150
    assert np.all(np.abs(np.round(f / 0.25) * 0.25 - f) < 1e-9)


def test_opra_definitions_cover_two_expiries_with_occ_symbols_and_midnight_utc_expiration(demo):
    from spymaster.instruments import format_occ, parse_occ

    d = demo["odefs"]
    assert d.shape[0] == 2 * 51 * 2
    exp_dates = set()
    for r in d:
        sym = r["raw_symbol"].decode()
        occ = parse_occ(sym)
        exp_ns = int(r["expiration"])
        assert exp_ns == to_ns(dt.datetime(occ.expiration.year, occ.expiration.month, occ.expiration.day, tzinfo=UTC))
        assert int(r["strike_price"]) == round(occ.strike * 1e9)
        assert r["instrument_class"].decode() == ("C" if occ.is_call else "P")
        assert sym == format_occ("SPY", occ.expiration, occ.is_call, occ.strike)
        assert r["underlying"] == b"SPY" and r["security_type"] == b"OPT"
        assert int(r["contract_multiplier"]) == 2**31 - 1
        exp_dates.add(occ.expiration)
    assert exp_dates == {DEMO, dt.date(2025, 12, 19)}
    assert (d["ts_recv"] < session_for(DEMO).rth_open_ns).all()
    assert from_ns(int(d["ts_recv"].min())).strftime("%H:%M") == "11:30"


def test_option_trades_are_rth_only_side_N_on_several_venues_near_the_money(demo):
    t = demo["otrades"]
    s = demo["session"]
    assert (t["ts_recv"] >= s.rth_open_ns).all() and (t["ts_event"] < s.rth_close_ns).all()
    assert (t["side"] == ord("N")).all() and (t["action"] == ord("T")).all()
    assert len(np.unique(t["publisher_id"])) >= 8
    assert 10_000 < t.shape[0] < 15_000
    ids0 = {int(r["instrument_id"]) for r in demo["odefs"] if r["raw_symbol"].decode()[6:12] == "251217"}
    assert 0.6 < np.isin(t["instrument_id"], list(ids0)).mean() < 0.95


def test_option_prices_are_black_scholes_at_the_true_spot_rounded_to_cents(demo):
    from scipy.stats import norm

    lake = demo["lake"]
    ot = pq.read_table(lake.root / "synth" / f"truth-options-{DEMO}.parquet").to_pandas()
    truth = pq.read_table(lake.root / "synth" / f"truth-{DEMO}.parquet").to_pandas()
    # the spot is the front committed mid / 10 minus the basis, both at the trade's ts_recv
    b = demo["books"]
    fb = b[(b["instrument_id"] == demo["front"]) & ((b["flags"] & F_LAST) != 0)]
    ts = ot["ts_recv_ns"].to_numpy()
    i = np.searchsorted(fb["ts_recv"], ts, side="right") - 1
    mid = (fb["levels"]["bid_px"][i, 0] + fb["levels"]["ask_px"][i, 0]) / 2e9
    basis = np.interp((ts - truth["ts_ns"].iloc[0]) / 1e9, np.arange(len(truth)), truth["basis"].to_numpy())
    assert np.allclose(ot["spot"], mid / 10 - basis, atol=1e-9)
    S, K, T, sig = ot["spot"], ot["strike"], ot["t_years"], ot["sigma"]
    d1 = (np.log(S / K) + (0.045 + sig**2 / 2) * T) / (sig * np.sqrt(T))
    d2 = d1 - sig * np.sqrt(T)
    call = S * norm.cdf(d1) - K * np.exp(-0.045 * T) * norm.cdf(d2)
    put = K * np.exp(-0.045 * T) * norm.cdf(-d2) - S * norm.cdf(-d1)
    ref = np.where(ot["right"] == "C", call, put)
    assert np.allclose(ot["theo"], ref, atol=1e-9)
    assert np.allclose(ot["price"], np.maximum(np.round(ref, 2), 0.01), atol=1e-9)
    raw = demo["otrades"]["price"] / 1e9
    assert np.allclose(raw, ot["price"], atol=1e-12)


def test_put_call_parity_holds_within_rounding_for_near_simultaneous_pairs(demo):
    lake = demo["lake"]
    ot = pq.read_table(lake.root / "synth" / f"truth-options-{DEMO}.parquet").to_pandas()
    ot = ot[ot["expiration"] == DEMO].reset_index(drop=True)
    pairs = 0
    for (k,), g in ot.groupby(["strike"]):
        c = g[g["right"] == "C"]
        p = g[g["right"] == "P"]
        if c.empty or p.empty:
            continue
        j = np.searchsorted(p["ts_recv_ns"].to_numpy(), c["ts_recv_ns"].to_numpy()).clip(0, len(p) - 1)
        pp = p.iloc[j]
        close = np.abs(pp["ts_recv_ns"].to_numpy() - c["ts_recv_ns"].to_numpy()) < 2 * NS
        close &= (c["price"].to_numpy() > 0.01) & (pp["price"].to_numpy() > 0.01)
        if not close.any():
            continue
        cc, qq = c[close], pp[close]
        lhs = cc["price"].to_numpy() - qq["price"].to_numpy()
        rhs = cc["spot"].to_numpy() - k * np.exp(-0.045 * cc["t_years"].to_numpy())
        drift = np.abs(cc["spot"].to_numpy() - qq["spot"].to_numpy())
        assert (np.abs(lhs - rhs) <= 0.01 + drift + 1e-6).all()
        pairs += int(close.sum())
    assert pairs > 80


def test_parity_is_observable_at_two_or_more_strikes_within_120_s_for_most_0dte_trades(demo):
    ot = pq.read_table(demo["lake"].root / "synth" / f"truth-options-{DEMO}.parquet").to_pandas()
    ot = ot[ot["expiration"] == DEMO]
    ts = ot["ts_recv_ns"].to_numpy()
    last = {}
    ok = 0
    for t, k, r in zip(ts, ot["strike"].to_numpy(), ot["right"].to_numpy()):
        last[(k, r)] = t
        strikes = {kk for (kk, rr), tt in last.items() if rr == "C" and t - tt <= 120 * NS
                   and t - last.get((kk, "P"), t - 10**12) <= 120 * NS}
        ok += len(strikes) >= 2
    assert ok / len(ts) > 0.9


def test_volume_is_u_shaped_the_open_is_busier_than_midday(demo):
    s = demo["session"]
    t = demo["trades"]
    f = t[t["instrument_id"] == demo["front"]]
    ts = f["ts_recv"].astype(np.int64)
    o = s.rth_open_ns
    opening = ((ts >= o) & (ts < o + 15 * 60 * NS)).sum()
    midday = ((ts >= o + 150 * 60 * NS) & (ts < o + 165 * 60 * NS)).sum()
    closing = ((ts >= s.rth_close_ns - 15 * 60 * NS) & (ts < s.rth_close_ns)).sum()
    overnight = ((ts >= o - 6 * 3600 * NS) & (ts < o - 6 * 3600 * NS + 15 * 60 * NS)).sum()
    assert opening > 2.5 * midday and closing > midday > overnight
    # and the open is more volatile: larger 1-minute ranges than midday
    px = f["price"] / 1e9

    def mean_range(a, b):
        m = (ts >= a) & (ts < b)
        minute = (ts[m] - a) // (60 * NS)
        return np.mean([np.ptp(px[m][minute == k]) for k in np.unique(minute)])

    assert mean_range(o, o + 15 * 60 * NS) > 1.5 * mean_range(o + 150 * 60 * NS, o + 165 * 60 * NS)


def test_the_front_trades_in_nearly_every_overnight_minute_so_sma_400_exists_before_rth(demo):
    s = demo["session"]
    t = demo["trades"]
    ts = t[t["instrument_id"] == demo["front"]]["ts_recv"].astype(np.int64)
    t0 = to_ns(dt.datetime(2025, 12, 16, 18, 0, tzinfo=ET))
    pre = ts[ts < s.rth_open_ns]
    minutes = np.unique((pre - t0) // (60 * NS))
    n_min = (s.rth_open_ns - t0) // (60 * NS)
    assert minutes.size >= 0.97 * n_min
    two_min = np.unique(pre // (120 * NS))
    assert two_min.size >= 400


def test_truth_file_has_the_documented_columns_and_a_basis_of_a_few_dollars(demo):
    truth = pq.read_table(demo["lake"].root / "synth" / f"truth-{DEMO}.parquet")
    assert truth.column_names == ["ts_ns", "es_fair", "es_mid", "es_last", "basis", "spy_spot"]
    meta = json.loads(truth.schema.metadata[b"spymaster.synth"])
    assert meta["front"] == "ESH6" and meta["seed"] == 7
    df = truth.to_pandas()
    assert (np.diff(df["ts_ns"]) == NS).all()
    assert df["basis"].between(3.0, 6.0).all()
    assert df["basis"].std() > 0.005  # it drifts
    both = df.dropna()
    assert (np.abs(both["es_mid"] - both["es_fair"]) < 5.0).mean() > 0.99
    assert np.allclose(both["spy_spot"], both["es_mid"] / 10 - both["basis"])


# ------------------------------------------------------------------ determinism and merging

def _bytes(lake):
    return {p.relative_to(lake.root): p.read_bytes() for p in sorted(lake.root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(tmp_path):
    from spymaster.sources.lake import Lake

    a, b = Lake.at(tmp_path / "a"), Lake.at(tmp_path / "b")
    generate(a, ["2025-12-17"], scale=TINY, seed=3, parquet_options=True)
    generate(b, ["2025-12-17"], scale=TINY, seed=3, parquet_options=True)
    fa, fb = _bytes(a), _bytes(b)
    assert fa.keys() == fb.keys() and all(fa[k] == fb[k] for k in fa)
    c = Lake.at(tmp_path / "c")
    generate(c, ["2025-12-17"], scale=TINY, seed=4)
    p = a.find_bronze(GLBX, "trades", DEMO).relative_to(a.root)
    assert _bytes(c)[p] != fa[p]


def test_a_session_is_identical_whatever_range_and_order_it_was_generated_in(tmp_path):
    """Shared UTC-day files hold the union of the sessions generated into them."""
    from spymaster.sources.lake import Lake

    both, rev, single = Lake.at(tmp_path / "both"), Lake.at(tmp_path / "rev"), Lake.at(tmp_path / "single")
    generate(both, "2025-12-16..2025-12-17", scale=TINY, seed=5)
    generate(rev, ["2025-12-17"], scale=TINY, seed=5)
    generate(rev, ["2025-12-16"], scale=TINY, seed=5)
    generate(single, ["2025-12-17"], scale=TINY, seed=5)
    fb, fr = _bytes(both), _bytes(rev)
    bronze = [k for k in fb if k.parts[0] == "bronze"]
    assert bronze and all(fb[k] == fr[k] for k in bronze)
    s17 = session_for("2025-12-17")
    shared = dt.date(2025, 12, 16)  # UTC day holding the end of D-1 and the start of D
    for schema in ("trades", "mbp-10"):
        full = _read(both.find_bronze(GLBX, schema, shared))[1]
        only = _read(single.find_bronze(GLBX, schema, shared))[1]
        ts = full["ts_recv"].astype(np.int64)
        mine = full[(ts > s17.start_ns) & (ts <= s17.end_ns)]
        assert mine.shape[0] == only.shape[0] > 0
        assert mine.tobytes() == only.tobytes()
        assert (ts <= s17.start_ns).sum() > 0  # and the 16th's records are there too


def test_rerun_skips_generated_dates_and_force_regenerates_identically(tmp_path):
    from spymaster.sources.lake import Lake

    lk = Lake.at(tmp_path / "lake")
    first = generate(lk, ["2025-12-17"], scale=TINY, seed=1)
    before = _bytes(lk)
    again = generate(lk, ["2025-12-17"], scale=TINY, seed=1)
    assert not again.files and again.skipped == [("2025-12-17", "already generated (use --force to regenerate)")]
    forced = generate(lk, ["2025-12-17"], scale=TINY, seed=1, force=True)
    assert len(forced.files) == len(first.files)
    assert _bytes(lk) == before
    with pytest.raises(OutputError, match="other parameters"):
        generate(lk, ["2025-12-17"], scale=TINY, seed=2)


def test_dates_that_are_not_trading_days_are_skipped(tmp_path):
    rep = generate(tmp_path / "lake", "2025-12-20..2025-12-21,2025-12-25", scale=TINY, seed=1)
    assert not rep.files and not rep.sessions
    assert [d for d, _ in rep.skipped] == ["2025-12-20", "2025-12-21", "2025-12-25"]


def test_option_instrument_ids_are_assigned_per_day(tmp_path):
    from spymaster.sources.lake import Lake

    lk = Lake.at(tmp_path / "lake")
    generate(lk, "2025-12-18..2025-12-19", scale=TINY, seed=1)
    a = _read(lk.find_bronze(OPRA, "definition", dt.date(2025, 12, 18)))[1]
    b = _read(lk.find_bronze(OPRA, "definition", dt.date(2025, 12, 19)))[1]
    assert not set(a["instrument_id"].tolist()) & set(b["instrument_id"].tolist())
    # the 12-19 weekly contracts appear on both days, under different ids
    sa = {r["raw_symbol"]: int(r["instrument_id"]) for r in a}
    sb = {r["raw_symbol"]: int(r["instrument_id"]) for r in b}
    common = set(sa) & set(sb)
    assert common and all(sa[k] != sb[k] for k in common)


def test_parquet_options_form_has_the_spec_columns_and_tick_rule_aggressor(tmp_path):
    from spymaster.sources.lake import Lake

    lk = Lake.at(tmp_path / "lake")
    generate(lk, ["2025-12-17"], scale=TINY, seed=1, parquet_options=True)
    files = list(lk.options_parquet_dir(DEMO).glob("*.parquet"))
    assert len(files) == 1
    t = pq.read_table(files[0])
    assert t.schema.names == ["ts_recv_ns", "ts_event_ns", "symbol", "expiration", "strike", "right", "price", "size",
                              "aggressor"]
    assert str(t.schema.field("aggressor").type) == "int8" and str(t.schema.field("expiration").type) == "date32[day]"
    df = t.to_pandas()
    raw = as_trades(_read(lk.find_bronze(OPRA, "trades", DEMO))[1])
    assert len(df) == raw.shape[0] and (df["ts_recv_ns"].to_numpy() == raw["ts_recv"]).all()
    for sym, g in df.groupby("symbol", sort=False):
        px = g["price"].to_numpy()
        exp = np.zeros(len(px), np.int8)
        sign = 0
        for i in range(1, len(px)):
            sign = 1 if px[i] > px[i - 1] else -1 if px[i] < px[i - 1] else sign
            exp[i] = sign
        assert (g["aggressor"].to_numpy() == exp).all(), sym


@pytest.mark.slow
def test_day_scale_counts_match_the_scale_targets(tmp_path):
    rep = generate(tmp_path / "lake", ["2025-12-17"], scale="day", seed=7)
    c = rep.sessions[0].counts
    assert 0.9 * 500_000 < c["es_trades"] < 1.1 * 500_000
    assert 0.9 * 1_500_000 < c["es_mbp"] < 1.15 * 1_500_000
    assert 0.9 * 300_000 < c["option_trades"] < 1.1 * 300_000
