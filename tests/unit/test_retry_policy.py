"""Which outcome leads where, and how long a retry waits."""

import pytest

from actors.outcomes import Verdict
from actors.retry_policy import RetryPolicy, backoff_seconds, decide
from storage.run_states import AttemptOutcome, RunState

VERDICTS = {
    "succeeded": Verdict(AttemptOutcome.SUCCEEDED, RunState.SUCCEEDED),
    "failed": Verdict(AttemptOutcome.FAILED, RunState.FAILED, "exit_code", "exited"),
    "timed_out": Verdict(AttemptOutcome.TIMED_OUT, RunState.TIMED_OUT, "timed_out", "too slow"),
    "oom_killed": Verdict(AttemptOutcome.OOM_KILLED, RunState.FAILED, "oom_killed", "memory"),
    "cancelled": Verdict(AttemptOutcome.CANCELLED, RunState.CANCELLED, "cancelled", "by request"),
    "infrastructure": Verdict(AttemptOutcome.INFRASTRUCTURE_ERROR, RunState.FAILED, AttemptOutcome.INFRASTRUCTURE_ERROR, "engine down"),
    "worker_lost": Verdict(AttemptOutcome.WORKER_LOST, RunState.FAILED, AttemptOutcome.WORKER_LOST, "gone"),
    "image_refused": Verdict(AttemptOutcome.FAILED, RunState.FAILED, "image_refused", "digest"),
}


def outcome(verdict, exit_code=None, *, attempts=1, infra=0, infra_retries=3, **policy):
    policy = RetryPolicy(**{"max_attempts": 3, "backoff_min_seconds": 1, "backoff_max_seconds": 8, **policy})
    return decide(
        VERDICTS[verdict],
        exit_code=exit_code,
        policy=policy,
        processor_attempts=attempts,
        infrastructure_failures=infra,
        infrastructure_retries=infra_retries,
    )


@pytest.mark.parametrize(
    ("verdict", "exit_code", "kw", "state"),
    [
        ("succeeded", 0, {}, RunState.SUCCEEDED),
        ("failed", 75, {}, RunState.RETRYING),  # 75 is retried by default
        ("failed", 1, {}, RunState.FAILED),  # not listed: never retried
        ("failed", 3, {"retry_on_exit_codes": (3,)}, RunState.RETRYING),
        ("failed", 75, {"retry_on_exit_codes": ()}, RunState.FAILED),
        ("failed", 75, {"attempts": 3}, RunState.DEAD_LETTER),  # retryable, none left
        ("failed", 1, {"attempts": 3}, RunState.FAILED),  # not retryable: failed, not dead-lettered
        ("failed", 75, {"max_attempts": 1}, RunState.DEAD_LETTER),
        ("timed_out", None, {}, RunState.TIMED_OUT),
        ("timed_out", None, {"retry_on_timeout": True}, RunState.RETRYING),
        ("timed_out", None, {"retry_on_timeout": True, "attempts": 3}, RunState.DEAD_LETTER),
        ("oom_killed", 137, {"retry_on_exit_codes": (137,)}, RunState.FAILED),
        ("cancelled", 137, {}, RunState.CANCELLED),
        ("image_refused", None, {}, RunState.FAILED),
        # Engine failures: retried whatever max_attempts says, up to their own budget.
        ("infrastructure", None, {"infra": 1, "max_attempts": 1}, RunState.RETRYING),
        ("infrastructure", None, {"infra": 3}, RunState.RETRYING),
        ("infrastructure", None, {"infra": 4}, RunState.DEAD_LETTER),
        ("worker_lost", None, {"infra": 1, "attempts": 0}, RunState.RETRYING),
        ("worker_lost", None, {"infra": 1, "infra_retries": 0}, RunState.DEAD_LETTER),
    ],
)
def test_outcome_leads_to(verdict, exit_code, kw, state):
    decision = outcome(verdict, exit_code, **kw)
    assert decision.run_state == state
    if state == RunState.RETRYING:
        assert 1 <= decision.delay_seconds <= 8
    else:
        assert decision.delay_seconds == 0


def test_dead_letter_says_why():
    decision = outcome("failed", 75, attempts=3)
    assert decision.reason == "exit_code" and "no attempts left (3 of 3)" in decision.message


@pytest.mark.parametrize("retry", range(1, 12))
def test_backoff_with_jitter_stays_within_bounds(retry):
    policy = RetryPolicy(backoff_min_seconds=2, backoff_max_seconds=30, jitter=True)
    delays = [backoff_seconds(retry, policy) for _ in range(200)]
    assert all(2 <= d <= 30 for d in delays)
    base = min(30, 2 * 2 ** (retry - 1))
    if base * 2 <= 30:
        # Dramatiq's jitter spreads each delay over [base, 2 * base).
        assert min(delays) >= base and max(delays) < 2 * base
        assert max(delays) - min(delays) > base * 0.2, "no jitter"
    else:
        # Past the cap it keeps jitter in the upper half.
        assert min(delays) >= 15


def test_backoff_without_jitter_doubles_up_to_the_cap():
    policy = RetryPolicy(backoff_min_seconds=1, backoff_max_seconds=10, jitter=False)
    assert [backoff_seconds(n, policy) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_zero_backoff_retries_at_once():
    assert backoff_seconds(3, RetryPolicy(backoff_min_seconds=0, backoff_max_seconds=0)) == 0
