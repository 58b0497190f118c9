"""Cron fire times in a time zone, daylight-saving changes included (a controlled clock: explicit instants)."""

import datetime as dt

import pytest

from storage.cron import CronError, fires_between, next_fire_after, shortest_interval, trigger

T = dt.datetime


def hours(fires):
    return [f.strftime("%m-%d %H:%M") for f in fires]


def test_a_0230_berlin_job_runs_once_on_both_transition_days():
    # Spring: 02:30 does not exist on 29 March; it runs once, as the clock jumps (03:30 CEST = 01:30 UTC).
    spring = fires_between("30 2 * * *", "Europe/Berlin", T(2026, 3, 27), T(2026, 3, 31))
    assert hours(spring) == ["03-27 01:30", "03-28 01:30", "03-29 01:30", "03-30 00:30"]
    # Autumn: 02:30 happens twice on 25 October; it runs once, at the first.
    autumn = fires_between("30 2 * * *", "Europe/Berlin", T(2026, 10, 23), T(2026, 10, 27))
    assert hours(autumn) == ["10-23 00:30", "10-24 00:30", "10-25 00:30", "10-26 01:30"]


def test_the_repeated_hour_is_skipped_across_calls_given_the_previous_fire():
    first = T(2026, 10, 25, 0, 30)  # 02:30 CEST
    assert next_fire_after("30 2 * * *", "Europe/Berlin", first, previous=first) == T(2026, 10, 26, 1, 30)


def test_wildcard_hours_keep_real_time_through_both_changes():
    autumn = fires_between("*/30 * * * *", "Europe/Berlin", T(2026, 10, 24, 23, 50), T(2026, 10, 25, 2, 10))
    assert hours(autumn) == ["10-25 00:00", "10-25 00:30", "10-25 01:00", "10-25 01:30", "10-25 02:00"]
    spring = fires_between("0 * * * *", "Europe/Berlin", T(2026, 3, 28, 23, 50), T(2026, 3, 29, 3, 10))
    assert hours(spring) == ["03-29 00:00", "03-29 01:00", "03-29 02:00", "03-29 03:00"]


def test_other_zones_and_utc():
    assert hours(fires_between("30 1 * * *", "America/New_York", T(2026, 10, 31), T(2026, 11, 3))) == [
        "10-31 05:30",
        "11-01 05:30",
        "11-02 06:30",
    ]
    assert next_fire_after("0 0 * * *", "UTC", T(2026, 1, 1, 0, 0)) == T(2026, 1, 2)  # strictly after
    assert next_fire_after("0 0 30 2 *", "UTC", T(2026, 1, 1)) is None  # 30 February never comes


def test_shortest_interval():
    assert shortest_interval("*/5 * * * *", "UTC", T(2026, 1, 1)) == dt.timedelta(minutes=5)
    assert shortest_interval("0 9,10 * * 1-5", "Europe/Berlin", T(2026, 1, 1)) == dt.timedelta(hours=1)
    assert shortest_interval("0 0 30 2 *", "UTC", T(2026, 1, 1)) is None


@pytest.mark.parametrize(
    ("expression", "timezone", "field"),
    [
        ("* * * *", "UTC", "cron"),
        ("61 * * * *", "UTC", "cron"),
        ("* * * * * *", "UTC", "cron"),
        ("banana", "UTC", "cron"),
        ("* * * * *", "Mars/Olympus", "timezone"),
        ("* * * * *", "", "timezone"),
        ("* * * * *", "../etc/passwd", "timezone"),
    ],
)
def test_bad_expressions_and_zones_name_their_field(expression, timezone, field):
    with pytest.raises(CronError) as caught:
        trigger(expression, timezone)
    assert caught.value.field == field


def test_a_fire_one_microsecond_after_is_after():
    just_before = T(2026, 1, 1, 10) - dt.timedelta(microseconds=1)
    assert next_fire_after("0 * * * *", "UTC", just_before) == T(2026, 1, 1, 10)
    assert fires_between("0 * * * *", "UTC", just_before, T(2026, 1, 1, 11)) == [T(2026, 1, 1, 10), T(2026, 1, 1, 11)]


def test_the_daylight_saving_fires_are_found_from_any_instant():
    berlin = "30 2 * * *", "Europe/Berlin"
    # Spring: from just before the moved fire (03:30 CEST = 01:30 UTC), after the clock jumped.
    assert next_fire_after(*berlin, T(2026, 3, 29, 1, 30) - dt.timedelta(microseconds=1)) == T(2026, 3, 29, 1, 30)
    # Autumn: from the first 02:30 (00:30 UTC) without being told it was a fire, the repeat is skipped.
    assert next_fire_after(*berlin, T(2026, 10, 25, 0, 30)) == T(2026, 10, 26, 1, 30)
    assert next_fire_after(*berlin, T(2026, 10, 25, 0, 30, 30)) == T(2026, 10, 26, 1, 30)


def weekdays(fires):
    return [f.strftime("%a %d") for f in fires]


@pytest.mark.parametrize(
    ("weekday", "days"),
    [
        ("1", ["Mon 05", "Mon 12"]),
        ("0", ["Sun 04", "Sun 11"]),
        ("7", ["Sun 04", "Sun 11"]),
        ("sun", ["Sun 04", "Sun 11"]),
        ("1-5", ["Mon 05", "Tue 06", "Wed 07", "Thu 08", "Fri 09", "Mon 12"]),
        ("5-7", ["Sun 04", "Fri 09", "Sat 10", "Sun 11"]),
        ("fri-sun", ["Sun 04", "Fri 09", "Sat 10", "Sun 11"]),
        ("*/3", ["Sun 04", "Wed 07", "Sat 10", "Sun 11"]),  # 0, 3, 6: Sunday, Wednesday, Saturday
    ],
)
def test_day_of_week_is_read_as_cron_reads_it(weekday, days):
    # 2026-01-03 is a Saturday; fires from Saturday 3 January 10:00 to Monday 12 January.
    fires = fires_between(f"0 9 * * {weekday}", "UTC", T(2026, 1, 3, 10), T(2026, 1, 12, 23))
    assert weekdays(fires) == days


def test_both_day_fields_restricted_fire_when_either_matches():
    # The 1st of the month, and every Monday (cron's rule; APScheduler alone wants both).
    fires = fires_between("0 0 1 * 1", "UTC", T(2026, 1, 20), T(2026, 2, 17))
    assert weekdays(fires) == ["Mon 26", "Sun 01", "Mon 02", "Mon 09", "Mon 16"]


@pytest.mark.parametrize("bad", ["8", "mon-funday", "5-1", "*/0"])
def test_bad_days_of_week_name_the_cron_field(bad):
    with pytest.raises(CronError) as caught:
        trigger(f"0 9 * * {bad}", "UTC")
    assert caught.value.field == "cron"


def test_a_daily_midnight_job_runs_on_a_day_whose_midnight_does_not_exist():
    # Chile springs forward at 00:00 on 6 September 2026 (to 01:00): the midnight job runs at 01:00 -03.
    fires = fires_between("0 0 * * *", "America/Santiago", T(2026, 9, 4, 12), T(2026, 9, 7, 12))
    assert hours(fires) == ["09-05 04:00", "09-06 04:00", "09-07 03:00"]
