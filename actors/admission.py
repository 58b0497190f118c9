"""Whether a run may be made: the rules every door (the API, the CLI, the scheduler) has checked by the dispatcher.

A rule that says no returns a `Refusal`, a value: the API turns it into a
problem (404, 409 or 422 by its kind), the scheduler into a fire record,
the CLI into an error line. Nothing is written before these rules pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from storage.errors import NotFound
from storage.models import Processor, Run
from storage.processors import ProcessorCache
from storage.run_states import TERMINAL, RunState


class RefusalKind(StrEnum):
    NOT_FOUND = "not_found"  # what the run would need does not exist
    CONFLICT = "conflict"  # the thing asked about is in the wrong state for it
    INVALID = "invalid"  # a field breaks a rule


@dataclass(frozen=True)
class Refusal:
    """Why no run was made: the field at fault and a sentence saying why."""

    kind: RefusalKind
    field: str
    message: str


def processor_for_run(processors: ProcessorCache, name: str) -> Processor | Refusal:
    """The processor a new run would use: it must be registered and enabled."""
    try:
        processor = processors.get(name)
    except NotFound:
        return Refusal(RefusalKind.NOT_FOUND, "processor", f"processor {name!r} is not registered")
    if not processor.enabled:
        return Refusal(RefusalKind.INVALID, "processor", f"processor {name!r} is disabled")
    return processor


def timeout_refusal(processor: Processor, timeout_seconds: int | None) -> Refusal | None:
    """A run may lower its processor's time limit, never raise it."""
    if timeout_seconds is not None and timeout_seconds > processor.timeout_seconds:
        return Refusal(RefusalKind.INVALID, "timeout_seconds", f"must be at most the processor's {processor.timeout_seconds}")
    return None


def replay_refusal(original: Run) -> Refusal | None:
    """Only a run that ended other than succeeded is replayed."""
    if original.state not in TERMINAL or original.state == RunState.SUCCEEDED:
        return Refusal(
            RefusalKind.CONFLICT,
            "state",
            f"run {original.id} is {original.state}: only a run that ended other than succeeded can be replayed",
        )
    return None


def replay_processor_refusal(processors: ProcessorCache, original: Run) -> Refusal | None:
    """A replay runs the original's processor as registered now: it must still be there and enabled."""
    if isinstance(processor_for_run(processors, original.processor), Refusal):
        return Refusal(
            RefusalKind.INVALID,
            "processor",
            f"processor {original.processor!r} is disabled or no longer registered; the replay would be refused",
        )
    return None
