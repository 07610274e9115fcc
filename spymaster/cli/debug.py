"""``spymaster debug``: step through a date's replay, on the same engine code path."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("debug")
@click.option("--date", "date", required=True, help="Trading date YYYY-MM-DD.")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="Replay config TOML (default: built-in defaults).")
@click.option("--lake", type=click.Path(file_okay=False), help="Lake root (overrides io.lake).")
@click.option("--break", "breaks", multiple=True, metavar="SPEC",
              help="Set a breakpoint before the first command (repeatable): KIND, LEVEL_ID, HH:MM[:SS] or touch.")
def debug_cmd(date: str, config: str | None, lake: str | None, breaks: tuple[str, ...]) -> None:
    """Step through the replay of one date: step / until / next touch / break / continue, and look at
    book, levels, tape, fuel, bar, touch. Commands come from the terminal (prompt, history) or one
    per line on stdin (each echoed as '> command'); 'help' lists them. In scripted use the exit code
    is 1 if any command failed."""
    from spymaster.cli.replay import load_config
    from spymaster.debug.shell import Shell
    from spymaster.debug.stepper import Stepper, fmt_clock

    cfg = load_config(config, lake)
    stepper = Stepper.open(cfg, date)
    s = stepper.session
    stdin = click.get_text_stream("stdin")
    tty = stdin.isatty()
    shell = Shell(stepper, out=click.echo)
    click.echo(f"spymaster debug {s.iso}: session ({fmt_clock(s.start_ns, s, digits=0)}, "
               f"{fmt_clock(s.end_ns, s, digits=0)}], ES {stepper.es_symbol}, {len(stepper.contracts)} 0DTE "
               f"contracts; prices on the SPY axis (ES / {cfg.instrument.es_spy_ratio:g}). 'help' lists the commands.")
    for spec in breaks:
        shell.execute(f"break {spec}")
    if tty:
        shell.interactive(history=Path.home() / ".spymaster_debug_history")
    else:
        shell.run(stdin, echo=True)
        if shell.errors:
            raise click.exceptions.Exit(1)


COMMANDS = [debug_cmd]
