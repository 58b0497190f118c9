"""Processors: checking a spec (its shape is storage/specs.py's), storing it with its audit record, reading it back."""

from __future__ import annotations

import time
from typing import Any

from settings import Settings
from storage import audit
from storage.caching import AgeCache
from storage.errors import InvalidSpec, NotFound
from storage.models import Processor, utcnow
from storage.specs import ProcessorSpec, checked


def parse_processor_spec(name: str, body: Any, settings: Settings) -> dict:
    """Check a processor definition (storage/specs.py); return the row's fields or raise InvalidSpec naming every bad field."""
    spec = checked(ProcessorSpec, body, settings)
    if errors := spec.problems(name, settings):
        raise InvalidSpec(errors)
    return spec.stored(name, settings)


def put_processor(fields: dict, *, actor: str) -> tuple[Processor, bool]:
    """Create or replace a processor (fields from parse_processor_spec), audited as `actor`; return it and
    whether it was created. Recorded as processor.add, or processor.change naming what differs (nothing
    if nothing does)."""
    name = fields["name"]
    with audit.change(actor, "processor.change", name) as entry:
        current = Processor.get_or_none(Processor.name == name)
        now = utcnow()
        if current is None:
            processor = Processor.create(**fields, created_at=now, updated_at=now)
            entry.action, entry.detail = "processor.add", {"image": processor.image}
            return processor, True
        entry.detail = audit.redacted({k: list(v) for k, v in spec_differences(current, fields).items()})
        entry.skip = not entry.detail
        Processor.update(**fields, updated_at=now).where(Processor.name == name).execute()
    return Processor.get_by_id(name), False


def disable_processor(name: str, *, actor: str) -> bool:
    """Stop a processor taking new runs (its history stays), audited as `actor`; False if it was not enabled."""
    with audit.change(actor, "processor.disable", name, detail={"enabled": [True, False]}) as entry:
        changed = Processor.update(enabled=False, updated_at=utcnow()).where((Processor.name == name) & Processor.enabled).execute()
        entry.skip = changed == 0
    return changed == 1


def spec_differences(current: Processor, spec: dict) -> dict[str, tuple]:
    """{field: (stored, new)} where a spec from parse_processor_spec differs from what is stored,
    fields named as a spec spells them (`resources.memory_mb`)."""
    differences = {}
    for column, value in spec.items():
        stored = getattr(current, column)
        if stored != value:
            label = f"resources.{column}" if column in ("cpus", "memory_mb", "pids") else column
            differences[label] = (stored, value)
    return differences


def get_processor(name: str) -> Processor:
    processor = Processor.get_or_none(Processor.name == name)
    if processor is None:
        raise NotFound("processor", name)
    return processor


def run_fields(processor: Processor, timeout_seconds: int | None = None) -> dict:
    """What a new run takes from its processor: queue, time limit (a run may lower it) and attempts."""
    return {
        "processor": processor.name,
        "queue": processor.queue,
        "timeout_seconds": timeout_seconds or processor.timeout_seconds,
        "max_attempts": (processor.retry or {}).get("max_attempts", 1),
    }


class ProcessorCache:
    """Processors as read at most `max_age_seconds` ago: the submit path's lookup.

    A change made through this process is seen at once (`forget`); one made
    elsewhere within `max_age_seconds`. Unknown names are never cached.
    """

    def __init__(self, max_age_seconds: float = 1.0, clock=time.monotonic):
        self._cache: AgeCache[Processor] = AgeCache(max_age_seconds, clock)

    def get(self, name: str) -> Processor:
        return self._cache.get(name, lambda: get_processor(name))

    def forget(self, name: str) -> None:
        self._cache.forget(name)


def list_processors() -> list[Processor]:
    return list(Processor.select().order_by(Processor.name))
