"""Load every replay kernel once, before any real work (batch workers, benchmarks).

The numba kernels are compiled with ``cache=True``; the first call of each in a process still
loads it from the on-disk cache (a few tens of ms each, ~1 s for the whole engine). A worker
that pays this while it is idle — before its first date — replays its first date as fast as its
last. :func:`warm_kernels` replays a tiny hand-made RTH session (ES trades and books around one
level, 0DTE calls and puts on both sides of it) through a :class:`ReplayEngine`, which touches
every kernel the replay of a real date uses; nothing is written.
"""

from __future__ import annotations

import numpy as np

from spymaster.calendar import NS, session_for
from spymaster.config import Config
from spymaster.events import BOOK, F_LAST, OPTION, make_trades


def warm_session(config: Config | None = None, date: str = "2025-12-17") -> int:
    """Replay a synthetic 6-minute RTH slice of ``date``; returns the touches found (for tests)."""
    from spymaster.replay.engine import ReplayEngine
    from spymaster.replay.merge import interleave
    from spymaster.touches.schema import table_from_rows

    cfg = config or Config()
    session = session_for(date)
    t0 = session.rth_open_ns + 20 * 60 * NS
    n = 720
    ts = t0 + np.arange(n, dtype=np.int64) * (NS // 2)
    ticks = np.round(4 * np.sin(np.arange(n) / 40.0)).astype(np.int64)
    px = 6800.0 + 0.25 * ticks
    trades = make_trades(ts, px, np.full(n, 3), np.where(np.arange(n) % 2 == 0, "B", "A"))
    books = np.zeros(n, dtype=BOOK)
    books["length"] = BOOK.itemsize // 4
    books["rtype"] = 10
    books["ts_recv"] = ts + 1
    books["ts_event"] = ts
    books["action"] = ord("A")
    books["side"] = ord("B")
    books["flags"] = F_LAST
    lv = books["levels"]
    for k in range(10):
        lv["bid_px"][:, k] = np.round((px - 0.25 * (k + 1)) * 1e9).astype(np.int64)
        lv["ask_px"][:, k] = np.round((px + 0.25 * (k + 1)) * 1e9).astype(np.int64)
        lv["bid_sz"][:, k] = 20 + (np.arange(n) + k) % 17
        lv["ask_sz"][:, k] = 20 + (np.arange(n) + 3 * k) % 13
    strikes = np.arange(670.0, 686.0)
    m = 2 * strikes.size * 4
    opts = np.zeros(m, dtype=OPTION)
    opts["ts_recv"] = t0 + 2 + np.arange(m, dtype=np.int64) * (n * NS // 2 // m)
    opts["ts_event"] = opts["ts_recv"]
    k = np.arange(m)
    opts["contract"] = k % (2 * strikes.size)
    opts["strike"] = strikes[(k % (2 * strikes.size)) // 2]
    opts["is_call"] = (k % 2 == 0).astype(np.uint8)
    spot = 680.0 - 5.0
    intrinsic = np.where(opts["is_call"] == 1, spot - opts["strike"], opts["strike"] - spot)
    opts["price"] = np.maximum(intrinsic, 0.0) + 0.35
    opts["size"] = 60
    opts["tick_rule"] = 1
    engine = ReplayEngine(cfg, session)
    batch = interleave(trades, books, opts)
    for part in batch.chunks(200):
        engine.feed(part)
    return table_from_rows(engine.finish()).num_rows


def warm_kernels(config: Config | None = None) -> None:
    """Load the replay kernels (see the module docstring); safe to call more than once."""
    warm_session(config)
