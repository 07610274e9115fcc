"""``spymaster sources``: what the lake holds for a trading date and what the replay would read.

Prints, per source, the files (with sizes), record counts (read / kept / filtered / dropped by
reason), the kept records' time span (ET), the chosen ES contract and why, and the 0DTE
contracts found. Reading every stream once is the price of exact counts; ``--no-scan`` prints
only what the headers, definitions and the ES trades pre-scan tell.
"""

from __future__ import annotations

import click

from spymaster.calendar import fmt_et
from spymaster.config import Config
from spymaster.sources.lake import Lake


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _reasons(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(d.items())) or "none"


@click.command("sources")
@click.option("--date", "date", required=True, help="Trading date YYYY-MM-DD.")
@click.option("--lake", "lake_dir", default=None, help="Lake root (default: config io.lake).")
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
              help="Replay config TOML (default: built-in defaults).")
@click.option("--no-scan", is_flag=True, help="Do not stream the files (no record counts or time spans).")
def sources_command(date: str, lake_dir: str | None, config_path: str | None, no_scan: bool) -> None:
    """Show the input files, ES contract and 0DTE contracts of one trading date."""
    from spymaster.sources.session import open_session

    config = Config.load(config_path)
    lake = Lake.at(lake_dir or config.io.lake)
    si = open_session(lake, date, config)
    s = si.session
    echo = click.echo
    echo(f"trading date {s.iso}: session ({fmt_et(s.start_ns)}, {fmt_et(s.end_ns)}]; "
         f"UTC days {', '.join(d.isoformat() for d in s.utc_days())}; lake {lake.root}")
    if not no_scan:
        for st in si.streams():
            for _ in st.chunks():
                pass

    c = si.es.contract
    echo("")
    echo(f"ES contract: {c.raw_symbol} (instrument_id {c.instrument_id}, expires {c.expiration}, "
         f"expiration from {si.es.expiration_source}); {si.es.session_trades.get(c.raw_symbol, 0):,} session trades")
    echo(f"  why: {si.es.reason}")
    if si.es.excluded_spreads:
        echo(f"  calendar spreads excluded: {si.es.excluded_spreads}")

    cs = si.contracts.summary()
    echo(f"options: source {si.options_source}; {cs['count']} 0DTE {si.config.instrument.option_root} contracts "
         f"({cs['calls']} calls, {cs['puts']} puts)"
         + (f", strikes {cs['strike_min']:g} .. {cs['strike_max']:g}" if cs["count"] else ""))
    for f in si.options_ignored:
        echo(f"  ignored (DBN wins): {f.rel_path}")

    for st in si.streams():
        echo("")
        total = sum(f.size for f in st.files)
        echo(f"{st.name}: {len(st.files)} file(s), {_size(total)}")
        for f in st.files:
            echo(f"  {f.rel_path}  {_size(f.size)}")
        if no_scan:
            continue
        x = st.stats
        echo(f"  records read {x.read:,}, kept {x.kept:,}")
        if x.first_ts is not None and x.last_ts is not None:
            echo(f"  span {fmt_et(x.first_ts)} .. {fmt_et(x.last_ts)}")
        echo(f"  filtered: {_reasons(x.filtered)}")
        echo(f"  dropped: {_reasons(x.dropped)}")
    defs = [f for f in si.files if f.role.endswith("definition")]
    if defs:
        echo("")
        echo("definitions:")
        for f in defs:
            echo(f"  {f.rel_path}  {_size(f.size)}")
    od = si.option_definitions
    if od.get("read") is not None:
        echo(f"  OPRA definitions read {od['read']:,}, 0DTE rows {od['zero_dte_rows']:,}, deletes {od['deletes']:,}; "
             f"skipped: {_reasons(od['skipped'])}; anomalies: {_reasons(od['anomalies'])}")


COMMANDS = [sources_command]
