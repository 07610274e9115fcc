"""Generation time and record counts of the synthetic market per scale.

    python benchmarks/synth_bench.py [--scales demo,day,heavy] [--date 2025-12-17] [--seed 7]

Prints, per scale, the seconds for one session (simulation + files) and the record counts, and
the time of the numba simulation alone. The first run of a fresh checkout also pays the numba
compilation (cached afterwards); run twice for steady-state figures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", default="demo,day,heavy")
    ap.add_argument("--date", default="2025-12-17")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    t = time.perf_counter()
    from spymaster import logs
    from spymaster.synth import generate
    import spymaster.synth.book  # noqa: F401  (loads / compiles the kernels)

    logs.configure(json=False, level="warning")
    print(f"import + kernel load: {time.perf_counter() - t:.2f} s")
    for scale in args.scales.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            rep = generate(Path(tmp) / "lake", [args.date], scale=scale, seed=args.seed)
            wall = time.perf_counter() - t0
            s = rep.sessions[0]
            c = s.counts
            size = sum(f.path.stat().st_size for f in rep.files)
            print(f"{scale:>6}: {wall:6.2f} s for one session ({s.seconds:.2f} s simulate+options, "
                  f"{wall - s.seconds:.2f} s ES files) | ES trades {c['es_trades']:>9,} | MBP-10 {c['es_mbp']:>10,} | "
                  f"option trades {c['option_trades']:>9,} | {len(rep.files)} files, {size / 1e6:.1f} MB")
            mbps = c["es_mbp"] / wall
            print(f"{'':>8}{mbps / 1e6:.2f} M MBP-10 records/s end to end")


if __name__ == "__main__":
    main()
