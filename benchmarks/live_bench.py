"""Throughput of the live path through the local test gateway (records/s end to end).

Run: ``python benchmarks/live_bench.py [--scale day] [--date 2025-12-17] [--repeat 2]``.

Generates (once, under ``benchmarks/out/live_lake``) a synthetic session with
:func:`spymaster.synth.generate`, starts the test gateway (``tests/gateway.py``) in its own process
serving that session's Bronze files as a live replay (GLBX.MDP3 and OPRA.PILLAR: definitions, then
the data in ts_recv order with heartbeats), and times, with the real ``databento.Live`` client:

* ``client stream`` / ``client callback``: two clients collecting each record's bytes through
  ``Live.add_stream`` / ``Live.add_callback`` + ``bytes(record)`` (databento decodes every record
  into a Python object first), nothing else;
* ``client bulk``: two clients with spymaster's bulk protocol (:func:`spymaster.sources.live.install_bulk`:
  whole-record byte blocks, no per-record object), records counted by one numba walk;
* ``ingest bulk``: :class:`spymaster.cli.live.LiveRunner` without the engine — parse, normalize,
  bounded-lateness merge;
* ``live objects`` / ``live bulk``: the whole live path — the above plus the
  :class:`~spymaster.replay.engine.ReplayEngine`, part files and the compaction into the day file —
  with the per-record consumer / the bulk protocol;
* ``replay``: ``Pipeline.execute`` of the same session from the files (for comparison).

Records/s counts every record the gateway sends (definitions, trades, mbp-10, heartbeats,
acks) over the wall time from the first subscribe to the end. Each figure is the best of
``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
sys.path.insert(0, str(ROOT / "tests"))

from gateway import TEST_KEY as KEY  # noqa: E402  (the key the test gateway accepts)


class _Counter:
    closed = False

    def __init__(self) -> None:
        self.n = 0
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def write(self, b: bytes) -> int:
        self.parts.append(b)
        self.n += 1
        return len(b)


def _gateway(lake: Path, date: str) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "gateway.py"), "--lake", str(lake), "--date", date],
                            env=env, stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    return proc, port


def _client_only(port: int, *, mode: str) -> tuple[int, float]:
    """mode: "stream" (Live.add_stream), "callback" (Live.add_callback + bytes(record)), "bulk"
    (spymaster's bulk protocol: whole-record byte blocks)."""
    import databento as db
    import numpy as np

    from spymaster.config import Config
    from spymaster.sources.live import (GLBX_DATASET, OPRA_DATASET, RecordCollector, _walk, glbx_subscriptions,
                                        install_bulk, opra_subscriptions)

    cfg = Config()
    t0 = time.perf_counter()
    clients, sinks = [], []
    for ds, subs in ((GLBX_DATASET, glbx_subscriptions(cfg)), (OPRA_DATASET, opra_subscriptions(cfg))):
        c = db.Live(key=KEY, gateway="127.0.0.1", port=port)
        sink = RecordCollector(max_backlog_bytes=1 << 40) if mode == "bulk" else _Counter()   # nobody takes: no pause
        if mode == "callback":
            c.add_callback(lambda r, s=sink: s.write(bytes(r)))
        elif mode == "bulk":
            install_bulk(c, sink)
        else:
            c.add_stream(sink)
        for sub in subs:
            c.subscribe(ds, sub.schema, symbols=sub.symbols, stype_in=sub.stype_in)
        c.start()
        clients.append(c)
        sinks.append(sink)
    for c in clients:
        c.block_for_close()
    secs = time.perf_counter() - t0
    if mode != "bulk":
        return sum(s.n for s in sinks) - (2 if mode == "stream" else 0), secs  # add_stream also gets the 2 headers
    n = 0
    for sink in sinks:
        for _, data in sink.take():
            buf = np.frombuffer(data, np.uint8)
            n += int(_walk(buf, np.empty(buf.shape[0] // 16 + 1, np.int64), np.empty(buf.shape[0] // 16 + 1, np.uint8))[0])
    return n, secs


def _live(port: int, date: str, out: Path, *, bulk: bool = True, engine: bool = True) -> tuple[int, float, int]:
    from spymaster.cli.live import LiveRunner
    from spymaster.config import Config

    shutil.rmtree(out, ignore_errors=True)
    cfg = Config().replace(**{"io.lake": str(out)})
    t0 = time.perf_counter()
    runner = LiveRunner(cfg, date, gateway="127.0.0.1", port=port, install_signals=False, bulk=bulk)
    if not engine:
        runner.engine.feed = lambda batch: None      # ingest only: parse, normalize, merge
    res = runner.run()
    secs = time.perf_counter() - t0
    return res.records, secs, res.rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="day", choices=["demo", "day", "heavy"])
    ap.add_argument("--date", default="2025-12-17")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    from spymaster.config import Config
    from spymaster.pipeline import Pipeline
    from spymaster.sources.lake import Lake
    from spymaster.synth import generate

    os.environ["DATABENTO_API_KEY"] = KEY
    lake = Lake.at(OUT / f"live_lake_{args.scale}")
    t = time.perf_counter()
    generate(lake, [args.date], scale=args.scale, seed=args.seed)
    print(f"lake {lake.root} ready in {time.perf_counter() - t:.1f} s")

    gw, port = _gateway(lake.root, args.date)
    try:
        best: dict[str, tuple[float, int, float]] = {}
        rows = 0
        for _ in range(args.repeat):
            for name, fn in (("client stream", lambda: _client_only(port, mode="stream")),
                             ("client callback", lambda: _client_only(port, mode="callback")),
                             ("client bulk", lambda: _client_only(port, mode="bulk")),
                             ("ingest bulk", lambda: _live(port, args.date, OUT / "live_out", engine=False)[:2]),
                             ("live objects", lambda: _live(port, args.date, OUT / "live_out", bulk=False)[:2]),
                             ("live bulk", lambda: _live(port, args.date, OUT / "live_out")[:2])):
                n, secs = fn()
                rate = n / secs
                if name not in best or rate > best[name][0]:
                    best[name] = (rate, n, secs)
        _, _, rows = _live(port, args.date, OUT / "live_out")
    finally:
        gw.terminate()
        gw.wait(10)
    cfg = Config().replace(**{"io.lake": str(lake.root)})
    rep = None
    for _ in range(args.repeat):
        r = Pipeline(cfg).execute(args.date, force=True, write=False)
        if rep is None or r.seconds < rep.seconds:
            rep = r
    print(f"scale {args.scale}, {args.date}: {best['live bulk'][1]:,} records through the gateway, {rows} touches")
    for name, (rate, n, secs) in best.items():
        print(f"  {name:16s} {rate / 1e3:8.0f} k records/s   ({n:,} records in {secs:.2f} s)")
    print(f"  {'replay (files)':16s} {rep.events / rep.seconds / 1e3:8.0f} k events/s    "
          f"({rep.events:,} events in {rep.seconds:.2f} s)")


if __name__ == "__main__":
    main()
