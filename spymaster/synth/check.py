"""A small, independent reading of SPEC §7 over raw records, to verify synthetic scenarios.

This is deliberately plain numpy/Python (not the engines' kernels): it rebuilds committed book
states from MBP-10 records (SPEC §3 commit rule), attributes trades to book decreases, and
computes the barrier sums, depth, wall ratio, state, and the tape's sweep / imbalance for one
(level, direction, decision time). :func:`spymaster.synth.generator.generate` fills each scenario's
``measured`` with it, and the tests use it to check that every scenario produces its pattern.
Units: ES prices in int64 1e-9 points; sizes contracts; times ns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spymaster.config import Config
from spymaster.events import F_LAST, UNDEF_PRICE, as_books, as_trades
from spymaster.vocab import BARRIER_STATES

_T = ord("T")
_F = ord("F")
NS = 1_000_000_000


@dataclass
class BookState:
    ts: int
    bid_px: np.ndarray
    bid_sz: np.ndarray
    ask_px: np.ndarray
    ask_sz: np.ndarray


def committed_states(books: np.ndarray) -> list[BookState]:
    """Committed states: at each F_LAST record if a non-T/F record arrived since the last commit,
    with the levels of the latest such record (SPEC §3)."""
    b = as_books(books) if books.dtype.itemsize == 368 else books
    out: list[BookState] = []
    act = b["action"].astype(np.int64) if b["action"].dtype != np.uint8 else b["action"]
    flags = b["flags"]
    lv = b["levels"]
    pending = -1
    for i in range(b.shape[0]):
        a = int(act[i])
        if a != _T and a != _F:
            pending = i
        if (int(flags[i]) & F_LAST) and pending >= 0:
            l = lv[pending]
            out.append(BookState(int(b["ts_recv"][i]), l["bid_px"].astype(np.int64), l["bid_sz"].astype(np.int64),
                                 l["ask_px"].astype(np.int64), l["ask_sz"].astype(np.int64)))
            pending = -1
    return out


def _side(st: BookState, ask: bool) -> tuple[np.ndarray, np.ndarray]:
    return (st.ask_px, st.ask_sz) if ask else (st.bid_px, st.bid_sz)


def _visible(px: np.ndarray, p: int, ask: bool) -> bool:
    n = int((px != UNDEF_PRICE).sum())
    if n < 10:
        return True
    return p <= int(px[9]) if ask else p >= int(px[9])


def _size_at(px: np.ndarray, sz: np.ndarray, p: int) -> int:
    hit = np.nonzero(px == p)[0]
    return int(sz[hit[0]]) if hit.size else 0


def barrier(books: np.ndarray, trades: np.ndarray, level_es: int, direction: int, t: int,
            config: Config | None = None) -> dict:
    """SPEC §7 barrier features at decision time ``t`` for the level ``level_es`` (1e-9 ES
    points) approached in ``direction`` (+1 UP → ask defends, −1 DOWN → bid defends)."""
    cfg = (config or Config()).barrier
    tick = int(round((config or Config()).instrument.es_tick_size * 1e9))
    ask = direction > 0
    states = committed_states(books)
    tr = as_trades(trades) if trades.dtype.itemsize == 48 else trades
    hit_side = ord("B") if ask else ord("A")
    tts = tr["ts_recv"].astype(np.int64)
    w0 = t - int(round(cfg.barrier_window_s * NS))
    zone = [level_es + k * tick for k in range(-cfg.barrier_zone_ticks, cfg.barrier_zone_ticks + 1)]
    added = canceled = filled = 0
    for j in range(1, len(states)):
        cur, prev = states[j], states[j - 1]
        if not (w0 <= cur.ts < t):
            continue
        ppx, psz = _side(prev, ask)
        cpx, csz = _side(cur, ask)
        sel = (tts > prev.ts) & (tts <= cur.ts) & (tr["side"] == hit_side)
        for p in zone:
            if not (_visible(ppx, p, ask) and _visible(cpx, p, ask)):
                continue
            before = _size_at(ppx, psz, p)
            after = _size_at(cpx, csz, p)
            v = int(tr["size"][sel & (tr["price"] == p)].sum())
            f = min(v, before)
            rest = after - before + f
            added += max(rest, 0)
            canceled += max(-rest, 0)
            filled += f
    before_t = [s for s in states if s.ts < t]
    depth = 0
    biggest = 0
    if before_t:
        px, sz = _side(before_t[-1], ask)
        for p in zone:
            q = _size_at(px, sz, p)
            depth += q
            biggest = max(biggest, q)
    b0 = t - int(round(cfg.baseline_window_s * NS))
    num = 0.0
    den = 0
    for j, s in enumerate(before_t):
        start = max(s.ts, b0)
        end = before_t[j + 1].ts if j + 1 < len(before_t) else t
        if end <= start:
            continue
        _, sz = _side(s, ask)
        num += (int(sz.sum()) / 10.0) * (end - start)
        den += end - start
    baseline = num / den if den else 0.0
    wall_ratio = biggest / baseline if baseline > 0 else 0.0
    delta = added - canceled - filled
    repl = added / max(1, canceled + filled)
    F = cfg.barrier_flow_threshold
    if delta <= -F and canceled >= filled and repl < cfg.vacuum_max_replenishment:
        state = 0
    elif delta <= -F and filled > canceled:
        state = 1
    elif (delta >= F and repl > cfg.wall_min_replenishment) or wall_ratio >= cfg.wall_ratio_wall:
        state = 2
    elif filled >= F and delta >= 0:
        state = 3
    elif wall_ratio < cfg.wall_ratio_weak or depth == 0:
        state = 4
    else:
        state = 5
    return dict(barrier_state=BARRIER_STATES[state], barrier_added=added, barrier_canceled=canceled,
                barrier_filled=filled, barrier_delta_liq=delta, barrier_replenishment_ratio=repl,
                churn=added + canceled + filled, depth_in_zone=depth, wall_ratio=wall_ratio, baseline=baseline)


def tape(trades: np.ndarray, level: float, t: int, config: Config | None = None) -> dict:
    """SPEC §7 tape features (band volumes, imbalance, the largest qualifying sweep) at ``t``
    for the level ``level`` on the SPY axis."""
    cfg = config or Config()
    tc, ratio = cfg.tape, cfg.instrument.es_spy_ratio
    tr = as_trades(trades) if trades.dtype.itemsize == 48 else trades
    ts = tr["ts_recv"].astype(np.int64)
    px = tr["price"].astype(np.int64)
    axis = px / 1e9 / ratio
    band = np.abs(axis - level) <= tc.tape_band + 1e-9
    w0 = t - int(round(tc.tape_window_s * NS))
    inwin = (ts >= w0) & (ts < t)
    buy = int(tr["size"][band & inwin & (tr["side"] == ord("B"))].sum())
    sell = int(tr["size"][band & inwin & (tr["side"] == ord("A"))].sum())
    imb = (buy - sell) / (buy + sell) if buy + sell else 0.0
    known = band & (ts < t) & ((tr["side"] == ord("B")) | (tr["side"] == ord("A")))
    idx = np.nonzero(known)[0]
    gap = int(round(tc.sweep_max_gap_ms * 1e6))
    best = None
    i = 0
    while i < idx.size:
        j = i
        while (j + 1 < idx.size and tr["side"][idx[j + 1]] == tr["side"][idx[i]]
               and ts[idx[j + 1]] - ts[idx[j]] <= gap):
            j += 1
        run = idx[i:j + 1]
        notional = float((px[run] / 1e9 * tr["size"][run]).sum() * cfg.instrument.es_multiplier)
        prices = np.unique(px[run])
        if prices.size >= 2 and notional >= tc.sweep_min_notional and w0 <= ts[run[-1]] < t:
            if best is None or notional > best["notional"]:
                best = dict(notional=notional, direction="UP" if tr["side"][run[0]] == ord("B") else "DOWN",
                            trades=int(run.size), prices=[p / 1e9 for p in prices.tolist()],
                            first_ts=int(ts[run[0]]), last_ts=int(ts[run[-1]]))
        i = j + 1
    return dict(tape_buy_vol=buy, tape_sell_vol=sell, tape_imbalance=imb, tape_sweep_detected=best is not None,
                tape_sweep_direction=best["direction"] if best else "NONE",
                tape_sweep_notional=best["notional"] if best else 0.0, sweep=best)
