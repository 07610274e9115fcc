"""``spymaster debug`` driven through stdin (click's CliRunner), on the small lake of test_debug.py."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from test_debug import DATE, rows_by_id, small_config, small_reference  # noqa: F401  (fixtures)
from spymaster.cli import cli, main
from spymaster.debug import views
from spymaster.debug.stepper import Stepper
from spymaster.touches.schema import LABEL_COLUMNS


def run(config, script: str, *extra: str):
    return CliRunner().invoke(cli, ["debug", "--date", DATE, "--lake", config.io.lake, *extra], input=script)


def blocks(output: str) -> dict[str, list[str]]:
    """Output lines after each echoed command, keyed by the command (later repeats win)."""
    out: dict[str, list[str]] = {}
    cur = None
    for line in output.splitlines():
        if line.startswith("> "):
            cur = line[2:]
            out[cur] = []
        elif cur is not None:
            out[cur].append(line)
    return out


def test_scripted_session_echoes_commands_without_prompts(small_config):
    res = run(small_config, "step 2\nbook\nuntil 09:40\nlevels\ntape\nfuel\nbar\nwhere\n")
    assert res.exit_code == 0, res.stdout
    assert "(spymaster" not in res.stdout           # no prompt noise when stdin is not a terminal
    b = blocks(res.stdout)
    assert list(b) == ["step 2", "book", "until 09:40", "levels", "tape", "fuel", "bar", "where"]
    assert b["until 09:40"][-2] == "reached 09:40:00.000000000 ET"
    assert any("levels testable on the bar starting 09:40:00 ET" in ln for ln in b["levels"])
    assert any("basis" in ln for ln in b["fuel"])
    assert res.stdout.splitlines()[0].startswith(f"spymaster debug {DATE}: session")


def test_touch_output_at_a_breakpoint_equals_the_replay_row_with_labels_pending(small_config, small_reference):
    ref = rows_by_id(small_reference)
    res = run(small_config, "break ROUND\ncontinue\ntouch\n")
    assert res.exit_code == 0, res.stdout
    body = blocks(res.stdout)["touch"]
    event_id = body[0].split(": ", 1)[1].split(" — ")[0]
    row = ref[event_id]
    assert row["level_kind"] == "ROUND" and "labels pending" in body[0]
    st = Stepper.open(small_config, DATE)     # only for formatting (session, config)
    assert body[1:] == views.touch_columns(dict(row, **{c: None for c in LABEL_COLUMNS}), st)


def test_touch_output_after_the_label_horizon_equals_the_whole_replay_row(small_config, small_reference):
    ref = rows_by_id(small_reference)
    res = run(small_config, "next touch\ntouch\nuntil 10:45\ntouch #1\n")
    assert res.exit_code == 0, res.stdout
    body = blocks(res.stdout)["touch #1"]
    event_id = body[0].split(": ", 1)[1].split(" — ")[0]
    assert "labels complete" in body[0]
    st = Stepper.open(small_config, DATE)
    assert body[1:] == views.touch_columns(ref[event_id], st)


def test_a_failing_command_makes_the_scripted_exit_code_1(small_config):
    res = run(small_config, "step\nfrobnicate\nstep\n")
    assert res.exit_code == 1
    b = blocks(res.stdout)
    assert b["frobnicate"] == ["error: unknown command 'frobnicate' (type 'help')"]
    assert res.stdout.count("\n> step\n") == 2        # the script went on after the error


def test_break_option_sets_breakpoints_before_the_script(small_config, small_reference):
    first_vwap = min(r["ts_event_ns"] for r in small_reference.to_pylist() if r["level_kind"] == "VWAP")
    res = run(small_config, "continue\nbreak\n", "--break", "VWAP")
    assert res.exit_code == 0, res.stdout
    assert "breakpoint 1: touch of kind VWAP" in res.stdout
    st = Stepper.open(small_config, DATE)
    assert f"stopped at {views.fmt_clock(first_vwap, st.session)}: breakpoint 1 (touch of kind VWAP)" in res.stdout


def test_continue_to_the_end_reports_the_finished_replay(small_config, small_reference):
    res = run(small_config, "continue\ntouches 3\n")
    assert res.exit_code == 0, res.stdout
    n = small_reference.num_rows
    assert f"end of data: replay finished — {n} touches" in res.stdout
    assert f"{n} touches so far (the last 3):" in res.stdout


def test_a_date_without_inputs_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["debug", "--date", DATE, "--lake", str(tmp_path / "empty")])
    assert exc.value.code != 0
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


@pytest.mark.skipif(not hasattr(__import__("os"), "openpty"), reason="needs a pseudo-terminal")
def test_on_a_terminal_it_prompts_with_the_time_and_keeps_a_readline_history(small_config, tmp_path):
    import os
    import subprocess
    import sys

    master, slave = os.openpty()
    env = dict(os.environ, HOME=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "spymaster", "debug", "--date", DATE, "--lake", small_config.io.lake],
                            stdin=slave, stdout=slave, stderr=subprocess.DEVNULL, env=env, close_fds=True)
    os.close(slave)
    os.write(master, b"step\n\nquit\n")          # an empty line repeats the last move
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:                          # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=120) == 0
    text = out.decode("utf-8", "replace")
    assert "(spymaster start) " in text
    assert "(spymaster 2025-12-16 18:00:00.000) " in text          # the prompt shows the state's time
    assert "#2 " in text and "> step" not in text                  # the empty line stepped again; no echo
    history = (tmp_path / ".spymaster_debug_history").read_text()
    assert "step" in history and "quit" in history
