"""Which trading dates a batch runs, and why the others are skipped (SPEC §3, §12).

Candidate dates are calendar days; a candidate runs when all of these hold:

1. it is an XNYS trading day (exchange-calendars through :mod:`spymaster.calendar`; otherwise
   the reason is ``weekend`` or ``exchange holiday``);
2. its Gold output ``signals_{date}.parquet`` does not exist (unless ``force``);
3. every Bronze file its Globex session reads is in the lake. The requirement is the one
   :func:`spymaster.sources.session.open_session` enforces, so a date planned to run is a date the
   replay can open:

   - GLBX ``trades`` and ``mbp-10`` for every UTC day of ``Session.utc_days()``;
   - GLBX ``definition`` for every such UTC day, unless that day's trades / MBP-10 metadata
     symbology maps an ES outright (then the definitions come from the symbology);
   - options for UTC day D itself: the OPRA ``trades`` + ``definition`` pair, or (when neither
     OPRA file of D exists) a Bronze Parquet options directory holding ``*.parquet`` files. SPY
     options trade only inside D's regular hours, so OPRA files of the session's earlier UTC
     days are used when present and never required (a trades file without its definition file
     is refused, as the replay refuses it).

   A missing file of D's own UTC day gives ``needed file missing: <path>``; when only files of
   an earlier UTC day of the session (the overnight session before D) are missing the reason is
   ``insufficient warm-up: <path>``.

Early closes shorten RTH per the calendar (``Session.rth_close_ns``); :func:`DatePlan.describe`
shows it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from spymaster.calendar import Session, fmt_et, from_ns, ET, holiday_reason, parse_date, session_from_config
from spymaster.config import Config
from spymaster.errors import CalendarError, SpymasterError
from spymaster.sources.lake import GLBX, OPRA, Lake

# plan.kind values
READY = "ready"                  # runs
REWRITE = "rewrite"              # runs: output exists, --force
OUTPUT_EXISTS = "output_exists"  # skipped
MISSING = "missing"              # skipped: a file of D's own UTC day is missing
WARMUP = "warmup"                # skipped: a file of an earlier UTC day of the session is missing
HOLIDAY = "holiday"              # skipped: XNYS exchange holiday
WEEKEND = "weekend"              # skipped: Saturday / Sunday
OUT_OF_CALENDAR = "calendar"     # skipped: outside the calendar's range

RUN_KINDS = (READY, REWRITE)


@dataclass(frozen=True)
class DatePlan:
    """What a batch does with one calendar date, and why."""

    date: dt.date
    kind: str
    reason: str
    output: Path
    session: Session | None = None
    missing: tuple[Path, ...] = field(default=())

    @property
    def runs(self) -> bool:
        return self.kind in RUN_KINDS

    @property
    def iso(self) -> str:
        return self.date.isoformat()

    def describe(self) -> str:
        """One dry-run line: ``2025-11-28  run   RTH 09:30-13:00 ET (early close) ...``."""
        action = "run " if self.runs else "skip"
        text = f"{self.iso}  {action}  {self.reason}"
        if self.session is not None:
            s = self.session
            rth = f"RTH {_hhmm(s.rth_open_ns)}-{_hhmm(s.rth_close_ns)} ET"
            if s.early_close:
                rth += " (early close)"
            text += f"  [{rth}; session {fmt_et(s.start_ns, seconds=False)} .. {fmt_et(s.end_ns, seconds=False)}]"
        return text


def _hhmm(ns: int) -> str:
    return from_ns(ns, ET).strftime("%H:%M")


# ---------------------------------------------------------------------------------------- candidates
def bronze_utc_days(lake: Lake) -> list[dt.date]:
    """UTC days for which any Bronze input (GLBX, OPRA or a Parquet options directory) exists."""
    days: set[dt.date] = set()
    for ds, schemas in ((GLBX, ("definition", "trades", "mbp-10")), (OPRA, ("definition", "trades"))):
        for sch in schemas:
            days.update(lake.bronze_days(ds, sch))
    opt_root = lake.root / "bronze" / "options"
    if opt_root.is_dir():
        for root_dir in opt_root.iterdir():
            if not root_dir.is_dir():
                continue
            for d in root_dir.iterdir():
                if d.is_dir() and d.name.startswith("date="):
                    try:
                        days.add(dt.date.fromisoformat(d.name[5:]))
                    except ValueError:
                        continue
    return sorted(days)


def candidate_dates(lake: Lake, *, start: dt.date | str | None = None, end: dt.date | str | None = None,
                    dates: list[dt.date | str] | None = None) -> list[dt.date]:
    """The calendar days a batch considers, in order.

    ``dates`` (explicit) wins; otherwise every calendar day in [start, end], each bound
    defaulting to the first / last UTC day with a Bronze file (no Bronze files and no bounds → []).
    """
    if dates:
        return sorted({parse_date(d) for d in dates})
    lo = parse_date(start) if start is not None else None
    hi = parse_date(end) if end is not None else None
    if lo is None or hi is None:
        present = bronze_utc_days(lake)
        if not present:
            return []
        lo = lo if lo is not None else present[0]
        hi = hi if hi is not None else present[-1]
    out = []
    d = lo
    while d <= hi:
        out.append(d)
        d += dt.timedelta(days=1)
    return out


# ---------------------------------------------------------------------------------------- requirements
@dataclass(frozen=True)
class Requirement:
    """One input a date needs, and whether it is present."""

    path: Path          # the existing file, or the canonical path where it is expected
    utc_day: dt.date
    role: str
    present: bool


def _es_symbology_covers(lake: Lake, day: dt.date) -> bool:
    """True if day's GLBX trades / mbp-10 metadata maps an ES outright (definitions may be absent)."""
    from spymaster.sources.dbn import open_dbn
    from spymaster.sources.es import is_es_outright

    for sch in ("trades", "mbp-10"):
        p = lake.find_bronze(GLBX, sch, day)
        if p is None:
            continue
        try:
            h = open_dbn(p)
        except SpymasterError:
            continue  # a corrupt header is the replay's error to report, with the file named
        if any(is_es_outright(raw) and h.ids_for(raw, day) for raw in h.mappings):
            return True
    return False


def requirements(lake: Lake, session: Session, root: str = "SPY") -> list[Requirement]:
    """Every input the replay of ``session`` reads (see the module docstring), present or not."""
    reqs: list[Requirement] = []
    for d in session.utc_days():
        for sch in ("trades", "mbp-10"):
            p = lake.find_bronze(GLBX, sch, d)
            reqs.append(Requirement(p or lake.bronze_path(GLBX, sch, d), d, f"es_{sch}", p is not None))
        p = lake.find_bronze(GLBX, "definition", d)
        if p is not None or not _es_symbology_covers(lake, d):
            reqs.append(Requirement(p or lake.bronze_path(GLBX, "definition", d), d, "es_definition", p is not None))
    day = session.date
    tp, dp = lake.find_bronze(OPRA, "trades", day), lake.find_bronze(OPRA, "definition", day)
    pq_dir = lake.options_parquet_dir(day, root=root.lower())
    if tp is None and dp is None:
        from spymaster.sources.parquet import parquet_files  # only here: it imports databento (~2 s)

        if parquet_files(pq_dir):
            reqs.append(Requirement(pq_dir, day, "options_parquet", True))
        else:
            reqs += [Requirement(lake.bronze_path(OPRA, "trades", day), day, "opra_trades", False),
                     Requirement(lake.bronze_path(OPRA, "definition", day), day, "opra_definition", False),
                     Requirement(pq_dir / "*.parquet", day, "options_parquet", False)]
        return reqs
    reqs.append(Requirement(tp or lake.bronze_path(OPRA, "trades", day), day, "opra_trades", tp is not None))
    reqs.append(Requirement(dp or lake.bronze_path(OPRA, "definition", day), day, "opra_definition", dp is not None))
    for d in session.utc_days():
        if d == day:
            continue
        # OPRA DBN of the session's other UTC days is read when present; a trades file needs its definitions
        if lake.find_bronze(OPRA, "trades", d) is not None and lake.find_bronze(OPRA, "definition", d) is None:
            reqs.append(Requirement(lake.bronze_path(OPRA, "definition", d), d, "opra_definition", False))
    return reqs


# ---------------------------------------------------------------------------------------- planning
def plan_date(lake: Lake, day: dt.date | str, config: Config, *, force: bool = False) -> DatePlan:
    """The plan of one calendar date (never raises for a missing file or a non-trading day)."""
    day = parse_date(day)
    out = lake.gold_path(day)
    try:
        why = holiday_reason(day)
    except CalendarError as exc:
        return DatePlan(day, OUT_OF_CALENDAR, f"outside the exchange calendar ({exc.message})", out)
    if why is not None:
        return DatePlan(day, WEEKEND if why == "weekend" else HOLIDAY, why, out)
    session = session_from_config(day, config)
    exists = out.exists()
    if exists and not force:
        return DatePlan(day, OUTPUT_EXISTS, f"output exists: {out}", out, session)
    reqs = requirements(lake, session, root=config.instrument.option_root)
    own = tuple(r.path for r in reqs if not r.present and r.utc_day == day)
    earlier = tuple(r.path for r in reqs if not r.present and r.utc_day != day)
    if own:
        reason = f"needed file missing: {own[0]}" + (f" (and {len(own) + len(earlier) - 1} more)" if len(own) + len(earlier) > 1 else "")
        return DatePlan(day, MISSING, reason, out, session, own + earlier)
    if earlier:
        reason = f"insufficient warm-up: {earlier[0]}" + (f" (and {len(earlier) - 1} more)" if len(earlier) > 1 else "")
        return DatePlan(day, WARMUP, reason, out, session, earlier)
    if exists:
        return DatePlan(day, REWRITE, f"output exists, rewritten (--force): {out}", out, session)
    return DatePlan(day, READY, "inputs present", out, session)


def plan_dates(lake: Lake, config: Config, *, start: dt.date | str | None = None, end: dt.date | str | None = None,
               dates: list[dt.date | str] | None = None, force: bool = False) -> list[DatePlan]:
    """Plans of every candidate date (see :func:`candidate_dates`), in date order."""
    return [plan_date(lake, d, config, force=force)
            for d in candidate_dates(lake, start=start, end=end, dates=dates)]
