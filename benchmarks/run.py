"""Replay benchmark: the benchmark day against the decode floor, with a per-stage breakdown.

    python benchmarks/run.py --scale day [--lake DIR] [--json FILE] [--repeat N]

Generates (or reuses) one synthetic session of the given scale, then measures — each in a fresh
subprocess, so numba caches, page caches and RSS are per measurement:

* ``decode``   — decode-only time of all the session's input files: databento
  ``DBNStore.to_ndarray(count=…)`` loop, no other work (the physical floor);
* ``replay``   — end to end: ``Pipeline.execute`` (sources, merge, engine, labels, Gold sink);
* ``engine``   — the engine alone on pre-decoded, pre-merged batches (events/s excluding decode);
* ``core``     — the same with the feature engines stubbed out (barrier / tape / fuel queries and
  the option-flow kernel): the difference is what the engines add to the replay core;
* ``stages``   — one end-to-end run with timers around each stage (decode, merge, state, levels,
  engines, labels, sink); the timers add a little overhead;
* ``gil``      — whether the decoder releases the GIL: its rate on a thread beside an idle, a
  Python-busy and a nogil-kernel main thread, and two CPU-bound kernels at once against one;
* ``compile``  — numba overhead of one process, cold (empty cache dir) and warm: the first use of
  every kernel minus the same work with the kernels loaded (imports timed apart).

Prints a table (and JSON with ``--json``). Figures are wall-clock seconds on this machine; they
vary with load, so ``--repeat`` keeps the best of N.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATE = "2025-12-17"
HERE = Path(__file__).resolve().parent


def ensure_lake(lake: Path, scale: str, seed: int) -> None:
    from spymaster.sources.lake import Lake
    from spymaster.synth import generate

    generate(Lake.at(lake), [DATE], scale=scale, seed=seed)


def _child(mode: str, lake: str, env_extra: dict[str, str] | None = None) -> dict:
    env = dict(os.environ)
    env.update(env_extra or {})
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", mode, "--lake", lake],
                         capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"benchmark child {mode} failed:\n{out.stderr[-4000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["process_s"] = wall  # the whole child process: interpreter start, imports, the work
    return res


def _rss_mb() -> float:
    """Peak RSS of this process (MB): VmHWM, which starts afresh at exec — unlike ru_maxrss,
    which Linux carries over from the parent that forked the benchmark child."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _files(lake: str) -> list[Path]:
    from spymaster.calendar import session_for
    from spymaster.sources.lake import ES_SCHEMAS, GLBX, OPRA, OPRA_SCHEMAS, Lake

    lk = Lake.at(lake)
    s = session_for(DATE)
    out = []
    for day in s.utc_days():
        for ds, schemas in ((GLBX, ES_SCHEMAS), (OPRA, OPRA_SCHEMAS)):
            for sch in schemas:
                p = lk.find_bronze(ds, sch, day)
                if p is not None:
                    out.append(p)
    return out


def child_decode(lake: str) -> dict:
    import databento as db  # noqa: F401  (its import is part of the process figure, not of "seconds")

    files = _files(lake)
    count = _config(lake).io.chunk_records  # the same chunk size the replay's reader uses
    t0 = time.perf_counter()
    n = 0
    for f in files:
        for arr in db.DBNStore.from_file(f).to_ndarray(count=count):
            n += arr.shape[0]
    return {"seconds": time.perf_counter() - t0, "records": n, "count": count, "rss_mb": _rss_mb()}


def _config(lake: str):
    from spymaster.config import Config

    return Config().replace(**{"io.lake": lake})


def output_digest(path: Path) -> str:
    """``<table digest>/<metadata digest>`` of a Gold file (sha256 prefixes; the metadata with
    ``code_version`` blanked): equal before and after a code change exactly when the table and
    every other metadata value are identical (a changed config parameter changes the second)."""
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    meta = json.loads(t.schema.metadata[b"spymaster"])
    meta["code_version"] = ""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, t.schema.remove_metadata()) as w:
        w.write_table(t.replace_schema_metadata(None))
    return (hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()[:12] + "/"
            + hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:12])


def child_replay(lake: str) -> dict:
    from spymaster.pipeline import Pipeline

    pipe = Pipeline(_config(lake))
    t0 = time.perf_counter()
    res = pipe.execute(DATE, force=True)
    secs = time.perf_counter() - t0
    return {"seconds": secs, "events": res.events, "touches": res.table.num_rows, "rss_mb": _rss_mb(),
            "digest": output_digest(res.path)}


def _engine_seconds(lake: str) -> dict:
    """Best of 2 replays of the session's pre-decoded, pre-merged batches through a fresh
    :class:`ReplayEngine` (the first pass also loads the kernels)."""
    from spymaster.calendar import session_from_config
    from spymaster.pipeline import Pipeline
    from spymaster.replay.engine import ReplayEngine
    from spymaster.sources.session import open_session

    cfg = _config(lake)
    inputs = open_session(Pipeline(cfg).lake, DATE, cfg)
    batches = list(Pipeline.batches(inputs))
    n = sum(len(b) for b in batches)
    best = None
    for _ in range(2):
        eng = ReplayEngine(cfg, session_from_config(DATE, cfg))
        t0 = time.perf_counter()
        for b in batches:
            eng.feed(b)
        eng.finish()
        secs = time.perf_counter() - t0
        best = secs if best is None else min(best, secs)
    return {"seconds": best, "events": n, "events_per_s": n / best, "rss_mb": _rss_mb()}


def child_engine(lake: str) -> dict:
    return _engine_seconds(lake)


def child_core(lake: str) -> dict:
    """The engine alone with the feature engines stubbed out (barrier, tape and fuel queries return
    zeros, option flow / IV / basis not applied): the replay core's own time, for the engines' share."""
    import numpy as np

    from spymaster.engines.barrier import BarrierEngine
    from spymaster.engines.fuel import FuelEngine, OptionLevels
    from spymaster.engines.tape import TapeEngine

    BarrierEngine.features = lambda self, book, lv, d, t: {
        **{k: np.zeros(len(lv)) for k in ("barrier_delta_liq", "barrier_replenishment_ratio", "wall_ratio", "churn")},
        **{k: np.zeros(len(lv), np.int64) for k in ("barrier_added", "barrier_canceled", "barrier_filled",
                                                     "depth_in_zone")},
        "barrier_state": np.full(len(lv), 5, np.int64)}
    TapeEngine.features = lambda self, tape, lv, t: {
        "tape_buy_vol": np.zeros(len(lv), np.int64), "tape_sell_vol": np.zeros(len(lv), np.int64),
        "tape_imbalance": np.zeros(len(lv)), "tape_velocity": np.zeros(len(lv)),
        "tape_sweep_direction": np.full(len(lv), 2, np.int64), "tape_sweep_notional": np.zeros(len(lv))}
    FuelEngine.apply = lambda self, batch, lo, hi: None
    FuelEngine.levels = lambda self, t: OptionLevels(int(t))
    FuelEngine.features = lambda self, lv, t: {"gamma_exposure": np.zeros(len(lv)), "fuel_call_gamma": np.zeros(len(lv)),
                                               "fuel_put_gamma": np.zeros(len(lv)),
                                               "fuel_effect": np.full(len(lv), 2, np.int8)}
    FuelEngine.volume_near = lambda self, lv, band: np.zeros(len(lv))
    return _engine_seconds(lake)


class _Timers:
    def __init__(self) -> None:
        self.t: dict[str, float] = {}

    def wrap(self, obj, attr: str, stage: str) -> None:
        fn = getattr(obj, attr)

        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.t[stage] = self.t.get(stage, 0.0) + time.perf_counter() - t0

        setattr(obj, attr, timed)

    def wrap_iter(self, it, stage: str):
        while True:
            t0 = time.perf_counter()
            try:
                x = next(it)
            except StopIteration:
                self.t[stage] = self.t.get(stage, 0.0) + time.perf_counter() - t0
                return
            self.t[stage] = self.t.get(stage, 0.0) + time.perf_counter() - t0
            yield x


def child_stages(lake: str) -> dict:
    from spymaster.calendar import session_from_config
    from spymaster.pipeline import Pipeline
    from spymaster.replay.engine import ReplayEngine
    from spymaster.replay.merge import StreamSpec, merge
    from spymaster.sinks.parquet import write_parquet
    from spymaster.sources.session import open_session
    from spymaster.touches.schema import table_from_rows

    cfg = _config(lake)
    tm = _Timers()
    t_all = time.perf_counter()
    pipe = Pipeline(cfg)
    inputs = open_session(pipe.lake, DATE, cfg)
    specs = [StreamSpec(s.kind, s.name, (lambda s=s: tm.wrap_iter(iter(s.chunks()), "decode"))) for s in inputs.streams()]
    eng = ReplayEngine(cfg, session_from_config(DATE, cfg))
    for comp, stage in ((eng.tape, "state"), (eng.book, "state"), (eng.bars1, "state"), (eng.bars2, "state"),
                        (eng.vwap, "levels"), (eng.fuel, "engines"), (eng.labels, "labels")):
        tm.wrap(comp, "apply", stage)
    tm.wrap(eng.levels, "snapshot", "levels")
    tm.wrap(eng.features, "rows", "engines")
    tm.wrap(eng.labels, "resolve", "labels")
    merged = merge(specs)
    n = 0
    t_merge = 0.0
    while True:
        t0 = time.perf_counter()
        dec0 = tm.t.get("decode", 0.0)
        try:
            batch = next(merged)
        except StopIteration:
            t_merge += time.perf_counter() - t0 - (tm.t.get("decode", 0.0) - dec0)
            break
        t_merge += time.perf_counter() - t0 - (tm.t.get("decode", 0.0) - dec0)
        n += len(batch)
        eng.feed(batch)
    rows = eng.finish()
    t0 = time.perf_counter()
    write_parquet(table_from_rows(rows), pipe.output_path(DATE), pipe.metadata(inputs, eng))
    tm.t["sink"] = time.perf_counter() - t0
    tm.t["merge"] = t_merge
    total = time.perf_counter() - t_all
    tm.t["other"] = total - sum(tm.t.values())
    return {"seconds": total, "events": n, "stages": tm.t, "rss_mb": _rss_mb()}


def child_compile(lake: str) -> dict:
    """The per-process numba overhead: open a session, read its first chunks and replay the warm-up
    slice (:func:`spymaster.replay.warmup.warm_kernels`, which uses every replay kernel) twice.
    The first round loads (warm cache) or compiles (cold cache) the kernels and initializes numba;
    the second runs them already loaded, so ``first − second`` is the overhead. Imports are timed
    apart (spymaster, numpy, pyarrow, numba itself)."""
    t0 = time.perf_counter()
    from spymaster.pipeline import Pipeline
    from spymaster.replay.warmup import warm_kernels
    from spymaster.sources.session import open_session

    t1 = time.perf_counter()
    cfg = _config(lake)

    def round_() -> float:
        t = time.perf_counter()
        inputs = open_session(Pipeline(cfg).lake, DATE, cfg)
        for s in inputs.streams():
            next(iter(s.chunks()), None)
        warm_kernels(cfg)
        return time.perf_counter() - t

    first = round_()
    second = round_()
    return {"seconds": first - second, "imports_s": t1 - t0, "first_s": first, "second_s": second,
            "scipy_loaded": "scipy.linalg" in sys.modules}


def child_gil(lake: str) -> dict:
    """Does the decoder release the GIL? The replay's reader decodes the session's MBP-10 file on a
    thread (as the reader thread does) while the main thread runs (a) nothing, (b) a pure-Python
    loop, (c) a nogil numba kernel; the decoder's rate in each, and the main thread's time with
    and without the decoder beside it. Also: two CPU-bound nogil kernels at once against one (how
    much a second core is worth on this machine)."""
    import threading

    import numba

    from spymaster.calendar import parse_date
    from spymaster.sources.dbn import read_dbn
    from spymaster.sources.lake import GLBX, Lake

    path = Lake.at(lake).find_bronze(GLBX, "mbp-10", parse_date(DATE))
    count = _config(lake).io.chunk_records

    @numba.njit(nogil=True)
    def spin(n):
        s = 0.0
        for i in range(n):
            s += (i % 7) * 0.5
        return s

    spin(10)

    def py_loop() -> None:
        s = 0
        for i in range(20_000_000):
            s += i

    def kernel() -> None:
        spin(800_000_000)

    state = {"stop": False, "n": 0}

    def decode() -> None:
        while not state["stop"]:
            for arr in read_dbn(path, "mbp-10", count):
                state["n"] += arr.shape[0]
                if state["stop"]:
                    return

    def beside(work) -> tuple[float, float]:
        state.update(stop=False, n=0)
        th = threading.Thread(target=decode)
        th.start()
        time.sleep(0.05)
        n0, t0 = state["n"], time.perf_counter()
        if work is None:
            time.sleep(1.0)
        else:
            work()
        dt = time.perf_counter() - t0
        n = state["n"] - n0
        state["stop"] = True
        th.join()
        return n / dt, dt

    out: dict = {"seconds": 0.0}
    out["decode_alone_rec_s"], _ = beside(None)
    for name, work in (("python", py_loop), ("kernel", kernel)):
        t0 = time.perf_counter()
        work()
        out[f"{name}_alone_s"] = time.perf_counter() - t0
        out[f"decode_beside_{name}_rec_s"], out[f"{name}_beside_decode_s"] = beside(work)
    ths = [threading.Thread(target=kernel) for _ in range(2)]
    t0 = time.perf_counter()
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    out["two_kernels_s"] = time.perf_counter() - t0
    return out


CHILDREN = {"decode": child_decode, "replay": child_replay, "engine": child_engine, "core": child_core,
            "stages": child_stages, "compile": child_compile, "gil": child_gil}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", default="day", choices=["demo", "day", "heavy"])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--lake", default=None, help="lake to use (default: a cache under /tmp per scale)")
    ap.add_argument("--json", default=None, help="write the figures as JSON to this file")
    ap.add_argument("--repeat", type=int, default=2, help="best of N for the timed measurements")
    ap.add_argument("--only", default=None,
                    help="comma list of measurements (compile,decode,replay,engine,core,stages,gil)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(CHILDREN[a.child](a.lake)))
        return {}
    lake = Path(a.lake or Path(tempfile.gettempdir()) / f"spymaster-bench-{a.scale}-{a.seed}")
    ensure_lake(lake, a.scale, a.seed)
    wanted = a.only.split(",") if a.only else ["compile", "decode", "replay", "engine", "core", "stages", "gil"]
    res: dict = {"scale": a.scale, "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                              "platform": platform.platform()}}
    if "compile" in wanted:
        with tempfile.TemporaryDirectory() as cold:
            res["compile_cold"] = _child("compile", str(lake), {"NUMBA_CACHE_DIR": cold})
            res["compile_warm"] = min((_child("compile", str(lake), {"NUMBA_CACHE_DIR": cold})
                                       for _ in range(a.repeat)), key=lambda r: r["seconds"])
    _child("engine", str(lake))  # warm the default numba cache
    if "gil" in wanted:
        res["gil"] = _child("gil", str(lake))
    for mode in ("decode", "replay", "engine", "core", "stages"):
        if mode in wanted:
            runs = [_child(mode, str(lake)) for _ in range(a.repeat)]
            res[mode] = min(runs, key=lambda r: r["seconds"])
            res[mode]["rss_mb_max"] = max(r["rss_mb"] for r in runs)
            res[mode]["process_s"] = min(r["process_s"] for r in runs)
    print_table(res)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))
    return res


def print_table(res: dict) -> None:
    print(f"spymaster replay benchmark — scale {res['scale']} — {res['machine']['cpus']} cpus, "
          f"Python {res['machine']['python']}")
    if "compile_cold" in res:
        cold, warm = res["compile_cold"], res["compile_warm"]
        print(f"  numba compile, cold cache      {cold['seconds']:8.2f} s (first use of every kernel − the same "
              f"work loaded; imports {cold['imports_s']:.2f} s apart)")
        print(f"  numba compile, warm cache      {warm['seconds']:8.2f} s (cache loads + numba's first-use set-up"
              f"{', which imports scipy.linalg when scipy is installed' if warm['scipy_loaded'] else ''}; "
              f"imports {warm['imports_s']:.2f} s apart)")
    dec = res.get("decode")
    if dec:
        print(f"  decode only (count={dec['count']:,})     {dec['seconds']:8.2f} s   {dec['records']:>10,} records "
              f"({dec['records'] / dec['seconds'] / 1e6:.2f} M rec/s)   peak RSS {dec['rss_mb_max']:.0f} MB")
    rep = res.get("replay")
    if rep:
        ratio = f"{rep['seconds'] / dec['seconds']:.2f}x decode" if dec else ""
        print(f"  end to end                     {rep['seconds']:8.2f} s   {rep['events'] / rep['seconds'] / 1e6:.2f} M "
              f"events/s   {rep['touches']} touches   {ratio}   peak RSS {rep['rss_mb_max']:.0f} MB")
        print(f"  output digest (table / metadata but code_version): {rep['digest']}")
    if dec and rep:
        print(f"  whole processes (start-up, imports, work): decode {dec['process_s']:.2f} s, "
              f"end to end {rep['process_s']:.2f} s ({rep['process_s'] / dec['process_s']:.2f}x)")
    eng = res.get("engine")
    if eng:
        print(f"  engine only (pre-decoded)      {eng['seconds']:8.2f} s   {eng['events_per_s'] / 1e6:.2f} M events/s")
    core = res.get("core")
    if core and eng:
        extra = eng["seconds"] - core["seconds"]
        base = (rep["seconds"] if rep else eng["seconds"]) - extra
        print(f"  replay core without engines    {core['seconds']:8.2f} s   feature engines add {extra:.2f} s = "
              f"{100 * extra / base:.0f} % of the replay-core time{' (end to end)' if rep else ''}")
    g = res.get("gil")
    if g:
        print(f"  decoder on a thread (MBP-10)   {g['decode_alone_rec_s'] / 1e6:.2f} M rec/s alone; "
              f"{g['decode_beside_python_rec_s'] / 1e6:.2f} M beside a Python main thread "
              f"(which takes {g['python_alone_s']:.2f} -> {g['python_beside_decode_s']:.2f} s); "
              f"{g['decode_beside_kernel_rec_s'] / 1e6:.2f} M beside a nogil kernel "
              f"({g['kernel_alone_s']:.2f} -> {g['kernel_beside_decode_s']:.2f} s)")
        print(f"  two nogil kernels at once      {g['two_kernels_s']:.2f} s against {g['kernel_alone_s']:.2f} s for one "
              f"(the second core is worth {2 * g['kernel_alone_s'] / g['two_kernels_s'] - 1:.2f} of one)")
    st = res.get("stages")
    if st:
        print(f"  stages (timed run {st['seconds']:.2f} s):")
        for k, v in sorted(st["stages"].items(), key=lambda kv: -kv[1]):
            print(f"    {k:<12} {v:8.3f} s  {100 * v / st['seconds']:5.1f} %")


if __name__ == "__main__":
    main()
