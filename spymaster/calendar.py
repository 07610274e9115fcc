"""Trading dates, Globex session windows, RTH and early closes (SPEC §3).

All instants are int64 ns since the epoch, UTC. Local logic uses ``America/New_York`` through
zoneinfo (DST-correct) and the exchange-calendars XNYS calendar for trading days, holidays and
early closes.

Trading date D covers records with ``ts_recv`` in (17:00 ET of the previous XNYS trading day,
17:00 ET of D]. The Bronze files a date needs are the UTC days that window overlaps, leaving out
the part inside the weekly Globex closure (Friday 17:00 ET to Sunday 18:00 ET).
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import importlib.metadata
import json
import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from spymaster.errors import CalendarError

ET = ZoneInfo("America/New_York")
UTC = dt.timezone.utc
NS = 1_000_000_000
MINUTE_NS = 60 * NS
DAY_NS = 86_400 * NS


@functools.lru_cache(maxsize=1)
def _xnys():
    """The exchange-calendars XNYS calendar (importing and building it costs ~0.7 s)."""
    import warnings

    import exchange_calendars as xcals

    with warnings.catch_warnings():
        # exchange-calendars 4.x trips a pandas-3 deprecation warning while building the calendar
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        return xcals.get_calendar("XNYS")


@dataclass(frozen=True)
class _Schedule:
    """XNYS sessions as sorted ordinals with their open / close instants (ns)."""

    days: tuple[int, ...]     # date.toordinal() of every session, ascending
    opens: tuple[int, ...]
    closes: tuple[int, ...]
    first: int                # calendar bounds (ordinals, inclusive)
    last: int

    def index(self, day: dt.date) -> int:
        """Position of ``day`` if it is a session, else -(insertion point) - 1."""
        o = day.toordinal()
        if not self.first <= o <= self.last:
            raise CalendarError(f"{day} is outside the XNYS calendar range "
                                f"({dt.date.fromordinal(self.first)}..{dt.date.fromordinal(self.last)})")
        i = bisect.bisect_left(self.days, o)
        return i if i < len(self.days) and self.days[i] == o else -i - 1


def _cache_path() -> Path | None:
    """Where the schedule built from exchange-calendars is kept (per library version)."""
    try:
        version = importlib.metadata.version("exchange-calendars")
    except importlib.metadata.PackageNotFoundError:
        return None
    root = os.environ.get("SPYMASTER_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "spymaster")
    return Path(root) / f"xnys-schedule-{version}.json"


def _build_schedule() -> _Schedule:
    cal = _xnys()
    days = [d.date().toordinal() for d in cal.sessions]
    opens = [to_ns(x.to_pydatetime()) for x in cal.opens]
    closes = [to_ns(x.to_pydatetime()) for x in cal.closes]
    return _Schedule(tuple(days), tuple(opens), tuple(closes), cal.first_session.date().toordinal(),
                     cal.last_session.date().toordinal())


@functools.lru_cache(maxsize=1)
def _schedule() -> _Schedule:
    """The XNYS schedule, from a JSON cache of the library's own output when one is fresh.

    exchange-calendars is the only source of sessions, holidays and early closes; the cache
    (``$SPYMASTER_CACHE_DIR`` or ``~/.cache/spymaster``, keyed by the library's version and
    rebuilt once today's date passes half of the remaining range) only saves every process the
    ~0.7 s of importing and building it. Unwritable cache locations are ignored.
    """
    path = _cache_path()
    today = dt.date.today().toordinal()
    if path is not None and path.exists():
        try:
            raw = json.loads(path.read_text())
            sched = _Schedule(tuple(raw["days"]), tuple(raw["opens"]), tuple(raw["closes"]), raw["first"], raw["last"])
            if len(sched.days) == len(sched.opens) == len(sched.closes) and today < sched.last - 180:
                return sched
        except (OSError, ValueError, KeyError, TypeError):
            pass
    sched = _build_schedule()
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"days": sched.days, "opens": sched.opens, "closes": sched.closes,
                                       "first": sched.first, "last": sched.last}))
            os.replace(tmp, path)
        except OSError:
            pass
    return sched


def to_ns(t: dt.datetime) -> int:
    """A tz-aware datetime → int ns since the epoch (exact)."""
    if t.tzinfo is None:
        raise ValueError("naive datetime")
    delta = t.astimezone(UTC) - dt.datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS + delta.microseconds * 1000


def from_ns(ns: int, tz: dt.tzinfo = UTC) -> dt.datetime:
    """int ns → tz-aware datetime (microsecond resolution)."""
    return (dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=ns // 1000)).astimezone(tz)


def et_ns(day: dt.date, hh: int, mm: int, ss: int = 0) -> int:
    """ns of wall-clock time HH:MM:SS America/New_York on ``day``."""
    return to_ns(dt.datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=ET))


def fmt_et(ns: int, seconds: bool = True) -> str:
    """``YYYY-MM-DD HH:MM:SS ET`` for logs and CLI output."""
    return from_ns(ns, ET).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + " ET"


def parse_date(value: str | dt.date) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CalendarError(f"not a date (want YYYY-MM-DD): {value!r}") from None


def is_trading_day(day: dt.date) -> bool:
    return _schedule().index(day) >= 0


def trading_days(start: dt.date, end: dt.date) -> list[dt.date]:
    """XNYS trading days in [start, end]."""
    if end < start:
        return []
    sched = _schedule()
    sched.index(start)
    sched.index(end)
    lo = bisect.bisect_left(sched.days, start.toordinal())
    hi = bisect.bisect_right(sched.days, end.toordinal())
    return [dt.date.fromordinal(o) for o in sched.days[lo:hi]]


def holiday_reason(day: dt.date) -> str | None:
    """Why ``day`` is not a trading day ('weekend' / 'exchange holiday'), or None if it is one."""
    if is_trading_day(day):
        return None
    return "weekend" if day.weekday() >= 5 else "exchange holiday"


@dataclass(frozen=True)
class Session:
    """The Globex session of trading date D and its ET sub-windows (all int ns, UTC)."""

    date: dt.date
    start_ns: int          # exclusive: 17:00 ET of the previous XNYS trading day
    end_ns: int            # inclusive: 17:00 ET of D
    premarket_ns: int      # pre-market window start (04:00 ET by default)
    rth_open_ns: int       # 09:30 ET
    rth_close_ns: int      # 16:00 ET or the early close
    or_end_ns: int         # rth_open + opening_range_minutes
    first_end_ns: int      # rth_open + first_minutes (is_first_15m)
    early_close: bool

    @property
    def expiry_ns(self) -> int:
        """0DTE expiry instant = the XNYS close of D."""
        return self.rth_close_ns

    @property
    def iso(self) -> str:
        return self.date.isoformat()

    def contains(self, ts_ns: int) -> bool:
        return self.start_ns < ts_ns <= self.end_ns

    def utc_days(self) -> list[dt.date]:
        """UTC days whose daily Bronze files this session needs (weekend closure left out)."""
        days: list[dt.date] = []
        d = from_ns(self.start_ns + 1).date()
        last = from_ns(self.end_ns).date()
        while d <= last:
            lo = max(self.start_ns + 1, to_ns(dt.datetime(d.year, d.month, d.day, tzinfo=UTC)))
            hi = min(self.end_ns, to_ns(dt.datetime(d.year, d.month, d.day, tzinfo=UTC)) + DAY_NS - 1)
            if lo <= hi and not _inside_weekend_closure(lo, hi):
                days.append(d)
            d += dt.timedelta(days=1)
        return days


def _inside_weekend_closure(lo: int, hi: int) -> bool:
    """True if [lo, hi] lies entirely within Friday 17:00 ET .. Sunday 18:00 ET."""
    t = from_ns(lo, ET)
    # find the Friday on or before lo
    fri = t.date() - dt.timedelta(days=(t.weekday() - 4) % 7)
    close = et_ns(fri, 17, 0)
    reopen = et_ns(fri + dt.timedelta(days=2), 18, 0)
    return close <= lo and hi < reopen


def session_for(day: str | dt.date, *, premarket_start: str = "04:00", opening_range_minutes: int = 15,
                first_minutes: int = 15) -> Session:
    """The session of trading date ``day``; :class:`CalendarError` if it is not a trading day."""
    day = parse_date(day)
    reason = holiday_reason(day)
    if reason is not None:
        raise CalendarError(f"{day} is not an XNYS trading day ({reason})")
    sched = _schedule()
    i = sched.index(day)
    if i == 0:
        raise CalendarError(f"{day} is the first session of the XNYS calendar range: no previous trading day")
    prev = dt.date.fromordinal(sched.days[i - 1])
    open_ns, close_ns = sched.opens[i], sched.closes[i]
    regular_close = et_ns(day, 16, 0)
    ph, pm = (int(x) for x in premarket_start.split(":"))
    return Session(
        date=day,
        start_ns=et_ns(prev, 17, 0),
        end_ns=et_ns(day, 17, 0),
        premarket_ns=et_ns(day, ph, pm),
        rth_open_ns=open_ns,
        rth_close_ns=close_ns,
        or_end_ns=open_ns + opening_range_minutes * MINUTE_NS,
        first_end_ns=open_ns + first_minutes * MINUTE_NS,
        early_close=close_ns < regular_close,
    )


def session_from_config(day: str | dt.date, config) -> Session:  # config: spymaster.config.Config
    s = config.session
    return session_for(day, premarket_start=s.premarket_start, opening_range_minutes=s.opening_range_minutes,
                       first_minutes=s.first_minutes)


def sessions_covering_utc_day(day: dt.date) -> list[dt.date]:
    """Trading dates whose session overlaps UTC day ``day`` (for writers of daily files)."""
    out = []
    for cand in trading_days(day - dt.timedelta(days=1), day + dt.timedelta(days=6)):
        if day in session_for(cand).utc_days():
            out.append(cand)
    return out
