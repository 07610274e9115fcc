"""Sessions, RTH, early closes and the UTC-day files a date needs (SPEC §3)."""

from __future__ import annotations

import datetime as dt

import pytest

from spymaster.calendar import fmt_et, holiday_reason, session_for, trading_days
from spymaster.errors import CalendarError


def test_session_window_is_prev_trading_day_1700_to_d_1700_et():
    s = session_for("2025-12-17")
    assert fmt_et(s.start_ns) == "2025-12-16 17:00:00 ET"
    assert fmt_et(s.end_ns) == "2025-12-17 17:00:00 ET"
    assert fmt_et(s.rth_open_ns) == "2025-12-17 09:30:00 ET"
    assert fmt_et(s.rth_close_ns) == "2025-12-17 16:00:00 ET"
    assert s.utc_days() == [dt.date(2025, 12, 16), dt.date(2025, 12, 17)]


def test_monday_session_covers_sunday_evening_and_skips_the_weekend_closure():
    s = session_for("2025-12-15")
    assert fmt_et(s.start_ns) == "2025-12-12 17:00:00 ET"
    assert s.utc_days() == [dt.date(2025, 12, 14), dt.date(2025, 12, 15)]


def test_early_close_shortens_rth_from_the_calendar():
    s = session_for("2025-11-28")  # day after Thanksgiving
    assert s.early_close and fmt_et(s.rth_close_ns) == "2025-11-28 13:00:00 ET"
    assert s.expiry_ns == s.rth_close_ns


def test_holiday_is_not_a_trading_day():
    assert holiday_reason(dt.date(2025, 12, 25)) == "exchange holiday"
    assert holiday_reason(dt.date(2025, 12, 20)) == "weekend"
    with pytest.raises(CalendarError, match="not an XNYS trading day"):
        session_for("2025-12-25")


def test_session_after_a_holiday_spans_three_utc_days():
    s = session_for("2025-12-26")
    assert fmt_et(s.start_ns) == "2025-12-24 17:00:00 ET"
    assert s.utc_days() == [dt.date(2025, 12, 24), dt.date(2025, 12, 25), dt.date(2025, 12, 26)]


def test_dst_is_respected():
    summer = session_for("2025-07-01")
    assert (summer.rth_open_ns // 10**9) % 86400 == 13 * 3600 + 30 * 60  # 09:30 EDT = 13:30 UTC
    winter = session_for("2025-12-01")
    assert (winter.rth_open_ns // 10**9) % 86400 == 14 * 3600 + 30 * 60  # 09:30 EST = 14:30 UTC


def test_trading_days_excludes_weekends_and_holidays():
    days = trading_days(dt.date(2025, 12, 22), dt.date(2025, 12, 28))
    assert days == [dt.date(2025, 12, 22), dt.date(2025, 12, 23), dt.date(2025, 12, 24), dt.date(2025, 12, 26)]


def test_cached_schedule_is_the_exchange_calendars_schedule(tmp_path, monkeypatch):
    import spymaster.calendar as cal

    monkeypatch.setenv("SPYMASTER_CACHE_DIR", str(tmp_path))
    cal._schedule.cache_clear()
    try:
        built = cal._schedule()                   # builds from the library and writes the cache
        assert list(tmp_path.glob("xnys-schedule-*.json"))
        cal._schedule.cache_clear()
        cached = cal._schedule()                  # read back from the cache
        assert cached == built
        xnys = cal._xnys()
        for day in ("2025-11-28", "2025-12-24", "2026-07-02", "2024-03-28"):
            i = cached.index(dt.date.fromisoformat(day))
            assert cached.opens[i] == cal.to_ns(xnys.session_open(day).to_pydatetime())
            assert cached.closes[i] == cal.to_ns(xnys.session_close(day).to_pydatetime())
        assert len(cached.days) == len(xnys.sessions)
    finally:
        cal._schedule.cache_clear()


def test_dates_outside_the_calendar_range_are_refused():
    with pytest.raises(CalendarError, match="outside the XNYS calendar range"):
        session_for("1990-01-02")
