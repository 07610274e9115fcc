"""``spymaster synth``: write synthetic Bronze sessions into a lake."""

from __future__ import annotations

import click


@click.command("synth")
@click.option("--lake", default="data/lake", show_default=True, type=click.Path(file_okay=False),
              help="Lake root to write Bronze files into.")
@click.option("--dates", required=True,
              help="Trading dates: 2025-12-15..2025-12-19 or 2025-12-15,2025-12-17 (non-trading days are skipped).")
@click.option("--scale", default="demo", show_default=True, type=click.Choice(["demo", "day", "heavy"]),
              help="Size of each session (demo ≈ 25k ES trades, day ≈ 0.5 M, heavy ≈ 1 M).")
@click.option("--seed", default=7, show_default=True, type=int, help="Seed of the synthetic market.")
@click.option("--scenario", "scenarios", multiple=True, metavar="KIND:key=value,...",
              help="Inject a scenario, e.g. 'pull:at=10:14,price=6800,side=ask' "
                   "(kinds: drive, pull, consume, refill, sweep; repeatable).")
@click.option("--parquet-options", is_flag=True, help="Also write the Bronze Parquet form of the option trades.")
@click.option("--force", is_flag=True, help="Regenerate dates that are already in the lake.")
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Replay config (barrier/tape thresholds shape the scenarios).")
def synth_cmd(lake: str, dates: str, scale: str, seed: int, scenarios: tuple[str, ...], parquet_options: bool,
              force: bool, config_path: str | None) -> None:
    """Generate deterministic synthetic ES + SPY-option sessions (real DBN files)."""
    from spymaster.config import Config
    from spymaster.synth import generate, parse_scenario

    cfg = Config.load(config_path)
    parsed = [parse_scenario(s) for s in scenarios]
    rep = generate(lake, dates, scale=scale, seed=seed, scenarios=parsed, parquet_options=parquet_options,
                   force=force, config=cfg)
    for line in rep.summary():
        click.echo(line)
    total = sum(f.records for f in rep.files)
    if rep.files:
        click.echo(f"{total:,} records in {len(rep.files)} files under {rep.lake}")


COMMANDS = [synth_cmd]
