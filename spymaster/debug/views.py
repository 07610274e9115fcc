"""Text views of the stepper's state: what the debugger prints.

Conventions: times in ET (``HH:MM:SS.fffffffff ET``, the date added when it is not the session's
date); prices on the SPY-equivalent axis ($, = ES points / es_spy_ratio) with the ES price beside
them where it helps; sizes and volumes in contracts; every table header names its units.
Nothing here changes state: each view only queries the engine at the stepper's decision time.
"""

from __future__ import annotations

import numpy as np

from spymaster.debug.stepper import EventView, Stepper, Stop, fmt_clock
from spymaster.events import F_LAST, KIND_BOOK, KIND_NAMES, KIND_OPTION, KIND_TRADE, PRICE_SCALE, UNDEF_PRICE
from spymaster.state.bars import Bar
from spymaster.touches.schema import COLUMN_NAMES, LABEL_COLUMNS

ACTIONS = {"A": "add", "C": "cancel", "M": "modify", "T": "trade", "F": "fill", "R": "clear", "N": "none"}
SIDES_BOOK = {"B": "bid", "A": "ask", "N": "-"}
SIDES_TRADE = {"B": "B (buy aggressor)", "A": "A (sell aggressor)", "N": "N (unknown)"}

# ------------------------------------------------------------------------------------ numbers
def es_points(units: int) -> float:
    return units / PRICE_SCALE


def fmt_px(axis: float | None, ratio: float, *, es: bool = True, nd: int = 3) -> str:
    """``680.125 (ES 6801.25)``; ``-`` for None."""
    if axis is None:
        return "-"
    s = f"{axis:.{nd}f}"
    return f"{s} (ES {axis * ratio:.2f})" if es else s


def _n(v: int | float) -> str:
    return f"{v:,}" if isinstance(v, int) else f"{v:,.0f}"


# ------------------------------------------------------------------------------------ events
def event_line(ev: EventView, st: Stepper) -> str:
    """One applied (or next) event: number of the day, ts_recv ET, kind and its content."""
    ratio = st.cfg.instrument.es_spy_ratio
    head = f"#{ev.index + 1:<10,} {fmt_clock(ev.ts_ns, st.session)}  {KIND_NAMES.get(ev.kind, '?'):<12}"
    r = ev.record
    if ev.kind == KIND_TRADE and r is not None:
        p = es_points(int(r["price"]))
        side = chr(int(r["side"]))
        return f"{head} {p / ratio:.3f} SPY $ (ES {p:.2f}) x {int(r['size'])} contracts, side {SIDES_TRADE.get(side, side)}"
    if ev.kind == KIND_BOOK and r is not None:
        act, side = chr(int(r["action"])), chr(int(r["side"]))
        lv = r["levels"]
        bid = "-" if lv["bid_px"][0] == UNDEF_PRICE else f"{es_points(int(lv['bid_px'][0])):.2f} x {int(lv['bid_sz'][0])}"
        ask = "-" if lv["ask_px"][0] == UNDEF_PRICE else f"{es_points(int(lv['ask_px'][0])):.2f} x {int(lv['ask_sz'][0])}"
        px = int(r["price"])
        where = "" if px == UNDEF_PRICE else f" {es_points(px):.2f} x {int(r['size'])}"
        last = " F_LAST" if int(r["flags"]) & F_LAST else ""
        return (f"{head} {ACTIONS.get(act, act)} {SIDES_BOOK.get(side, side)}{where}{last}; "
                f"top of book (ES points x contracts) {bid} / {ask}")
    if ev.kind == KIND_OPTION and r is not None:
        c = int(r["contract"])
        sym = st.contracts[c] if 0 <= c < len(st.contracts) else f"contract {c}"
        sd = int(r["side"])
        side = {1: "buy", -1: "sell"}.get(sd, "tick rule" if int(r["tick_rule"]) else "unknown")
        return (f"{head} {sym} (strike {float(r['strike']):.2f} {'C' if r['is_call'] else 'P'}) "
                f"{float(r['price']):.2f} $/share x {int(r['size'])} contracts, aggressor {side}")
    return head


# ------------------------------------------------------------------------------------ position
def status(st: Stepper) -> str:
    """Where the replay is: events applied, the state's time, the next event, counts."""
    s = st.session
    lines = []
    if st.last_event is None:
        lines.append(f"no event applied yet (session {s.iso}: {fmt_clock(s.start_ns, s)} .. {fmt_clock(s.end_ns, s)})")
    else:
        lines.append(f"{st.applied:,} events applied; last {event_line(st.last_event, st)}")
        lines.append(f"state as of {fmt_clock(st.now_ns, s)} (every applied event has an earlier ts_recv)")
    if st.finished:
        rows = st.engine.stats
        lines.append(f"end of data: replay finished — {len(st.touches)} touches, {rows.labels_complete} labels "
                     f"complete, {rows.labels_incomplete} incomplete")
    else:
        nxt = st.next_event()
        lines.append("next: end of data" if nxt is None else f"next {event_line(nxt, st)}")
        pending = len(st.engine.pending_rows)
        lines.append(f"bars closed {st.engine.stats.bars:,} | touches {len(st.touches)} ({pending} labels pending) | "
                     f"breakpoints {len(st.breakpoints)}")
    return "\n".join(lines)


def bar_line(bar: Bar, st: Stepper, what: str) -> str:
    s = st.session
    span = f"{fmt_clock(bar.start_ns, s, digits=0)[:-3]}–{fmt_clock(bar.end_ns, s, digits=0)}"
    es = "/".join(f"{es_points(v):.2f}" for v in (bar.open_es, bar.high_es, bar.low_es, bar.close_es))
    return (f"{what} {span}: O {bar.open:.3f} H {bar.high:.3f} L {bar.low:.3f} C {bar.close:.3f} SPY $ "
            f"(ES O/H/L/C {es}), volume {bar.volume:,} contracts, {bar.trades:,} trades")


def touch_line(row: dict, st: Stepper) -> str:
    """One touch on a line: decision time, level, direction, spot, signal, barrier, outcome."""
    ratio = st.cfg.instrument.es_spy_ratio
    out = "pending" if row["label_complete"] is None else (
        row["outcome"] + ("" if row["label_complete"] else " (incomplete)"))
    return (f"{fmt_clock(row['ts_event_ns'], st.session, digits=0)}  {row['level_id']:<18} {row['direction']:<4} "
            f"level {fmt_px(row['level_price'], ratio)}  spot {row['spot']:.3f}  {row['barrier_state']:<10} "
            f"{row['fuel_effect']:<8} signal {row['signal']:<9} {row['confidence']:<6} outcome {out}")


def stop_report(stop: Stop, st: Stepper) -> str:
    """What a move did: events (short steps), bars closed, touches emitted, why it stopped."""
    s = st.session
    lines = []
    if stop.events:
        # a short step: events in order, each bar close (and its touches) before the event that closed it
        bars = list(stop.bars)
        for e in stop.events:
            while bars and bars[0].end_ns <= e.ts_ns:
                lines += _bar_close_lines(bars.pop(0), stop, st)
            lines.append(event_line(e, st))
        for bar in bars:
            lines += _bar_close_lines(bar, stop, st)
    elif stop.applied:
        lines.append(f"applied {stop.applied:,} events")
    if stop.bars and not stop.events:
        if len(stop.bars) <= 3:
            lines += [bar_line(b, st, "bar closed") for b in stop.bars]
        else:
            lines.append(f"{len(stop.bars)} bars closed, the last: {bar_line(stop.bars[-1], st, '')[1:]}")
    shown = stop.touches[-20:]
    if stop.touches and not stop.events:
        lines.append(f"{len(stop.touches)} touch{'es' if len(stop.touches) != 1 else ''} emitted"
                     + (f" (the last {len(shown)}):" if len(shown) < len(stop.touches) else ":"))
        lines += ["  " + touch_line(r, st) for r in shown]
    where = fmt_clock(stop.matched[0]["ts_event_ns"] if stop.matched else st.now_ns, s)
    if stop.reason == "breakpoint":
        why = ", ".join(f"breakpoint {bp.number} ({bp.describe(s)})" for bp in stop.hit)
        lines.append(f"stopped at {where}: {why}")
    elif stop.reason == "touch":
        lines.append(f"stopped at {where}: {len(stop.matched)} matching touch"
                     f"{'es' if len(stop.matched) != 1 else ''} at the bar close")
    elif stop.reason == "time":
        lines.append(f"reached {where}")
    elif stop.reason == "interrupted":
        lines.append(f"interrupted at {where}")
    if stop.at_end:
        stats = st.engine.stats
        lines.append(f"end of data: replay finished — {len(st.touches)} touches, {stats.labels_complete} labels "
                     f"complete, {stats.labels_incomplete} incomplete (type 'touches' to list them)")
    elif st.last_event is not None:
        lines.append(f"at {fmt_clock(st.now_ns, s)}, {st.applied:,} events applied")
    return "\n".join(lines)


def _bar_close_lines(bar: Bar, stop: Stop, st: Stepper) -> list[str]:
    out = [bar_line(bar, st, "bar closed")]
    out += ["  touch " + touch_line(r, st) for r in stop.touches if r["ts_event_ns"] == bar.end_ns]
    return out


# ------------------------------------------------------------------------------------ book
def book_view(st: Stepper) -> str:
    """The current committed 10-level MBP-10 book: ES points, SPY $ and sizes per side."""
    snap = st.engine.book.current()
    if snap is None:
        return "no committed book state yet"
    ratio = st.cfg.instrument.es_spy_ratio
    s = st.session
    lines = [f"book committed at {fmt_clock(snap.ts_ns, s)} ({st.engine.book.commit_count:,} states committed today)",
             f"{'lvl':>3}  {'bid size':>9} {'bid ES':>9} {'bid SPY $':>10} | {'ask SPY $':<10} {'ask ES':<9} {'ask size':<9}",
             f"{'':>3}  {'contracts':>9} {'points':>9} {'':>10} | {'':<10} {'points':<9} {'contracts':<9}"]
    for j, b, bs, a, as_ in snap.rows():
        left = (f"{bs:>9,} {b:>9.2f} {b / ratio:>10.3f}" if b is not None else f"{'':>9} {'-':>9} {'':>10}")
        right = (f"{a / ratio:<10.3f} {a:<9.2f} {as_:<9,}" if a is not None else f"{'':<10} {'-':<9}")
        lines.append(f"{j:>3}  {left} | {right}".rstrip())
    b0, a0 = snap.rows()[0][1], snap.rows()[0][3]
    if b0 is not None and a0 is not None:
        mid = (a0 + b0) / 2
        ticks = (a0 - b0) / st.cfg.instrument.es_tick_size
        lines.append(f"mid {mid:.3f} ES = {mid / ratio:.4f} SPY $; spread {a0 - b0:.2f} ES points ({ticks:g} ticks)")
    tot_b = int(snap.bid_sz[snap.bid_px != UNDEF_PRICE].sum())
    tot_a = int(snap.ask_sz[snap.ask_px != UNDEF_PRICE].sum())
    lines.append(f"visible depth: bid {tot_b:,} / ask {tot_a:,} contracts")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ levels
def levels_view(st: Stepper) -> str:
    """The levels testable on the open bar (values as of its start) with their values now."""
    s, ratio = st.session, st.cfg.instrument.es_spy_ratio
    last = st.last_price()
    now = st.levels_now()
    now_by = now.by_id()
    snap = st.levels_snapshot()
    lines = []
    if snap is not None:
        lines.append(f"levels testable on the bar starting {fmt_clock(snap.at_ns, s, digits=0)} "
                     f"(values as of its start; 'now' = value at {fmt_clock(st.now_ns, s)} if it differs)")
        shown = snap
    else:
        lines.append(f"no touch detection on the current bar (outside the detection window); "
                     f"levels as if a bar started at {fmt_clock(st.now_ns, s)}")
        shown = now
    lines.append(f"  {'level_id':<20} {'kind':<13} {'SPY $':>10} {'ES points':>10} {'vs last $':>10} {'now SPY $':>10}")
    order = sorted(shown.levels, key=lambda lv: (-lv.price, lv.level_id))
    marked = last is None
    for lv in order:
        if not marked and lv.price < last:
            lines.append(f"  {'-- last trade':<20} {'':<13} {last:>10.3f} {last * ratio:>10.2f}")
            marked = True
        cur = now_by.get(lv.level_id)
        now_s = "gone" if cur is None else ("" if abs(cur.price - lv.price) <= 1e-9 else f"{cur.price:.3f}")
        vs = "" if last is None else f"{lv.price - last:+.3f}"
        lines.append(f"  {lv.level_id:<20} {lv.kind:<13} {lv.price:>10.3f} {lv.price * ratio:>10.2f} {vs:>10} {now_s:>10}")
    if not marked:
        lines.append(f"  {'-- last trade':<20} {'':<13} {last:>10.3f} {last * ratio:>10.2f}")
    if snap is not None:
        ids = {lv.level_id for lv in snap.levels}
        new = [lv for lv in now.levels if lv.level_id not in ids]
        if new:
            lines.append("not testable on this bar (they exist now; testable from a later bar): "
                         + ", ".join(f"{lv.level_id} {lv.price:.3f}" for lv in new))
    if not shown.levels:
        lines.append("  (no level)")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ tape
def tape_view(st: Stepper, n: int = 10) -> str:
    """The last ``n`` ES trades and the tape features of the levels near the last trade."""
    s, ratio, cfg = st.session, st.cfg.instrument.es_spy_ratio, st.cfg
    rows = st.engine.tape.live()
    k = rows["ts"].shape[0]
    lines = [f"last {min(n, k)} ES trades ({st.es_symbol or 'chosen contract'}; {st.engine.tape.appended:,} today); "
             "side B = buy aggressor, A = sell aggressor, N = unknown",
             f"  {'time (ET)':<24} {'SPY $':>9} {'ES points':>10} {'size':>9}  side",
             f"  {'':<24} {'':>9} {'':>10} {'contracts':>9}"]
    for j in range(max(0, k - n), k):
        p = es_points(int(rows["price"][j]))
        side = {1: "B", -1: "A"}.get(int(rows["side"][j]), "N")
        lines.append(f"  {fmt_clock(int(rows['ts'][j]), s):<24} {p / ratio:>9.3f} {p:>10.2f} {int(rows['size'][j]):>9,}  {side}")
    last = st.last_price()
    if last is None:
        return "\n".join(lines + ["no ES trade yet"])
    band = cfg.touch.monitor_band
    near = [lv for lv in st.levels_now().levels if abs(lv.price - last) <= band + 1e-9]
    t = st.now_ns
    tp = cfg.tape
    feats = st.tape_features(np.array([lv.price for lv in near] or [last]))
    lines.append(f"velocity {float(feats['tape_velocity'][0]):.2f} trades/s (ES trades in "
                 f"[now − {tp.velocity_window_s:g} s, now) / {tp.velocity_window_s:g} s)")
    if not near:
        lines.append(f"no level within ${band:.2f} of the last trade {last:.3f}")
        return "\n".join(lines)
    lines.append(f"tape features at {fmt_clock(t, s)} of the levels within ${band:.2f} of the last trade "
                 f"{last:.3f} (window {tp.tape_window_s:g} s, band ±${tp.tape_band:.2f}):")
    lines.append(f"  {'level_id':<20} {'SPY $':>9} {'buy vol':>9} {'sell vol':>9} {'imbalance':>9} "
                 f"{'sweep':>6} {'sweep notional':>15}")
    lines.append(f"  {'':<20} {'':>9} {'contracts':>9} {'contracts':>9} {'[-1, 1]':>9} {'':>6} {'$':>15}")
    from spymaster.vocab import SWEEP_DIRECTIONS
    for j, lv in enumerate(near):
        lines.append(f"  {lv.level_id:<20} {lv.price:>9.3f} {int(feats['tape_buy_vol'][j]):>9,} "
                     f"{int(feats['tape_sell_vol'][j]):>9,} {float(feats['tape_imbalance'][j]):>9.3f} "
                     f"{SWEEP_DIRECTIONS[int(feats['tape_sweep_direction'][j])]:>6} "
                     f"{float(feats['tape_sweep_notional'][j]):>15,.0f}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ fuel
def fuel_view(st: Stepper, *, all_contracts: bool = False, near: float = 5.0) -> str:
    """Basis, spot, counts, walls / flip, and per-contract volume / q / IV (strikes within ``near``
    SPY $ of spot unless ``all_contracts``)."""
    s, ratio = st.session, st.cfg.instrument.es_spy_ratio
    fuel = st.engine.fuel
    d = fuel.state()
    t = st.now_ns
    basis, spot, es_px = d["basis"], fuel.spot, d["es_price"]
    lines = []
    if basis is None:
        lines.append(f"fuel at {fmt_clock(t, s)}: basis unknown (no put-call parity observation yet) — "
                     "option levels inactive, gamma features 0 / NEUTRAL")
    else:
        last_obs = d["last_basis_obs_ns"]
        lines.append(f"fuel at {fmt_clock(t, s)}: basis {basis:.4f} SPY $ (ES/{ratio:g} − SPY; {d['n_basis_obs']:,} "
                     f"observations, last {fmt_clock(last_obs, s, digits=3)}) | ES {fmt_px(es_px, ratio, es=False)} on "
                     f"the axis | SPY spot {spot:.3f} $")
    lines.append(f"0DTE option trades {d['n_option_trades']:,}: IV solved {d['iv_solved']:,}, unsolvable "
                 f"{d['iv_unsolvable']:,}, skipped (no basis) {d['iv_skipped']:,}; {d['n_contracts']} contracts, "
                 f"{d['n_strikes']} strikes")
    lv = st.fuel_levels()
    if basis is not None:
        g = float(st.dealer_gamma_at([spot])[0])
        lines.append(f"dealer gamma at spot {g:,.0f} shares per SPY $1 (threshold ±{st.cfg.fuel.gamma_threshold:,.0f})")

        def lvs(name: str, k: float | None, p: float | None) -> str:
            return f"{name} {'inactive' if k is None else f'{k:.2f} SPY (axis {p:.3f})'}"

        lines.append("  ".join([lvs("CALL_WALL", lv.call_wall, lv.call_wall_price),
                                lvs("PUT_WALL", lv.put_wall, lv.put_wall_price),
                                lvs("GAMMA_FLIP", lv.gamma_flip, lv.gamma_flip_price)]))
        lines.append(f"STRIKE levels ({st.cfg.levels.strike_min_volume}+ contracts at the strike): "
                     + (", ".join(f"{k:.2f}" for k in lv.strikes) if lv.strikes.size else "none"))
    rows = fuel.table()
    if not all_contracts and spot is not None:
        rows_shown = [r for r in rows if abs(r["strike"] - spot) <= near + 1e-9]
        scope = f"strikes within ${near:g} of spot ('fuel all' for every contract)"
    else:
        rows_shown = rows
        scope = "every traded contract"
    lines.append(f"per contract, {scope}: volume and q (signed customer position Σ aggressor·size) in contracts, "
                 "IV per √year, last $ per share")
    lines.append(f"  {'symbol':<22} {'strike':>8} {'C/P':>3} {'trades':>7} {'volume':>8} {'q':>7} {'IV':>7} "
                 f"{'last $':>7}  last trade")
    for r in rows_shown:
        sym = st.contracts[r["contract"]] if r["contract"] < len(st.contracts) else f"contract {r['contract']}"
        iv = "-" if r["iv"] is None else f"{r['iv']:.4f}"
        lines.append(f"  {sym:<22} {r['strike']:>8.2f} {r['right']:>3} {r['trades']:>7,} {r['volume']:>8,} "
                     f"{r['q']:>7,} {iv:>7} {r['last_price']:>7.2f}  {fmt_clock(r['last_ts'], s, digits=3)}")
    if not rows_shown:
        lines.append("  (none)")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ bars
def bar_view(st: Stepper) -> str:
    lines = []
    lines.append("no bar closed yet" if st.last_bar is None else bar_line(st.last_bar, st, "last closed 1-min bar"))
    ob = st.engine.bars1.open_bar
    lines.append("no open 1-min bar (no trade since the last close)" if ob is None
                 else bar_line(ob, st, "open 1-min bar (so far; known at its end)"))
    ob2 = st.engine.bars2.open_bar
    if ob2 is not None:
        lines.append(bar_line(ob2, st, "open 2-min bar (so far)"))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ touches
SECTIONS = {"event_id": "identity", "level_price": "level", "spot": "context", "barrier_state": "barrier",
            "tape_imbalance": "tape", "gamma_exposure": "fuel", "break_score_raw": "scores",
            "runway_direction": "runway", "outcome": "labels (forward-looking)"}
UNITS = {
    "ts_event_ns": "ns since epoch (UTC)", "level_price": "SPY $", "distance": "SPY $", "spot": "SPY $",
    "basis": "SPY $ (ES/ratio − SPY)", "dist_to_sma_200": "SPY $", "dist_to_sma_400": "SPY $", "dist_to_vwap": "SPY $",
    "session_position": "fraction of the RTH range", "barrier_delta_liq": "contracts",
    "barrier_replenishment_ratio": "ratio", "barrier_added": "contracts", "barrier_canceled": "contracts",
    "barrier_filled": "contracts", "wall_ratio": "ratio", "depth_in_zone": "contracts", "churn": "contracts",
    "tape_imbalance": "[-1, 1]", "tape_buy_vol": "contracts", "tape_sell_vol": "contracts",
    "tape_velocity": "trades/s", "tape_sweep_notional": "$", "gamma_exposure": "shares per SPY $1",
    "fuel_net_dealer_gamma": "shares per SPY $1", "fuel_call_wall": "SPY $ (axis)", "fuel_put_wall": "SPY $ (axis)",
    "fuel_hvl": "SPY $ (axis)", "fuel_call_gamma": "shares per SPY $1", "fuel_put_gamma": "shares per SPY $1",
    "break_score_raw": "0–100", "break_score_smooth": "0–100", "liquidity_score": "0–100", "hedge_score": "0–100",
    "tape_score": "0–100", "runway_next_level_price": "SPY $", "runway_distance": "SPY $",
    "future_price_5min": "SPY $", "excursion_max": "SPY $", "excursion_min": "SPY $",
}
ES_PRICE_COLUMNS = ("level_price", "spot", "fuel_call_wall", "fuel_put_wall", "fuel_hvl", "runway_next_level_price",
                    "future_price_5min")


def fmt_value(v) -> str:
    """Exact, unambiguous value text: ``null``, ``true``/``false``, ints, floats by repr (round-trip)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def touch_columns(row: dict, st: Stepper) -> list[str]:
    """Every Gold column of a touch row, one line each, grouped by section, with units. Labels that
    have not resolved yet read ``pending``."""
    ratio = st.cfg.instrument.es_spy_ratio
    pending = row.get("label_complete") is None
    lines = []
    for name in COLUMN_NAMES:
        if name in SECTIONS:
            lines.append(f"[{SECTIONS[name]}]")
        v = row.get(name)
        text = "pending" if pending and name in LABEL_COLUMNS else fmt_value(v)
        note = UNITS.get(name, "")
        if name == "ts_event_ns":
            note += f" = {fmt_clock(int(v), st.session)}"
        elif name in ES_PRICE_COLUMNS and isinstance(v, float):
            note += f" = ES {v * ratio:.2f}"
        lines.append(f"  {name:<28} {text:<24} {note}".rstrip())
    return lines


def touch_view(row: dict, st: Stepper) -> str:
    s = st.session
    k = next((i for i, r in enumerate(st.touches) if r is row), None)
    head = f"touch #{k + 1} of {len(st.touches)}" if k is not None else "touch"
    if row.get("label_complete") is None:
        end = row["ts_event_ns"] + int(round(st.cfg.labels.label_horizon_s * 1e9))
        lab = f"labels pending: they resolve at the first event after {fmt_clock(end, s)} (t + horizon)"
    elif row["label_complete"]:
        lab = "labels complete"
    else:
        lab = "labels incomplete (the data ended before t + horizon)"
    return "\n".join([f"{head}: {row['event_id']} — {lab}"] + touch_columns(row, st))


def touches_view(st: Stepper, n: int = 20) -> str:
    if not st.touches:
        return "no touch yet"
    k0 = max(0, len(st.touches) - n)
    lines = [f"{len(st.touches)} touches so far" + (f" (the last {n}):" if k0 else ":")]
    lines += [f"  #{k + 1:<4} {touch_line(st.touches[k], st)}" for k in range(k0, len(st.touches))]
    return "\n".join(lines)


def breaks_view(st: Stepper) -> str:
    if not st.breakpoints:
        return "no breakpoints"
    r = st.reached_ns
    lines = ["  num  what                                   hits"]
    for bp in st.breakpoints:
        passed = " (passed)" if bp.what == "time" and r is not None and bp.value <= r else ""
        lines.append(f"  {bp.number:<4} {bp.describe(st.session) + passed:<38} {bp.hits}")
    return "\n".join(lines)
