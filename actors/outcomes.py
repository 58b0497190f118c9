"""Decide what a finished container means for its attempt and its run."""

from __future__ import annotations

from dataclasses import dataclass

from actors.containers import ContainerResult
from storage import run_states

SUCCEEDED = "succeeded"
FAILED = "failed"
TIMED_OUT = "timed_out"
OOM_KILLED = "oom_killed"
CANCELLED = "cancelled"
INFRASTRUCTURE_ERROR = "infrastructure_error"
WORKER_LOST = "worker_lost"


@dataclass(frozen=True)
class Verdict:
    attempt_outcome: str
    run_state: str
    reason: str | None = None
    message: str | None = None


def judge(result: ContainerResult, *, timeout_seconds: float, memory_mb: int) -> Verdict:
    """Map a container's end to the attempt outcome and the run's next state."""
    if result.stopped:
        return Verdict(CANCELLED, run_states.CANCELLED, "cancelled", result.stopped)
    if result.timed_out:
        return Verdict(
            TIMED_OUT,
            run_states.TIMED_OUT,
            "timed_out",
            f"ran past its {timeout_seconds:g}s time limit and was killed",
        )
    if result.oom_killed:
        return Verdict(
            OOM_KILLED,
            run_states.FAILED,
            "oom_killed",
            f"killed for going over its {memory_mb} MB memory limit (exit {result.exit_code})",
        )
    if result.exit_code == 0:
        return Verdict(SUCCEEDED, run_states.SUCCEEDED)
    return Verdict(FAILED, run_states.FAILED, "exit_code", f"exited with code {result.exit_code}")
