"""``spymaster synth``: writes the lake, prints a summary, skips non-trading days, refuses bad input."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner

from spymaster.cli import cli
from spymaster.sources.lake import GLBX, OPRA, Lake


@pytest.fixture(autouse=True)
def _restore_logging():
    """The CLI configures structlog onto the runner's temporary stderr; put it back afterwards so
    later tests in the session do not log into a closed stream."""
    import structlog

    from spymaster import logs

    saved, key = structlog.get_config(), dict(logs._CONFIGURED)
    yield
    structlog.configure(**saved)
    logs._CONFIGURED.clear()
    logs._CONFIGURED.update(key)


def _run(*args):
    return CliRunner().invoke(cli, ["synth", *args], catch_exceptions=False)


def test_synth_command_writes_the_sessions_and_skips_weekend_days(tmp_path):
    lake = tmp_path / "lake"
    res = _run("--lake", str(lake), "--dates", "2025-12-20..2025-12-22", "--seed", "3",
               "--scenario", "pull:at=10:14,price=6800,side=ask", "--parquet-options")
    assert res.exit_code == 0, res.output
    out = res.output
    assert "2025-12-22: front ESH6" in out and "ES trades" in out and "option trades" in out
    assert "2025-12-20: skipped (not an XNYS trading day: weekend)" in out
    assert "scenario Pull at 2025-12-22 10:14:00 ET price 6800.0" in out
    lk = Lake.at(lake)
    for u in (dt.date(2025, 12, 21), dt.date(2025, 12, 22)):  # the Monday session opens Sunday 18:00 ET
        for schema in ("definition", "trades", "mbp-10"):
            assert lk.find_bronze(GLBX, schema, u) is not None
    assert lk.find_bronze(OPRA, "trades", dt.date(2025, 12, 22)) is not None
    assert list(lk.options_parquet_dir(dt.date(2025, 12, 22)).glob("*.parquet"))
    again = _run("--lake", str(lake), "--dates", "2025-12-22", "--seed", "3",
                 "--scenario", "pull:at=10:14,price=6800,side=ask")
    assert "already generated" in again.output


def test_synth_command_reports_bad_scenarios_as_one_line_errors(tmp_path):
    from spymaster.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["synth", "--lake", str(tmp_path / "l"), "--dates", "2025-12-22", "--scenario", "wobble:at=10:00"])
    assert exc.value.code == 2
