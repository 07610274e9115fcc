"""Batch runs over a small synthetic lake (spymaster.batch.run, ``spymaster batch``).

One module-scoped lake holds two synthetic ``demo`` dates; the first serial batch's Gold files
are the reference every other executor must reproduce byte for byte. Tests that change the
lake put it back as they found it (outputs equal to the reference, Bronze files restored).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spymaster.batch import run as br
from spymaster.batch.dates import READY, plan_date
from spymaster.config import Config
from spymaster.sources.lake import GLBX, Lake

DATES = ["2025-12-16", "2025-12-17"]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def synth_lake(tmp_path_factory) -> Lake:
    from spymaster.synth import generate

    lake = Lake.at(tmp_path_factory.mktemp("batch") / "lake")
    generate(lake, DATES, scale="demo", seed=7)
    return lake


@pytest.fixture(scope="module")
def cfg(synth_lake) -> Config:
    return Config().replace(**{"io.lake": str(synth_lake.root)})


@pytest.fixture(scope="module")
def serial_report(synth_lake, cfg) -> br.BatchReport:
    """The serial batch of both dates (this also warms the numba on-disk cache)."""
    report = br.run_batch(cfg, dates=DATES)
    assert [r.status for r in report.results] == [br.DONE, br.DONE], [r.error for r in report.results]
    return report


@pytest.fixture(scope="module")
def reference(synth_lake, serial_report) -> dict[str, bytes]:
    return {d: synth_lake.gold_path(d).read_bytes() for d in DATES}


@pytest.fixture(autouse=True)
def _reference_state(request):
    """Every test starts from the reference Gold files (tests that replay in other processes may
    leave files with another ``code_version`` when the checkout changes under them)."""
    yield
    if "reference" in request.fixturenames:
        lake, ref = request.getfixturevalue("synth_lake"), request.getfixturevalue("reference")
        for d, data in ref.items():
            p = lake.gold_path(d)
            if not p.exists() or p.read_bytes() != data:
                p.write_bytes(data)


def outputs(lake: Lake) -> dict[str, bytes]:
    return {d: lake.gold_path(d).read_bytes() for d in DATES}


def assert_same_outputs(lake: Lake, reference: dict[str, bytes]) -> None:
    """Byte-identical Gold files, unless the package's sources changed while the test ran.

    Other work on the same checkout can edit ``spymaster/*.py`` between two runs; the files then
    differ in their ``code_version`` only. That case (and only when a fresh hash of the sources
    proves the code changed) is accepted if the tables and every other metadata field are equal.
    """
    from spymaster.pipeline import code_version

    got = outputs(lake)
    if got == reference:
        return
    for d in DATES:
        if got[d] == reference[d]:
            continue
        a = pq.read_table(pa.BufferReader(reference[d]))
        b = pq.read_table(pa.BufferReader(got[d]))
        ma, mb = (json.loads(t.schema.metadata[b"spymaster"]) for t in (a, b))
        changed = ma.pop("code_version") != mb.pop("code_version") and code_version.__wrapped__() != code_version()
        assert changed, f"{d}: the Gold file differs from the reference run"
        assert ma == mb and a.equals(b), f"{d}: the Gold file differs from the reference run (beyond code_version)"


def test_batch_replays_every_available_date(synth_lake, reference):
    assert set(reference) == set(DATES)
    for d in DATES:
        t = pq.read_table(synth_lake.gold_path(d))
        assert t.num_rows > 0 and set(t.column("date").to_pylist()) == {d}


def test_default_batch_considers_the_lake_dates_and_skips_existing_outputs(cfg, reference):
    report = br.run_batch(cfg)
    assert report.results == []
    reasons = {p.iso: p.reason for p in report.plans}
    for d in DATES:
        assert reasons[d].startswith("output exists:")
    assert "0 done" in report.summary_line() and "0 failed" in report.summary_line()


def test_rerun_does_only_the_missing_dates(synth_lake, cfg, reference):
    synth_lake.gold_path(DATES[0]).unlink()
    report = br.run_batch(cfg, dates=DATES)
    assert [(r.date, r.status) for r in report.results] == [(DATES[0], br.DONE)]
    assert [p.iso for p in report.plans if not p.runs] == [DATES[1]]
    assert outputs(synth_lake) == reference


def test_process_workers_equal_the_serial_run_byte_for_byte(synth_lake, cfg, reference):
    report = br.run_batch(cfg, dates=DATES, force=True, workers=2)
    assert [r.status for r in report.results] == [br.DONE, br.DONE]
    assert len({r.worker for r in report.results}) == 2 and br._worker_id() not in {r.worker for r in report.results}
    assert_same_outputs(synth_lake, reference)
    # the workers loaded every kernel from the on-disk cache the serial run warmed: no recompiles
    assert [r.compiled for r in report.results] == [0, 0] and report.compiled == 0


def test_dask_local_cluster_equals_the_local_run_byte_for_byte(synth_lake, cfg, reference):
    report = br.run_batch(cfg, dates=DATES, force=True, workers=2, scheduler="local")
    assert [r.status for r in report.results] == [br.DONE, br.DONE], [r.error for r in report.results]
    assert all(r.worker.split(":")[-1] != str(os.getpid()) for r in report.results)
    assert [r.compiled for r in report.results] == [0, 0]
    assert_same_outputs(synth_lake, reference)


def test_dask_scheduler_address_equals_the_local_run_byte_for_byte(synth_lake, cfg, reference):
    """A running cluster given by address (threads-only here, so it starts in a second)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        report = br.run_batch(cfg, dates=DATES, force=True, scheduler=cluster.scheduler_address)
    assert [r.status for r in report.results] == [br.DONE, br.DONE], [r.error for r in report.results]
    assert outputs(synth_lake) == reference


def test_unreachable_dask_scheduler_is_a_clear_error(cfg, reference, monkeypatch):
    from spymaster.errors import SpymasterError

    monkeypatch.setattr(br, "DASK_CONNECT_TIMEOUT_S", 2)
    with pytest.raises(SpymasterError, match="cannot reach the Dask scheduler"):
        br.run_batch(cfg, dates=DATES, force=True, scheduler="tcp://127.0.0.1:9")


def test_per_date_task_is_plain_picklable_data(cfg):
    task = br.make_tasks([plan_date(Lake.at(cfg.io.lake), DATES[0], cfg, force=True)], cfg, force=True)[0]
    assert pickle.loads(pickle.dumps(task)) == task
    assert pickle.loads(pickle.dumps(br.run_date)) is br.run_date      # pickled by reference
    assert Config.from_mapping(json.loads(json.dumps(task.config))) == cfg   # JSON / TOML-able


def test_one_failing_date_does_not_stop_the_others(synth_lake, cfg, reference, capsys):
    from structlog.testing import capture_logs

    from spymaster import logs
    from spymaster.cli import main

    bad = synth_lake.find_bronze(GLBX, "mbp-10", dt.date.fromisoformat(DATES[1]))
    original = bad.read_bytes()
    try:
        bad.write_bytes(original[: len(original) // 3])          # a truncated download
        capsys.readouterr()
        logs.configure(json=True, level="info")                  # what --log-json asks for: no reconfiguration
        with capture_logs() as events, pytest.raises(SystemExit) as ei:
            main(["--log-json", "batch", "--lake", str(synth_lake.root), "--dates", ",".join(DATES), "--force",
                  "--no-progress"])
        assert ei.value.code != 0
        out = capsys.readouterr()
        assert "batch: 1 done, 0 skipped, 1 failed" in out.out
        failed = [e for e in events if e.get("event") == "date_failed"]
        assert [e["date"] for e in failed] == [DATES[1]]
        assert bad.name in failed[0]["error"] and failed[0]["error_type"].endswith("Error")
        assert f"failed {DATES[1]}: " in out.err and bad.name in out.err
        done = [e for e in events if e.get("event") == "date_finished"]
        assert [(e["date"], e["status"]) for e in done] == [(DATES[0], br.DONE)]
    finally:
        bad.write_bytes(original)
    assert outputs(synth_lake) == reference      # the forced rewrite that failed left the old file


def test_batch_cli_prints_the_final_line_and_aggregates(synth_lake, reference, capsys):
    from spymaster.cli import main

    main(["batch", "--lake", str(synth_lake.root), "--dates", ",".join(DATES), "--aggregate", "--no-progress"])
    out = capsys.readouterr().out
    assert "batch: 0 done, 2 skipped, 0 failed; 0 touches written" in out and "events/s" in out
    rows = sum(pq.read_metadata(synth_lake.gold_path(d)).num_rows for d in DATES)
    t = pq.read_table(synth_lake.multi_day_path)
    assert t.num_rows == rows and f"2 dates (2025-12-16 .. 2025-12-17), {rows:,} rows" in out
    assert t.column("date").to_pylist() == sorted(t.column("date").to_pylist())
    assert t.schema.remove_metadata().equals(pq.read_schema(synth_lake.gold_path(DATES[0])).remove_metadata())


def test_touches_and_events_are_counted(synth_lake, serial_report):
    rows = sum(pq.read_metadata(synth_lake.gold_path(d)).num_rows for d in DATES)
    assert serial_report.touches == rows
    meta = [json.loads(pq.read_schema(synth_lake.gold_path(d)).metadata[b"spymaster"]) for d in DATES]
    assert serial_report.events == sum(sum(m["events"].values()) for m in meta) > 0
    line = serial_report.summary_line()
    assert line.startswith("batch: 2 done, ") and f"{rows:,} touches written" in line
    assert f"{serial_report.events:,} events in " in line


KILL_SCRIPT = textwrap.dedent("""
    import os, sys, time
    import pyarrow as pa
    import pyarrow.parquet as pq
    from spymaster.config import Config
    from spymaster.pipeline import Pipeline

    lake, marker, date = sys.argv[1:4]
    real_write = pq.write_table

    def stalled_write(table, where, **kw):
        # write half of the real file's bytes, tell the test, and hang there until killed
        buf = pa.BufferOutputStream()
        real_write(table, buf, **kw)
        data = buf.getvalue().to_pybytes()
        with open(where, "wb") as f:
            f.write(data[: len(data) // 2])
            f.flush()
            os.fsync(f.fileno())
        open(marker, "w").close()
        time.sleep(600)

    pq.write_table = stalled_write
    Pipeline(Config().replace(**{"io.lake": lake})).execute(date, force=True)
""")


def test_kill_9_mid_write_leaves_no_complete_looking_file(synth_lake, cfg, reference, tmp_path):
    day = DATES[1]
    out = synth_lake.gold_path(day)
    out.unlink()
    marker = tmp_path / "writing"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(synth_lake.root), str(marker), day],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the replay never reached the write"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    partial = list(out.parent.glob(f".{out.name}.tmp-*"))
    assert len(partial) == 1 and partial[0].stat().st_size > 0       # the half-written temporary
    assert not out.exists()
    with pytest.raises(Exception):
        pq.ParquetFile(partial[0])                                    # and it is not a valid Parquet file
    from spymaster.sinks.aggregate import per_date_files
    assert day not in [d.isoformat() for d, _ in per_date_files(synth_lake.gold_dir)]
    assert plan_date(synth_lake, day, cfg).kind == READY                 # the batch sees the date as not done

    report = br.run_batch(cfg, dates=DATES)
    assert [(r.date, r.status) for r in report.results] == [(day, br.DONE)]
    assert_same_outputs(synth_lake, reference)                        # the rerun gives the same bytes
    assert not list(out.parent.glob(f".{out.name}.tmp-*"))            # and removed the stale temporary


def test_python_m_spymaster_batch_entry_point(synth_lake, reference):
    res = subprocess.run([sys.executable, "-m", "spymaster.batch", "--dry-run", "--lake", str(synth_lake.root)],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    for d in DATES:
        assert f"{d}  skip  output exists:" in res.stdout


# ------------------------------------------------------------------ worker deaths (no replay needed)
def dies_on_second_date(task: br.DateTask) -> br.DateResult:
    """A per-date function whose worker process is killed on 2025-12-17 (a stand-in for an OOM kill)."""
    if task.date == "2025-12-17":
        os.kill(os.getpid(), signal.SIGKILL)
    return br.DateResult(task.date, br.DONE, touches=1, events=10, worker=br._worker_id())


def test_a_killed_worker_fails_only_its_date():
    tasks = [br.DateTask(d, Config().to_dict()) for d in ["2025-12-15", "2025-12-16", "2025-12-17", "2025-12-18"]]
    seen = []
    results = br.execute(tasks, workers=2, fn=dies_on_second_date, on_result=seen.append)
    assert [r.date for r in results] == [t.date for t in tasks]
    status = {r.date: r.status for r in results}
    assert status == {"2025-12-15": br.DONE, "2025-12-16": br.DONE, "2025-12-17": br.FAILED, "2025-12-18": br.DONE}
    dead = next(r for r in results if r.status == br.FAILED)
    assert dead.error.startswith(br.WORKER_DIED) and dead.error.endswith(f"exit code {-signal.SIGKILL}")
    assert sorted(r.date for r in seen) == sorted(t.date for t in tasks)   # every date reported exactly once


# ------------------------------------------------------------------ slow
@pytest.mark.slow
def test_kill_9_of_a_running_batch_then_rerun_finishes_the_work(synth_lake, cfg, reference):
    for d in DATES:
        synth_lake.gold_path(d).unlink()
    proc = subprocess.Popen([sys.executable, "-m", "spymaster.batch", "--lake", str(synth_lake.root), "--dates",
                             ",".join(DATES), "--workers", "2", "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not any(synth_lake.gold_path(d).exists() for d in DATES) and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)        # the batch and its workers, wherever they are
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    for d in DATES:                                 # whatever looks complete is complete and correct
        p = synth_lake.gold_path(d)
        if p.exists():
            pq.read_table(p)                        # readable: a complete file
    missing = [d for d in DATES if not synth_lake.gold_path(d).exists()]
    report = br.run_batch(cfg, dates=DATES)
    assert sorted(r.date for r in report.results) == missing
    assert_same_outputs(synth_lake, reference)


@pytest.mark.slow
def test_compiled_kernels_counts_compilations_with_a_cold_cache(synth_lake, cfg, reference, tmp_path):
    """With an empty NUMBA_CACHE_DIR the first process compiles; the next one loads everything."""
    code = textwrap.dedent("""
        import sys
        from spymaster.batch.run import DateTask, run_date
        from spymaster.config import Config
        cfg = Config().replace(**{"io.lake": sys.argv[1]})
        r = run_date(DateTask(sys.argv[2], cfg.to_dict(), force=True))
        assert r.status == "done", r.error
        print("COMPILED", r.compiled)
    """)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    counts = []
    for _ in range(2):
        res = subprocess.run([sys.executable, "-c", code, str(synth_lake.root), DATES[0]], capture_output=True,
                             text=True, env=env, timeout=1200)
        assert res.returncode == 0, res.stderr[-3000:]
        counts.append(int(res.stdout.split("COMPILED")[1].split()[0]))
    assert counts[0] > 0 and counts[1] == 0
    assert_same_outputs(synth_lake, reference)


def test_workers_that_cannot_start_fail_their_dates_without_hanging():
    """A per-date function the worker cannot import (here: a module only the parent has)."""
    import types

    mod = types.ModuleType("spymaster_parent_only")
    exec("def fn(task):\n    raise AssertionError('never runs')\n", mod.__dict__)
    sys.modules[mod.__name__] = mod
    try:
        tasks = [br.DateTask(d, Config().to_dict()) for d in ["2025-12-15", "2025-12-16", "2025-12-17"]]
        results = br.run_processes(tasks, 2, fn=mod.fn)
    finally:
        del sys.modules[mod.__name__]
    assert [r.status for r in results] == [br.FAILED] * 3
    assert all(r.error.startswith((br.WORKER_DIED, br.WORKER_GONE)) for r in results)
