"""Throughput of the step-through debugger (``spymaster debug``) on the demo day.

    python benchmarks/debug_bench.py                      # the synthetic demo day (generated if missing)
    python benchmarks/debug_bench.py --lake DIR --date D  # any lake

Prints events/s for: plain replay (the reference), ``continue`` to the end with no breakpoint,
``continue`` to a far time breakpoint, ``continue`` with a touch breakpoint that never triggers
(the stepper then feeds one minute at a time and settles at every minute boundary — the
worst case of a far touch breakpoint), ``next touch`` through every touch of the day, and
single ``step`` s. Every run checks that the table it finishes with equals replay's.
Numba caches are warmed by a first replay that is not timed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from spymaster.calendar import et_ns, parse_date
from spymaster.config import Config
from spymaster.debug.stepper import Stepper
from spymaster.pipeline import Pipeline
from spymaster.sources.lake import Lake

DEMO_DATE = "2025-12-17"
OUT = Path(__file__).resolve().parent / "out" / "debug_lake"


def ensure_demo(lake: Lake, date: str) -> None:
    day = parse_date(date)
    if lake.find_bronze("glbx-mdp3", "trades", day) is None:
        from spymaster.synth import generate

        print(f"generating the synthetic demo day {date} into {lake.root} ...")
        generate(lake, [day], scale="demo", seed=7)


def timed(label: str, fn, n_events: int, reference=None) -> float:
    t0 = time.perf_counter()
    st, table = fn()
    secs = time.perf_counter() - t0
    n = st.applied if st is not None else n_events
    if reference is not None and table is not None:
        assert table.equals(reference), f"{label}: the debugger's table differs from replay's"
    print(f"{label:<58} {n:>10,} events {secs:>7.2f} s {n / secs:>12,.0f} events/s")
    return n / secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lake", default=None, help=f"lake root (default: {OUT}, the demo day generated if missing)")
    ap.add_argument("--date", default=DEMO_DATE)
    ap.add_argument("--far", default="15:55", help="far time breakpoint (ET, default 15:55)")
    ap.add_argument("--single-steps", type=int, default=20_000, help="events applied by single steps")
    args = ap.parse_args()

    lake = Lake.at(args.lake or OUT)
    if args.lake is None:
        ensure_demo(lake, args.date)
    cfg = Config().replace(**{"io.lake": str(lake.root)})
    day = parse_date(args.date)

    reference, _, n_events = Pipeline(cfg).replay(day)           # warm-up (JIT caches), reference table
    print(f"{args.date}: {n_events:,} merged events, {reference.num_rows} touches")

    def replay():
        table, _, _ = Pipeline(cfg).replay(day)
        return None, table

    def cont_to_end():
        st = Stepper.open(cfg, day)
        st.cont()
        return st, st.table

    def cont_far_time():
        st = Stepper.open(cfg, day)
        st.add_break(args.far)
        stop = st.cont()
        assert stop.reason == "breakpoint", stop.reason
        st.cont()
        return st, st.table

    def cont_touch_never():
        st = Stepper.open(cfg, day)
        st.add_break("ROUND@1.00")        # a level that never exists: checked at every bar close
        stop = st.cont()
        assert stop.reason == "end", stop.reason
        return st, st.table

    def next_touch_all():
        st = Stepper.open(cfg, day)
        stops = 0
        while not st.finished:
            st.next_touch()
            stops += 1
        print(f"  ({stops} stops)")
        return st, st.table

    r0 = timed("replay (Pipeline.replay, reference)", replay, n_events)
    rates = {
        "continue to the end, no breakpoint": timed("debug: continue to the end, no breakpoint", cont_to_end,
                                                    n_events, reference),
        f"continue to a time breakpoint at {args.far}, then the end": timed(
            f"debug: continue to a time breakpoint at {args.far}, then on", cont_far_time, n_events, reference),
        "continue with a touch breakpoint that never triggers": timed(
            "debug: continue, touch breakpoint never triggers", cont_touch_never, n_events, reference),
        "next touch through every touch": timed("debug: next touch through every touch", next_touch_all,
                                                n_events, reference),
    }

    st = Stepper.open(cfg, day)
    st.until(et_ns(day, 9, 45))
    t0 = time.perf_counter()
    for _ in range(args.single_steps):
        st.step(1)
    secs = time.perf_counter() - t0
    print(f"{'debug: step 1, repeated (from 09:45 ET)':<58} {args.single_steps:>10,} events {secs:>7.2f} s "
          f"{args.single_steps / secs:>12,.0f} events/s")
    worst = min(rates.values())
    print(f"slowest continue mode: {worst:,.0f} events/s ({worst / r0:.0%} of replay); "
          f"target >= 100,000 events/s: {'met' if worst >= 100_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
