"""``spymaster batch`` (many dates; also ``python -m spymaster.batch``) and ``spymaster aggregate``."""

from __future__ import annotations

import sys

import click

from spymaster.cli.replay import load_config

#: exit code of a batch in which at least one date failed (the log says which and why)
EXIT_DATES_FAILED = 1


def _date_list(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _logging_options() -> tuple[bool | None, str]:
    """The parent's structlog settings, passed to workers so they log the same way."""
    from spymaster import logs

    conf = logs.configured()
    return conf.get("json"), conf.get("level", "info")


def _aggregate(cfg, dates: list[str] | None, start: str | None, end: str | None) -> None:
    """Aggregate the per-date files of the selected dates (all when nothing is selected)."""
    from spymaster.calendar import parse_date
    from spymaster.sinks.aggregate import aggregate, per_date_files
    from spymaster.sources.lake import Lake

    lake = Lake.at(cfg.io.lake)
    want = {parse_date(d) for d in dates} if dates else None
    lo = parse_date(start) if start else None
    hi = parse_date(end) if end else None
    selected = [d for d, _ in per_date_files(lake.gold_dir)
                if (want is None or d in want) and (lo is None or d >= lo) and (hi is None or d <= hi)]
    res = aggregate(lake.gold_dir, lake.multi_day_path, dates=selected)
    click.echo(f"aggregate: {len(res.dates)} dates ({res.dates[0]} .. {res.dates[-1]}), {res.rows:,} rows, "
               f"{res.row_groups} row groups -> {res.path}")


@click.command("batch")
@click.option("--start-date", "start", help="First date YYYY-MM-DD (default: first UTC day with Bronze files).")
@click.option("--end-date", "end", help="Last date YYYY-MM-DD (default: last UTC day with Bronze files).")
@click.option("--dates", "dates", help="Comma-separated dates YYYY-MM-DD (instead of a range).")
@click.option("--dry-run", is_flag=True, help="List each date and why it would run or be skipped; run nothing.")
@click.option("--force", is_flag=True, help="Rewrite Gold files that exist.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Local worker processes (1 = in this process); with --scheduler local, the LocalCluster's workers.")
@click.option("--scheduler", help="dask.distributed scheduler address (host:port), or 'local' for a LocalCluster.")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="Replay config TOML (default: built-in defaults).")
@click.option("--lake", type=click.Path(file_okay=False), help="Lake root (overrides io.lake).")
@click.option("--aggregate", "do_aggregate", is_flag=True, help="Then build signals_multi_day.parquet from the per-date files.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def batch_cmd(start: str | None, end: str | None, dates: str | None, dry_run: bool, force: bool, workers: int,
              scheduler: str | None, config: str | None, lake: str | None, do_aggregate: bool,
              no_progress: bool) -> None:
    """Replay many trading dates (all available by default) into per-date Gold files."""
    from spymaster.batch.run import FAILED, run_batch

    if dates and (start or end):
        raise click.UsageError("--dates cannot be combined with --start-date / --end-date")
    cfg = load_config(config, lake)
    date_list = _date_list(dates)

    if dry_run:
        from spymaster.batch.dates import plan_dates
        from spymaster.sources.lake import Lake

        plans = plan_dates(Lake.at(cfg.io.lake), cfg, start=start, end=end, dates=date_list, force=force)
        for p in plans:
            click.echo(p.describe())
        n_run = sum(p.runs for p in plans)
        click.echo(f"dry run: {n_run} would run, {len(plans) - n_run} skipped")
        return

    log_json, log_level = _logging_options()
    state: dict = {"bar": None}

    def on_plans(plans) -> None:
        n = sum(p.runs for p in plans)
        bar = click.progressbar(length=n, label=f"batch ({n} date{'' if n == 1 else 's'})", show_eta=True, show_pos=True,
                                hidden=no_progress or n == 0, item_show_func=lambda d: d or "")
        state["bar"] = bar.__enter__()

    def on_result(r) -> None:
        bar = state["bar"]
        if bar is not None:
            bar.update(1, f"{r.date} {r.status}" if r.status != FAILED else f"{r.date} FAILED")

    try:
        report = run_batch(cfg, start=start, end=end, dates=date_list, force=force, workers=workers,
                           scheduler=scheduler, log_json=log_json, log_level=log_level, on_plans=on_plans,
                           on_result=on_result)
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)
    for r in report.failed:
        click.echo(f"failed {r.date}: {r.error}", err=True)
    click.echo(report.summary_line())
    if do_aggregate:
        _aggregate(cfg, date_list, start, end)
    if report.failed:
        sys.exit(EXIT_DATES_FAILED)


@click.command("aggregate")
@click.option("--start-date", "start", help="First date YYYY-MM-DD (default: the first per-date file).")
@click.option("--end-date", "end", help="Last date YYYY-MM-DD (default: the last per-date file).")
@click.option("--dates", "dates", help="Comma-separated dates YYYY-MM-DD.")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="Replay config TOML (for io.lake).")
@click.option("--lake", type=click.Path(file_okay=False), help="Lake root (overrides io.lake).")
def aggregate_cmd(start: str | None, end: str | None, dates: str | None, config: str | None, lake: str | None) -> None:
    """Build gold/research/signals_multi_day.parquet from the per-date Gold files, in date order."""
    if dates and (start or end):
        raise click.UsageError("--dates cannot be combined with --start-date / --end-date")
    cfg = load_config(config, lake)
    _aggregate(cfg, _date_list(dates), start, end)


COMMANDS = [batch_cmd, aggregate_cmd]
