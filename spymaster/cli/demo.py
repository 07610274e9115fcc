"""``spymaster demo``: the README's main job on the embedded synthetic market."""

from __future__ import annotations

import click

DEMO_DATE = "2025-12-17"


@click.command("demo")
@click.option("--lake", default=None, type=click.Path(file_okay=False),
              help="Lake root (default: io.lake of replay_configs/demo.toml, i.e. data/lake).")
@click.option("--date", "date", default=DEMO_DATE, show_default=True, help="Trading date of the demo day.")
@click.option("--seed", default=7, show_default=True, help="Seed of the synthetic market.")
@click.option("--scale", default="demo", show_default=True, type=click.Choice(["demo", "day", "heavy"]),
              help="Size of the synthetic day.")
def demo_cmd(lake: str | None, date: str, seed: int, scale: str) -> None:
    """Generate a synthetic demo day if missing, replay it, print what was found."""
    from spymaster.calendar import parse_date, session_from_config
    from spymaster.config import Config, default_config_dir
    from spymaster.pipeline import Pipeline
    from spymaster.report import crosstab, format_crosstab
    from spymaster.sources.lake import Lake
    from spymaster.synth import generate
    from spymaster.vocab import OUTCOMES

    demo_toml = default_config_dir() / "demo.toml"
    cfg = Config.load(demo_toml if demo_toml.exists() else None)
    if lake is not None:
        cfg = cfg.replace(**{"io.lake": lake})
    lk = Lake.at(cfg.io.lake)
    day = parse_date(date)
    session = session_from_config(day, cfg)
    missing = [d for d in session.utc_days() if lk.find_bronze("glbx-mdp3", "trades", d) is None
               or lk.find_bronze("opra-pillar", "trades", d) is None]
    if missing:
        click.echo(f"generating the synthetic {scale} day {day} (seed {seed}) into {lk.root} ...")
        generate(lk, [day], scale=scale, seed=seed)
    res = Pipeline(cfg).execute(day, force=True)
    t = res.table
    click.echo(f"{res.date}: {t.num_rows} touches from {res.events:,} events in {res.seconds:.2f} s")
    if t.num_rows:
        click.echo("touches by level kind and outcome:")
        click.echo(format_crosstab(crosstab(t, "level_kind", "outcome"), OUTCOMES))
    click.echo(f"output: {res.path}")


COMMANDS = [demo_cmd]
