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
