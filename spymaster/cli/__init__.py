"""The ``spymaster`` command line: one click group, one module per command.

The CLI is the only layer that wires sources, replay and sinks together and prints. Errors
derived from :class:`~spymaster.errors.SpymasterError` become one line on stderr and a non-zero
exit code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys

import click

from spymaster.errors import SpymasterError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--log-json", is_flag=True, help="Log JSON lines (default when stderr is not a terminal).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]), help="Log level.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, log_json: bool, log_level: str, debug: bool) -> None:
    """spymaster: replay ES / SPY-option market data into labelled level-test records."""
    from spymaster import logs

    logs.configure(json=True if log_json else None, level=log_level)
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


# One module per command group; each defines COMMANDS (a list of click commands).
COMMAND_MODULES: list[str] = ["batch", "debug", "demo", "live", "replay", "sources", "synth"]


def _register() -> None:
    import importlib

    for name in COMMAND_MODULES:
        module = importlib.import_module(f"spymaster.cli.{name}")
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="spymaster", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SpymasterError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
