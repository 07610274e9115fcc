"""Which dates a batch runs and why the others are skipped (spymaster.batch.dates, ``batch --dry-run``).

Presence is all the planner checks (except a missing GLBX definition file, which is allowed when
the day's trades / MBP-10 metadata maps an ES outright), so most lakes here are empty files.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import CliRunner

from spymaster.batch import dates as bd
from spymaster.calendar import session_for
from spymaster.cli import cli
from spymaster.config import Config
from spymaster.sources.lake import GLBX, OPRA, Lake

THU_HOLIDAY = dt.date(2025, 11, 27)   # Thanksgiving: XNYS closed
FRI_EARLY = dt.date(2025, 11, 28)     # the day after: XNYS closes 13:00 ET
WED = dt.date(2025, 11, 26)
MON = dt.date(2025, 12, 15)
SUN = dt.date(2025, 12, 14)
D = dt.date(2025, 12, 17)


def cfg_for(lake: Lake) -> Config:
    return Config().replace(**{"io.lake": str(lake.root)})


def touch(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"")
    return p


def put_day(lake: Lake, day: dt.date, *, glbx=("definition", "trades", "mbp-10"), opra=("definition", "trades")) -> None:
    for sch in glbx:
        touch(lake.bronze_path(GLBX, sch, day))
    for sch in opra:
        touch(lake.bronze_path(OPRA, sch, day))


def put_session(lake: Lake, date: dt.date) -> None:
    for d in session_for(date).utc_days():
        put_day(lake, d)


def plan(lake: Lake, day: dt.date, **kw) -> bd.DatePlan:
    return bd.plan_date(lake, day, cfg_for(lake), **kw)


def test_complete_inputs_run(lake):
    put_session(lake, D)
    p = plan(lake, D)
    assert p.kind == bd.READY and p.runs and p.missing == ()


def test_weekend_reason_comes_from_the_calendar(lake):
    p = plan(lake, dt.date(2025, 11, 29))
    assert p.kind == bd.WEEKEND and p.reason == "weekend" and not p.runs


def test_exchange_holiday_thanksgiving_is_skipped(lake):
    put_day(lake, THU_HOLIDAY)
    p = plan(lake, THU_HOLIDAY)
    assert p.kind == bd.HOLIDAY and p.reason == "exchange holiday" and not p.runs


def test_early_close_day_after_thanksgiving_runs_with_shortened_rth(lake):
    put_session(lake, FRI_EARLY)
    p = plan(lake, FRI_EARLY)
    assert p.runs and p.session.early_close
    assert "RTH 09:30-13:00 ET (early close)" in p.describe()
    put_session(lake, WED)
    w = plan(lake, WED)
    assert "RTH 09:30-16:00 ET;" in w.describe() and "early close" not in w.describe()


def test_holiday_session_needs_the_holiday_utc_day_as_warm_up(lake):
    # 2025-11-28's Globex session opens 11-26 17:00 ET: UTC days 11-26, 11-27 (holiday), 11-28
    assert session_for(FRI_EARLY).utc_days() == [WED, THU_HOLIDAY, FRI_EARLY]
    put_day(lake, WED)
    put_day(lake, FRI_EARLY)
    p = plan(lake, FRI_EARLY)
    assert p.kind == bd.WARMUP
    assert p.reason.startswith(f"insufficient warm-up: {lake.bronze_path(GLBX, 'trades', THU_HOLIDAY)}")


def test_output_exists_is_skipped(lake):
    put_session(lake, D)
    touch(lake.gold_path(D))
    p = plan(lake, D)
    assert p.kind == bd.OUTPUT_EXISTS and not p.runs
    assert p.reason == f"output exists: {lake.gold_path(D)}"


def test_output_exists_runs_with_force(lake):
    put_session(lake, D)
    touch(lake.gold_path(D))
    p = plan(lake, D, force=True)
    assert p.kind == bd.REWRITE and p.runs


def test_missing_file_of_the_dates_own_utc_day_is_needed_file_missing(lake):
    put_session(lake, D)
    lake.bronze_path(GLBX, "mbp-10", D).unlink()
    p = plan(lake, D)
    assert p.kind == bd.MISSING
    assert p.reason == f"needed file missing: {lake.bronze_path(GLBX, 'mbp-10', D)}"


def test_missing_own_day_file_wins_over_missing_warm_up(lake):
    put_session(lake, D)
    lake.bronze_path(GLBX, "trades", D).unlink()
    lake.bronze_path(GLBX, "trades", D - dt.timedelta(1)).unlink()
    p = plan(lake, D)
    assert p.kind == bd.MISSING and p.reason.endswith("(and 1 more)")
    assert set(p.missing) == {lake.bronze_path(GLBX, "trades", D), lake.bronze_path(GLBX, "trades", D - dt.timedelta(1))}


def test_missing_earlier_utc_day_file_is_insufficient_warm_up(lake):
    put_session(lake, D)
    prev = D - dt.timedelta(1)
    lake.bronze_path(GLBX, "mbp-10", prev).unlink()
    p = plan(lake, D)
    assert p.kind == bd.WARMUP
    assert p.reason == f"insufficient warm-up: {lake.bronze_path(GLBX, 'mbp-10', prev)}"


def test_monday_warm_up_is_the_sunday_utc_day_not_saturday(lake):
    put_day(lake, MON)
    p = plan(lake, MON)
    assert p.kind == bd.WARMUP and str(SUN.strftime("%Y%m%d")) in p.reason
    put_day(lake, SUN)
    assert plan(lake, MON).kind == bd.READY


def test_uncompressed_dbn_counts_as_present(lake):
    put_session(lake, D)
    z = lake.bronze_path(GLBX, "trades", D)
    z.unlink()
    touch(lake.bronze_path(GLBX, "trades", D, compressed=False))
    assert plan(lake, D).kind == bd.READY


def test_parquet_options_directory_is_the_alternative_to_opra(lake):
    for d in session_for(D).utc_days():
        put_day(lake, d, opra=())
    p = plan(lake, D)
    assert p.kind == bd.MISSING and "opra-pillar-20251217.trades" in p.reason
    pq_dir = lake.options_parquet_dir(D)
    pq_dir.mkdir(parents=True)
    assert plan(lake, D).kind == bd.MISSING          # an empty directory is no options input
    touch(pq_dir / "part-0.parquet")
    assert plan(lake, D).kind == bd.READY


def test_opra_trades_without_definition_is_needed_file_missing(lake):
    put_session(lake, D)
    lake.bronze_path(OPRA, "definition", D).unlink()
    p = plan(lake, D)
    assert p.reason == f"needed file missing: {lake.bronze_path(OPRA, 'definition', D)}"


def test_opra_files_of_the_overnight_utc_day_are_not_required(lake):
    put_session(lake, D)
    prev = D - dt.timedelta(1)
    for sch in ("definition", "trades"):
        lake.bronze_path(OPRA, sch, prev).unlink()
    assert plan(lake, D).kind == bd.READY


def test_missing_glbx_definition_is_needed_unless_symbology_maps_es(lake):
    from bronze import ESH6, mappings_for, trades, write

    put_session(lake, D)
    lake.bronze_path(GLBX, "definition", D).unlink()
    assert plan(lake, D).reason == f"needed file missing: {lake.bronze_path(GLBX, 'definition', D)}"
    # a trades file whose metadata maps ESH6 on day D makes the definition file optional
    lake.bronze_path(GLBX, "trades", D).unlink()
    write(lake, GLBX, "trades", D, trades([0], [0], 1, "N", ESH6), mappings=mappings_for({"ESH6": ESH6}, D))
    assert plan(lake, D).kind == bd.READY


def test_candidate_dates_span_the_bronze_days(lake):
    put_day(lake, WED)
    put_day(lake, FRI_EARLY)
    assert bd.candidate_dates(lake) == [WED, THU_HOLIDAY, FRI_EARLY]
    assert bd.candidate_dates(lake, start=THU_HOLIDAY) == [THU_HOLIDAY, FRI_EARLY]
    assert bd.candidate_dates(lake, dates=["2025-11-28", "2025-11-26"]) == [WED, FRI_EARLY]
    assert bd.candidate_dates(Lake.at(lake.root / "empty")) == []


def test_dry_run_lists_each_date_and_why(lake):
    put_session(lake, FRI_EARLY)           # UTC days 11-26, 11-27, 11-28
    put_session(lake, WED)                 # adds 11-25
    lake.bronze_path(GLBX, "trades", dt.date(2025, 11, 25)).unlink()   # warm-up of 11-26
    res = CliRunner().invoke(cli, ["batch", "--dry-run", "--lake", str(lake.root), "--start-date", "2025-11-24",
                                   "--end-date", "2025-11-30"])
    assert res.exit_code == 0, res.output
    lines = {ln[:10]: ln for ln in res.output.splitlines() if ln[:4] == "2025"}
    assert list(lines) == [f"2025-11-{d}" for d in range(24, 31)]
    assert "skip  needed file missing:" in lines["2025-11-24"]
    assert "skip  needed file missing:" in lines["2025-11-25"]
    assert "skip  insufficient warm-up:" in lines["2025-11-26"] and "glbx-mdp3-20251125.trades" in lines["2025-11-26"]
    assert "skip  exchange holiday" in lines["2025-11-27"]
    assert "run   inputs present" in lines["2025-11-28"] and "13:00 ET (early close)" in lines["2025-11-28"]
    assert "skip  weekend" in lines["2025-11-29"] and "skip  weekend" in lines["2025-11-30"]
    assert "dry run: 1 would run, 6 skipped" in res.output
    assert not lake.gold_dir.exists()       # a dry run writes nothing


def test_dry_run_with_force_lists_rewrites(lake):
    put_session(lake, D)
    touch(lake.gold_path(D))
    args = ["batch", "--dry-run", "--lake", str(lake.root), "--dates", D.isoformat()]
    out = CliRunner().invoke(cli, args).output
    assert "2025-12-17  skip  output exists:" in out
    out = CliRunner().invoke(cli, args + ["--force"]).output
    assert "2025-12-17  run   output exists, rewritten (--force)" in out


def test_dates_and_range_options_are_exclusive(lake):
    res = CliRunner().invoke(cli, ["batch", "--dry-run", "--lake", str(lake.root), "--dates", "2025-12-17",
                                   "--start-date", "2025-12-16"])
    assert res.exit_code != 0 and "cannot be combined" in res.output

