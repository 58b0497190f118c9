"""storage.times.naive_utc: the one reading of a time that the API, the console and the CLI share."""

import datetime as dt

import pytest

from storage.times import naive_utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01T10:00:00Z", dt.datetime(2026, 12, 1, 10)),
        ("2026-12-01T11:30:00+01:30", dt.datetime(2026, 12, 1, 10)),
        ("2026-12-01T10:00:00", dt.datetime(2026, 12, 1, 10)),  # no offset: UTC
        ("2026-12-01", dt.datetime(2026, 12, 1)),
    ],
)
def test_times_are_read_as_naive_utc(text, expected):
    assert naive_utc(text) == expected and naive_utc(text).tzinfo is None


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "", "0001-01-01T00:00:00+01:00"])
def test_what_is_not_a_time_or_out_of_range_in_utc_is_a_value_error(text):
    with pytest.raises(ValueError):
        naive_utc(text)
