"""Catch-up and overlap decisions: pure functions of fire times, a clock reading and a policy."""

import datetime as dt

import pytest

from scheduling.decisions import FIRE, ON_TIME_SECONDS, REPLACE, SKIP, CatchUp, overlap_action, plan_catchup

T = dt.datetime
HOURLY = [T(2026, 1, 1, h) for h in (10, 11, 12, 13)]


def test_nothing_due_fires_nothing():
    assert plan_catchup([], T(2026, 1, 1, 13), 3600) == CatchUp(None)


def test_an_on_time_fire_runs_even_with_no_catchup_window():
    assert plan_catchup([T(2026, 1, 1, 13)], T(2026, 1, 1, 13, 0, 3), 0) == CatchUp(T(2026, 1, 1, 13))
    late = T(2026, 1, 1, 13) + dt.timedelta(seconds=ON_TIME_SECONDS + 1)
    assert plan_catchup([T(2026, 1, 1, 13)], late, 0) == CatchUp(None, missed=[T(2026, 1, 1, 13)])


def test_fires_within_the_window_are_coalesced_into_the_latest_and_older_ones_are_missed():
    plan = plan_catchup(HOURLY, T(2026, 1, 1, 13, 10), 7200)
    assert plan.fire == T(2026, 1, 1, 13)
    assert plan.coalesced == [T(2026, 1, 1, 12)]
    assert plan.missed == [T(2026, 1, 1, 10), T(2026, 1, 1, 11)]


def test_a_gap_longer_than_the_window_misses_everything():
    plan = plan_catchup(HOURLY, T(2026, 1, 1, 15), 3600)
    assert plan == CatchUp(None, missed=HOURLY)


@pytest.mark.parametrize(
    ("policy", "active", "action"),
    [
        ("allow", False, FIRE),
        ("allow", True, FIRE),
        ("forbid", False, FIRE),
        ("forbid", True, SKIP),
        ("replace", False, FIRE),
        ("replace", True, REPLACE),
    ],
)
def test_overlap_policies(policy, active, action):
    assert overlap_action(policy, active) == action


def test_an_unknown_policy_is_a_bug():
    with pytest.raises(ValueError, match="sometimes"):
        overlap_action("sometimes", True)
