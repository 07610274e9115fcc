"""Stopping ``spymaster live``: SIGTERM stops it cleanly and flushes everything (in process, and the
command as a process); after a crash (SIGKILL) every flushed part is readable and a rerun finishes
the day."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import livemarket
from bronze import D
from gateway import TEST_KEY, Behavior, Gateway, feeds_from_lake, run_live
from spymaster.cli import cli
from spymaster.cli.live import LiveRunner
from spymaster.config import Config
from spymaster.pipeline import Pipeline
from spymaster.sinks.parts import part_files, read_parts
from spymaster.sources.lake import Lake

DATE = D.isoformat()
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def morning(tmp_path_factory):
    lake = livemarket.write_lake(Lake.at(tmp_path_factory.mktemp("morning_cli") / "lake"))
    ref = Pipeline(Config().replace(**{"io.lake": str(lake.root)})).execute(DATE, force=True)
    return lake, ref, feeds_from_lake(lake, DATE)


def start_live(gw: Gateway, out: Path, tmp_path: Path) -> subprocess.Popen:
    cfg = tmp_path / "live.toml"
    cfg.write_text("[live]\nflush_rows = 1\nflush_seconds = 3600.0\n")
    env = dict(os.environ, DATABENTO_API_KEY=TEST_KEY, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "spymaster", "--log-json", "live", "--gateway", "127.0.0.1",
                             "--port", str(gw.port), "--date", DATE, "--lake", str(out), "--config", str(cfg)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(cond, timeout: float, what: str, proc: subprocess.Popen) -> None:
    t0 = time.monotonic()
    while not cond():
        if proc.poll() is not None:
            raise AssertionError(f"spymaster live exited early ({proc.returncode}): {proc.stderr.read()[-3000:]}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def settled_parts(directory: Path, proc: subprocess.Popen, quiet_s: float = 1.5) -> int:
    """Wait until the number of part files stops changing for ``quiet_s``; returns it."""
    last, since = -1, time.monotonic()
    while time.monotonic() - since < quiet_s:
        n = len(part_files(directory))
        if n != last:
            last, since = n, time.monotonic()
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    return last


def all_sent(gw: Gateway, feeds) -> bool:
    return all(gw.sent.get(ds, 0) >= f.records for ds, f in feeds.items())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_stops_the_runner_cleanly_and_flushes_pending_touches_incomplete(morning, tmp_path, monkeypatch, sig):
    lake, ref, feeds = morning
    monkeypatch.setenv("DATABENTO_API_KEY", TEST_KEY)
    hold = threading.Event()
    out = tmp_path / "out"
    cfg = Config().replace(**{"io.lake": str(out), "live.flush_rows": 5})
    before = signal.getsignal(sig)
    with Gateway(feeds, behaviors={ds: Behavior(hold=hold) for ds in feeds}) as gw:
        runner = LiveRunner(cfg, DATE, gateway="127.0.0.1", port=gw.port, install_signals=True)

        def terminate_when_fed() -> None:
            t0 = time.monotonic()
            while time.monotonic() - t0 < 60 and any(runner.decoders[ds].records < f.records for ds, f in feeds.items()):
                time.sleep(0.02)
            time.sleep(0.3)
            os.kill(os.getpid(), sig)

        killer = threading.Thread(target=terminate_when_fed, daemon=True)
        killer.start()
        try:
            res = runner.run()                                  # the handler runs in this (main) thread
        finally:
            hold.set()
            killer.join(5)
    assert res.stopped_by == "signal" and res.gold_path is None
    assert signal.getsignal(sig) is before and runner.merger.buffered == 0
    rows = read_parts(runner.sink.directory)
    assert rows.num_rows == ref.table.num_rows                  # every touch, the pending ones incomplete
    assert sorted(rows.column("label_complete").to_pylist()) == sorted(ref.table.column("label_complete").to_pylist())
    assert not Lake.at(out).gold_path(DATE).exists()            # a stopped day is not compacted ...
    res = CliRunner().invoke(cli, ["live", "--date", DATE, "--lake", str(out), "--compact"])
    assert res.exit_code == 0, res.output                       # ... until asked to
    gold = pq.read_table(Lake.at(out).gold_path(DATE)).replace_schema_metadata(None)
    assert gold.equals(pq.read_table(ref.path).replace_schema_metadata(None))


@pytest.mark.slow
def test_sigterm_stops_the_command_cleanly_and_flushes_pending_touches_incomplete(morning, tmp_path):
    lake, ref, feeds = morning
    hold = threading.Event()
    out = tmp_path / "out"
    parts_dir = Lake.at(out).live_parts_dir(DATE)
    with Gateway(feeds, behaviors={ds: Behavior(hold=hold) for ds in feeds}) as gw:
        proc = start_live(gw, out, tmp_path)
        try:
            wait_for(lambda: all_sent(gw, feeds), 120, "the gateway to send the feed", proc)
            wait_for(lambda: len(part_files(parts_dir)) > 0, 60, "a first part file", proc)
            settled_parts(parts_dir, proc)
            mid = read_parts(parts_dir)                      # readable mid-session
            assert mid.num_rows > 0 and all(mid.column("label_complete").to_pylist())
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        finally:
            hold.set()
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert "live_signal" in err and "SIGTERM" in err
    assert not Lake.at(out).gold_path(DATE).exists()         # a stopped day is not compacted
    rows = read_parts(parts_dir)
    ref_t = ref.table
    assert rows.num_rows == ref_t.num_rows                    # every touch, the pending ones incomplete
    assert sorted(rows.column("label_complete").to_pylist()) == sorted(ref_t.column("label_complete").to_pylist())
    res = CliRunner().invoke(cli, ["live", "--date", DATE, "--lake", str(out), "--compact"])
    assert res.exit_code == 0, res.output
    gold = pq.read_table(Lake.at(out).gold_path(DATE)).replace_schema_metadata(None)
    assert gold.equals(pq.read_table(ref.path).replace_schema_metadata(None))


def test_after_a_crash_flushed_parts_are_readable_and_a_rerun_finishes_the_day(morning, tmp_path, monkeypatch):
    lake, ref, feeds = morning
    hold = threading.Event()
    out = tmp_path / "out"
    parts_dir = Lake.at(out).live_parts_dir(DATE)
    with Gateway(feeds, behaviors={ds: Behavior(hold=hold) for ds in feeds}) as gw:
        proc = start_live(gw, out, tmp_path)
        try:
            wait_for(lambda: len(part_files(parts_dir)) >= 3, 120, "three part files", proc)
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
        finally:
            hold.set()
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == -signal.SIGKILL
    crashed = read_parts(parts_dir)                           # every flushed part is a complete file
    assert crashed.num_rows >= 3
    assert not Lake.at(out).gold_path(DATE).exists()
    ref_rows = {r["event_id"]: r for r in ref.table.to_pylist()}
    assert all(ref_rows[r["event_id"]] == r for r in crashed.to_pylist())
    # the rerun replays the session again; compaction keeps each touch once
    monkeypatch.setenv("DATABENTO_API_KEY", TEST_KEY)
    runner, res, _ = run_live(Config().replace(**{"io.lake": str(out)}), DATE, feeds)
    assert res.stopped_by == "end_of_stream" and runner.sink.run == 2
    gold = pq.read_table(res.gold_path).replace_schema_metadata(None)
    assert gold.equals(pq.read_table(ref.path).replace_schema_metadata(None))
