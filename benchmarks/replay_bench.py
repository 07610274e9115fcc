"""Issue-3 benchmark: a `day`-scale session, decode-only vs end-to-end replay, events/s, peak RSS.

    python benchmarks/replay_bench.py [--scale day] [--repeat 2]

A thin entry point to benchmarks/run.py (which also gives the per-stage breakdown and the
numba compile figures): each figure comes from a fresh subprocess.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import main  # noqa: E402

if __name__ == "__main__":
    main(["--only", "decode,replay,engine"] + sys.argv[1:])
