"""What happens to a run after an attempt: finish it, retry it after a backoff, or dead-letter it.

Pure functions of the attempt's verdict, the processor's retry policy and
the run's history, so every branch is unit-tested without a broker.
"""

from __future__ import annotations

from dataclasses import dataclass

from dramatiq.common import compute_backoff

from actors.outcomes import Verdict
from storage.run_states import AttemptOutcome, RunState

# Attempt outcomes that are the engine's fault, not the processor's: always
# retried (up to the infrastructure budget), never counted against max_attempts.
INFRASTRUCTURE_OUTCOMES = frozenset({AttemptOutcome.INFRASTRUCTURE_ERROR, AttemptOutcome.WORKER_LOST})
# Verdict reasons that no retry can fix.
NEVER_RETRIED_REASONS = frozenset({"image_refused", "processor_missing", "processor_disabled"})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 1
    backoff_min_seconds: float = 1
    backoff_max_seconds: float = 60
    jitter: bool = True
    retry_on_exit_codes: tuple[int, ...] = (75,)
    retry_on_timeout: bool = False

    @classmethod
    def from_processor(cls, retry: dict | None, max_attempts: int) -> RetryPolicy:
        """The policy stored with a processor; `max_attempts` is the run's own (fixed when it was submitted)."""
        retry = retry or {}
        return cls(
            max_attempts=max_attempts,
            backoff_min_seconds=retry.get("backoff_min_seconds", cls.backoff_min_seconds),
            backoff_max_seconds=retry.get("backoff_max_seconds", cls.backoff_max_seconds),
            jitter=retry.get("jitter", cls.jitter),
            retry_on_exit_codes=tuple(retry.get("retry_on_exit_codes", cls.retry_on_exit_codes)),
            retry_on_timeout=retry.get("retry_on_timeout", cls.retry_on_timeout),
        )


@dataclass(frozen=True)
class Decision:
    run_state: RunState  # a terminal state, or RETRYING
    reason: str | None
    message: str | None
    delay_seconds: float = 0.0


def backoff_seconds(retry_number: int, policy: RetryPolicy) -> float:
    """Delay before retry number `retry_number` (1 for the first): Dramatiq's exponential backoff, kept within the policy's bounds."""
    low, high = policy.backoff_min_seconds, policy.backoff_max_seconds
    if high <= 0:
        return 0.0
    _, delay_ms = compute_backoff(retry_number - 1, factor=max(1, int(low * 1000)), jitter=policy.jitter, max_backoff=int(high * 1000))
    return min(high, max(low, delay_ms / 1000))


def is_retryable(verdict: Verdict, exit_code: int | None, policy: RetryPolicy) -> bool:
    """Would the processor's policy retry this attempt's outcome (attempts allowing)?"""
    if verdict.reason in NEVER_RETRIED_REASONS:
        return False
    if verdict.attempt_outcome == AttemptOutcome.TIMED_OUT:
        return policy.retry_on_timeout
    if verdict.attempt_outcome == AttemptOutcome.FAILED:
        return exit_code is not None and exit_code in policy.retry_on_exit_codes
    return False  # oom_killed, cancelled: the same run would end the same way


def needs_counts(verdict: Verdict) -> bool:
    """Whether `decide` needs the run's attempt counts for this verdict: not for an attempt that succeeded or
    was cancelled (the run's end follows from the verdict alone), so the worker skips reading them."""
    return verdict.attempt_outcome not in (AttemptOutcome.SUCCEEDED, AttemptOutcome.CANCELLED)


def decide(
    verdict: Verdict,
    *,
    exit_code: int | None,
    policy: RetryPolicy,
    processor_attempts: int,
    infrastructure_failures: int,
    infrastructure_retries: int,
) -> Decision:
    """The run's next state after an attempt.

    `processor_attempts` counts the attempts so far (this one included)
    that reached the processor; `infrastructure_failures` those (this one
    included) that the engine failed.
    """
    if not needs_counts(verdict):
        return Decision(verdict.run_state, verdict.reason, verdict.message)
    if verdict.attempt_outcome in INFRASTRUCTURE_OUTCOMES and verdict.reason not in NEVER_RETRIED_REASONS:
        if infrastructure_failures <= infrastructure_retries:
            delay = backoff_seconds(infrastructure_failures, policy)
            return Decision(RunState.RETRYING, verdict.reason, verdict.message, delay)
        return Decision(
            RunState.DEAD_LETTER,
            verdict.reason,
            f"{verdict.message} (infrastructure failures: {infrastructure_failures}, retries allowed: {infrastructure_retries})",
        )
    if not is_retryable(verdict, exit_code, policy):
        return Decision(verdict.run_state, verdict.reason, verdict.message)
    if processor_attempts < policy.max_attempts:
        return Decision(RunState.RETRYING, verdict.reason, verdict.message, backoff_seconds(processor_attempts, policy))
    return Decision(
        RunState.DEAD_LETTER,
        verdict.reason,
        f"{verdict.message}; no attempts left ({processor_attempts} of {policy.max_attempts})",
    )
