"""``spymaster replay`` and ``spymaster summary``."""

from __future__ import annotations

from pathlib import Path

import click

from spymaster.config import Config


def load_config(config: str | None, lake: str | None) -> Config:
    cfg = Config.load(config)
    if lake is not None:
        cfg = cfg.replace(**{"io.lake": lake})
    return cfg


@click.command("replay")
@click.option("--date", "date", required=True, help="Trading date YYYY-MM-DD.")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="Replay config TOML (default: built-in defaults).")
@click.option("--lake", type=click.Path(file_okay=False), help="Lake root (overrides io.lake).")
@click.option("--force", is_flag=True, help="Rewrite the Gold file if it exists.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def replay_cmd(date: str, config: str | None, lake: str | None, force: bool, no_progress: bool) -> None:
    """Replay one trading date into data/lake/gold/research/signals_{date}.parquet."""
    from spymaster.calendar import NS, parse_date, session_from_config
    from spymaster.pipeline import Pipeline

    cfg = load_config(config, lake)
    pipe = Pipeline(cfg)
    session = session_from_config(parse_date(date), cfg)
    total = (session.end_ns - session.start_ns) // NS
    show = not no_progress
    with click.progressbar(length=int(total), label=f"replay {session.iso}", show_eta=True, file=None,
                           hidden=not show) as bar:
        state = {"pos": 0}

        def progress(ts_ns: int) -> None:
            pos = min(int(total), max(0, (ts_ns - session.start_ns) // NS))
            if pos > state["pos"]:
                bar.update(pos - state["pos"])
                state["pos"] = pos

        res = pipe.execute(date, force=force, progress=progress)
    if res.skipped:
        click.echo(f"{res.date}: {res.path} exists, skipped (use --force to rewrite)")
        return
    click.echo(f"{res.date}: {res.table.num_rows} touches, {res.events:,} events in {res.seconds:.2f} s "
               f"({res.events_per_s:,.0f} events/s) -> {res.path}")


@click.command("summary")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def summary_cmd(file: str) -> None:
    """Distributions of outcome, barrier_state, fuel_effect, signal, confidence, level_kind; null counts."""
    from spymaster.report import format_distributions, read_gold

    click.echo(f"{Path(file)}")
    click.echo(format_distributions(read_gold(file)))


COMMANDS = [replay_cmd, summary_cmd]
