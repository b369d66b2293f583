"""Budget periods in the tenant's time zone: boundaries at local midnight, DST days, item keys."""

from datetime import UTC, datetime, timedelta

import pytest
from tollgate.periods import budget_pk, ledger_key, period_of, periods_of


def test_new_york_month_begins_at_local_midnight_not_utc():
    # 2026-12-01 03:00 UTC is still 30 November, 22:00, in New York.
    at = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    month = period_of("month", at, "America/New_York")
    assert month.key == "2026-11"
    assert month.sort_key == "M#2026-11"
    assert month.end == datetime(2026, 12, 1, 5, 0, tzinfo=UTC)  # resets at local midnight (EST)
    assert period_of("month", month.end, "America/New_York").key == "2026-12"


def test_daylight_saving_days_last_23_and_25_hours_and_tile_time():
    spring = period_of("day", datetime(2026, 3, 29, 12, tzinfo=UTC), "Europe/Berlin")
    autumn = period_of("day", datetime(2026, 10, 25, 12, tzinfo=UTC), "Europe/Berlin")
    assert spring.end - spring.start == timedelta(hours=23)
    assert autumn.end - autumn.start == timedelta(hours=25)
    # Consecutive days leave no gap and never overlap.
    day = period_of("day", datetime(2026, 3, 27, tzinfo=UTC), "Europe/Berlin")
    for _ in range(4):
        following = day.next()
        assert following.start == day.end
        day = following


def test_every_instant_is_in_its_period():
    start = datetime(2026, 10, 24, tzinfo=UTC)
    for minutes in range(0, 3 * 24 * 60, 17):
        at = start + timedelta(minutes=minutes)
        for kind, period in periods_of(at, "America/Sao_Paulo").items():
            assert period.contains(at), (kind, at, period)


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="no time zone"):
        period_of("day", datetime(2026, 12, 3), "UTC")


def test_item_keys():
    day = period_of("day", datetime(2026, 12, 3, 12, tzinfo=UTC), "UTC")
    assert budget_pk("acme") == "BUDGET#acme"
    assert ledger_key("acme", "acme-chat", day).pk == "BUDGET#acme#acme-chat"
    assert ledger_key("acme", None, day).sk == "D#2026-12-03"
