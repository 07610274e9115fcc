"""Throughput of the step-through debugger (``spymaster debug``) on the demo day.

    python benchmarks/debug_bench.py                      # the synthetic demo day (generated if missing)
    python benchmarks/debug_bench.py --scale day          # a full-size synthetic day (~2 M events)
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


def ensure_synthetic(lake: Lake, date: str, scale: str) -> None:
    day = parse_date(date)
    if lake.find_bronze("glbx-mdp3", "trades", day) is None:
        from spymaster.synth import generate

        print(f"generating the synthetic day {date} ({scale} scale) into {lake.root} ...")
        generate(lake, [day], scale=scale, seed=7)


REPEATS = 3


def timed(label: str, fn, n_events: int, reference=None) -> float:
    """Best of :data:`REPEATS` runs, wall-clock and CPU time of this process (the CPU figure is the
    one to trust on a loaded machine); returns events per CPU second."""
    best_wall = best_cpu = float("inf")
    n = n_events
    for _ in range(REPEATS):
        w0, c0 = time.perf_counter(), time.process_time()
        st, table = fn()
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
        n = st.applied if st is not None else n_events
        if reference is not None and table is not None:
            assert table.equals(reference), f"{label}: the debugger's table differs from replay's"
    print(f"{label:<56} {n:>9,} events  wall {best_wall:5.2f} s {n / best_wall:>9,.0f}/s  "
          f"cpu {best_cpu:5.2f} s {n / best_cpu:>9,.0f}/s")
    return n / best_cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lake", default=None, help=f"lake root (default: {OUT}_SCALE, generated if missing)")
    ap.add_argument("--date", default=DEMO_DATE)
    ap.add_argument("--scale", default="demo", choices=["demo", "day", "heavy"],
                    help="size of the generated synthetic day (without --lake)")
    ap.add_argument("--far", default="15:55", help="far time breakpoint (ET, default 15:55)")
    ap.add_argument("--single-steps", type=int, default=20_000, help="events applied by single steps")
    args = ap.parse_args()

    lake = Lake.at(args.lake or OUT.with_name(f"debug_lake_{args.scale}"))
    if args.lake is None:
        ensure_synthetic(lake, args.date, args.scale)
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
        while not st.finished:
            st.next_touch()
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
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.single_steps):
        st.step(1)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    print(f"{'debug: step 1, repeated (from 09:45 ET)':<56} {args.single_steps:>9,} events  wall {wall:5.2f} s "
          f"{args.single_steps / wall:>9,.0f}/s  cpu {cpu:5.2f} s {args.single_steps / cpu:>9,.0f}/s")
    worst = min(rates.values())
    print(f"slowest run mode: {worst:,.0f} events per CPU second ({worst / r0:.0%} of replay); "
          f"target >= 100,000 events/s: {'met' if worst >= 100_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
