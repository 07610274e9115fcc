"""The debugger on the synthetic demo day: what it shows at a touch is the row replay writes, and
stepping the day in any way finishes with replay's table."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from conftest import DEMO_DATE
from spymaster.calendar import NS
from spymaster.cli import cli
from spymaster.debug import views
from spymaster.debug.stepper import Stepper
from spymaster.pipeline import Pipeline
from spymaster.touches.schema import FEATURE_COLUMNS, LABEL_COLUMNS


@pytest.fixture(scope="module")
def demo_reference(demo_config) -> pa.Table:
    res = Pipeline(demo_config).execute(DEMO_DATE, write=False)
    assert res.table.num_rows > 20
    return res.table


def _by_id(table: pa.Table) -> dict[str, dict]:
    return {r["event_id"]: r for r in table.to_pylist()}


def test_demo_touch_rows_at_their_bar_close_equal_replay_rows_and_labels_follow_after_the_horizon(
        demo_config, demo_reference):
    ref = _by_id(demo_reference)
    st = Stepper.open(demo_config, DEMO_DATE)
    horizon = int(demo_config.labels.label_horizon_s * NS)
    stopped = 0
    while not st.finished:
        stop = st.next_touch()
        for row in stop.matched:
            want = ref[row["event_id"]]
            assert {c: row[c] for c in FEATURE_COLUMNS} == {c: want[c] for c in FEATURE_COLUMNS}
            if not st.finished:
                assert st.now_ns == row["ts_event_ns"]
                assert all(row[c] is None for c in LABEL_COLUMNS)      # not known yet at t
        # every touch whose horizon has passed carries replay's labels already
        if not st.finished:
            for row in st.touches:
                if row["ts_event_ns"] + horizon < st.reached_ns:
                    assert row == ref[row["event_id"]]
        stopped += bool(stop.matched)
    assert stopped > 10
    assert sorted(r["event_id"] for r in st.touches) == sorted(ref)
    assert all(row == ref[row["event_id"]] for row in st.touches)
    assert st.table.equals(demo_reference)


def test_demo_stepping_in_mixed_step_sizes_gives_the_replay_table(demo_config, demo_reference):
    st = Stepper.open(demo_config, DEMO_DATE)
    st.add_break("PM_HIGH")
    st.add_break("12:00")
    rng = np.random.default_rng(5)
    while not st.finished:
        op = int(rng.integers(0, 5))
        if op == 0:
            st.step(int(rng.integers(1, 5)))
        elif op == 1:
            st.step(int(rng.integers(1_000, 200_000)))
        elif op == 2:
            st.until((st.reached_ns or st.session.start_ns) + int(rng.integers(1, 900)) * NS)
        elif op == 3:
            st.next_touch("ROUND" if rng.random() < 0.5 else None)
        else:
            st.cont()
    assert st.finish().equals(demo_reference)


def test_demo_cli_touch_output_equals_the_replay_row(demo_config, demo_reference):
    ref = _by_id(demo_reference)
    script = "next touch\ntouch\nnext touch\nnext touch\ntouch\ncontinue\ntouch #1\n"
    res = CliRunner().invoke(cli, ["debug", "--date", DEMO_DATE, "--lake", demo_config.io.lake], input=script)
    assert res.exit_code == 0, res.stdout
    st = Stepper.open(demo_config, DEMO_DATE)          # for formatting only
    blocks = res.stdout.split("\n> ")
    touch_blocks = [b.splitlines() for b in blocks if b.startswith("touch")]
    assert len(touch_blocks) == 3
    for k, body in enumerate(touch_blocks):
        event_id = body[1].split(": ", 1)[1].split(" — ")[0]
        row = ref[event_id]
        if k < 2:   # at the stop: labels not resolved yet
            assert "labels pending" in body[1]
            row = dict(row, **{c: None for c in LABEL_COLUMNS})
        assert body[2:] == views.touch_columns(row, st)
