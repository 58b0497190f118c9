"""Decide what a finished container means for its attempt and its run."""

from __future__ import annotations

from dataclasses import dataclass

from actors.containers import ContainerResult
from storage.run_states import AttemptOutcome, RunState


@dataclass(frozen=True)
class Verdict:
    attempt_outcome: AttemptOutcome
    run_state: RunState
    reason: str | None = None
    message: str | None = None


def judge(result: ContainerResult, *, timeout_seconds: float, memory_mb: int) -> Verdict:
    """Map a container's end to the attempt outcome and the run's next state."""
    if result.stopped:
        return Verdict(AttemptOutcome.CANCELLED, RunState.CANCELLED, "cancelled", result.stopped)
    if result.timed_out:
        return Verdict(
            AttemptOutcome.TIMED_OUT,
            RunState.TIMED_OUT,
            "timed_out",
            f"ran past its {timeout_seconds:g}s time limit and was killed",
        )
    if result.oom_killed:
        return Verdict(
            AttemptOutcome.OOM_KILLED,
            RunState.FAILED,
            "oom_killed",
            f"killed for going over its {memory_mb} MB memory limit (exit {result.exit_code})",
        )
    if result.exit_code == 0:
        return Verdict(AttemptOutcome.SUCCEEDED, RunState.SUCCEEDED)
    return Verdict(AttemptOutcome.FAILED, RunState.FAILED, "exit_code", f"exited with code {result.exit_code}")
