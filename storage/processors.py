"""Processors: validating a spec, storing it, reading it back."""

from __future__ import annotations

import re
import time
from enum import StrEnum
from typing import Any

from settings import Settings
from storage import audit
from storage.caching import AgeCache
from storage.errors import InvalidSpec, NotFound
from storage.models import Processor, utcnow

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
QUEUE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# repo@sha256:<64 hex> from a registry, or a local image id sha256:<64 hex>
PINNED_IMAGE_RE = re.compile(r"^(?:[a-z0-9][a-z0-9._:/-]*@)?sha256:[0-9a-f]{64}$")


class Network(StrEnum):
    """A processor's container network. "host" is deliberately absent: a processor never shares the worker's network stack."""

    NONE = "none"
    BRIDGE = "bridge"


SPEC_FIELDS = {
    "image",
    "command",
    "timeout_seconds",
    "resources",
    "network",
    "env",
    "queue",
    "concurrency",
    "retry",
    "enabled",
    "name",
}
RETRY_DEFAULTS = {
    "max_attempts": 1,
    "backoff_min_seconds": 1,
    "backoff_max_seconds": 60,
    "jitter": True,
    "retry_on_exit_codes": [75],
    "retry_on_timeout": False,
}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_processor_spec(name: str, body: Any, settings: Settings) -> dict:
    """Validate a processor definition; return model fields or raise InvalidSpec naming every bad field."""
    errors: list[tuple[str, str]] = []
    if not isinstance(body, dict):
        raise InvalidSpec([("body", "must be a JSON object")])
    if not NAME_RE.match(name or ""):
        errors.append(
            (
                "name",
                "must be 1-64 characters of a-z, 0-9, '-' or '_', starting with a letter or digit",
            )
        )
    if "name" in body and body["name"] != name:
        errors.append(("name", f"does not match the name in the path ({name!r})"))
    for unknown in sorted(set(body) - SPEC_FIELDS):
        errors.append((unknown, "unknown field"))

    image = body.get("image")
    if not isinstance(image, str) or not image:
        errors.append(
            (
                "image",
                "required: an image pinned by digest (repo@sha256:... or sha256:...)",
            )
        )
    elif not PINNED_IMAGE_RE.match(image):
        errors.append(
            (
                "image",
                f"{image!r} is not pinned by digest; use repo@sha256:<64 hex> or a local image id sha256:<64 hex>",
            )
        )

    command = body.get("command")
    if command is not None and not (isinstance(command, list) and command and all(isinstance(c, str) for c in command)):
        errors.append(("command", "must be a non-empty list of strings"))

    timeout = body.get("timeout_seconds", settings.default_timeout_seconds)
    if not _is_int(timeout) or not 1 <= timeout <= settings.max_timeout_seconds:
        errors.append(
            (
                "timeout_seconds",
                f"must be an integer from 1 to {settings.max_timeout_seconds}",
            )
        )

    resources = body.get("resources") or {}
    if not isinstance(resources, dict):
        errors.append(("resources", "must be an object with cpus, memory_mb, pids"))
        resources = {}
    for unknown in sorted(set(resources) - {"cpus", "memory_mb", "pids"}):
        errors.append((f"resources.{unknown}", "unknown field"))
    cpus = resources.get("cpus", settings.default_cpus)
    memory_mb = resources.get("memory_mb", settings.default_memory_mb)
    pids = resources.get("pids", settings.default_pids)
    if not _is_number(cpus) or not 0.01 <= cpus <= 64:
        errors.append(("resources.cpus", "must be a number from 0.01 to 64"))
    if not _is_int(memory_mb) or not 6 <= memory_mb <= 1_048_576:
        errors.append(("resources.memory_mb", "must be an integer from 6 to 1048576"))
    if not _is_int(pids) or not 1 <= pids <= 32768:
        errors.append(("resources.pids", "must be an integer from 1 to 32768"))

    network = body.get("network", "none")
    if network not in list(Network):
        errors.append(("network", f"must be one of {', '.join(Network)}"))

    env = body.get("env") or {}
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        errors.append(("env", "must be an object of string values"))
    elif any(k.startswith("DOCKYARD_") or k == "TRACEPARENT" for k in env):
        errors.append(("env", "must not set DOCKYARD_* or TRACEPARENT (Dockyard sets them)"))

    queue = body.get("queue", settings.default_queue)
    if not isinstance(queue, str) or not QUEUE_RE.match(queue):
        errors.append(("queue", "must be 1-64 characters of letters, digits, '.', '-' or '_'"))
    elif queue != settings.default_queue:
        errors.append(
            (
                "queue",
                f"only the {settings.default_queue!r} queue is served in this version",
            )
        )

    concurrency = body.get("concurrency")
    if concurrency is not None and (not _is_int(concurrency) or concurrency < 1):
        errors.append(("concurrency", "must be a positive integer or null"))

    retry = body.get("retry") or {}
    if not isinstance(retry, dict):
        errors.append(("retry", "must be an object"))
        retry = {}
    for unknown in sorted(set(retry) - set(RETRY_DEFAULTS)):
        errors.append((f"retry.{unknown}", "unknown field"))
    retry = {**RETRY_DEFAULTS, **retry}
    errors.extend(_retry_errors(retry, settings))

    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        errors.append(("enabled", "must be true or false"))

    if not errors and timeout + retry["backoff_max_seconds"] >= settings.broker_consumer_timeout_seconds:
        # NOTE: RabbitMQ redelivers a message held unacked past its
        # consumer_timeout: a run and a retry's wait must fit inside it.
        errors.append(
            (
                "timeout_seconds",
                f"timeout_seconds ({timeout}) + retry.backoff_max_seconds ({retry['backoff_max_seconds']}) must stay below "
                f"RabbitMQ's consumer_timeout ({settings.broker_consumer_timeout_seconds}s, DOCKYARD_BROKER_CONSUMER_TIMEOUT_SECONDS)",
            )
        )
    if errors:
        raise InvalidSpec(errors)
    return {
        "name": name,
        "image": image,
        "command": command,
        "timeout_seconds": timeout,
        "cpus": float(cpus),
        "memory_mb": memory_mb,
        "pids": pids,
        "network": network,
        "env": env,
        "queue": queue,
        "concurrency": concurrency,
        "retry": retry,
        "enabled": enabled,
    }


def _retry_errors(retry: dict, settings: Settings) -> list[tuple[str, str]]:
    errors = []
    if not _is_int(retry["max_attempts"]) or not 1 <= retry["max_attempts"] <= 100:
        errors.append(("retry.max_attempts", "must be an integer from 1 to 100"))
    low, high = retry["backoff_min_seconds"], retry["backoff_max_seconds"]
    if not _is_number(low) or low < 0:
        errors.append(("retry.backoff_min_seconds", "must be a number >= 0"))
    if not _is_number(high) or high > settings.max_backoff_seconds:
        errors.append(("retry.backoff_max_seconds", f"must be a number up to {settings.max_backoff_seconds}"))
    elif _is_number(low) and high < low:
        errors.append(("retry.backoff_max_seconds", "must not be below retry.backoff_min_seconds"))
    for flag in ("jitter", "retry_on_timeout"):
        if not isinstance(retry[flag], bool):
            errors.append((f"retry.{flag}", "must be true or false"))
    codes = retry["retry_on_exit_codes"]
    if not isinstance(codes, list) or not all(_is_int(c) and 1 <= c <= 255 for c in codes):
        errors.append(("retry.retry_on_exit_codes", "must be a list of exit codes from 1 to 255"))
    return errors


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


def processor_as_dict(p: Processor) -> dict:
    return {
        "name": p.name,
        "image": p.image,
        "command": p.command,
        "timeout_seconds": p.timeout_seconds,
        "resources": {"cpus": p.cpus, "memory_mb": p.memory_mb, "pids": p.pids},
        "network": p.network,
        "env": p.env,
        "queue": p.queue,
        "concurrency": p.concurrency,
        "retry": p.retry,
        "enabled": p.enabled,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }
