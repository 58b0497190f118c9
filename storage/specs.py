"""What a valid spec is: the shapes of a run submission, a processor and a schedule, each written once.

The same models check what a client sends (`checked`: InvalidSpec naming
every bad field, which the API answers with 422) and describe it in
/openapi.json (web/openapi.py derives the schemas from them). A field's rule
in words is its `Rule`: the message a client reads, beside the constraint.
Rules that need the settings or the database (a time limit against
RabbitMQ's consumer_timeout, a schedule's processor) are the models'
`problems` methods, next to the fields they concern.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from settings import Settings
from storage.errors import InvalidSpec

M = TypeVar("M", bound=BaseModel)


class Priority(StrEnum):
    """A run's place in its queue, lowest first (the broker's message priority follows this order)."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


class Overlap(StrEnum):
    """What a fire does while an earlier run of its schedule has not ended (as Kubernetes CronJob's concurrencyPolicy)."""

    ALLOW = "allow"  # fire anyway
    FORBID = "forbid"  # skip this fire
    REPLACE = "replace"  # cancel the earlier run, then fire


class Network(StrEnum):
    """A processor's container network. "host" is deliberately absent: a processor never shares the worker's network stack."""

    NONE = "none"
    BRIDGE = "bridge"


class Rule:
    """A field's rule in words: the message of the 422 when a value breaks it.

    `{settings.<name>}` in a message is filled from the settings in force;
    `required` is the message when the field is missing (default "required").
    """

    def __init__(self, message: str, *, required: str = "required"):
        self.message = message
        self.required = required


def one_of(enum: type[StrEnum]) -> Rule:
    return Rule(f"must be one of {', '.join(enum)}")


def lenient() -> Any:
    """NOTE: enums are validated leniently (strict would want an enum member,
    not its JSON string); every other field is strict: no "5" for 5, no 1 for true."""
    return Field(strict=False)


MAX_LABELS = 32
MAX_LABEL_CHARS = 128
LABELS_RULE = Rule(
    f"must be an object of at most {MAX_LABELS} string values; keys without ':'; keys and values up to {MAX_LABEL_CHARS} characters"
)


def _no_colon(key: str) -> str:
    if ":" in key:
        raise ValueError("a label key holds no ':'")  # ?label=key:value splits at the first ':'
    return key


LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_LABEL_CHARS), AfterValidator(_no_colon)]
LabelValue = Annotated[str, StringConstraints(max_length=MAX_LABEL_CHARS)]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RunSubmission(Spec):
    """A run asked for (POST /v1/runs)."""

    processor: Annotated[
        str,
        Field(min_length=1, description="a registered, enabled processor"),
        Rule("required: the name of a registered processor", required="required: the name of a registered processor"),
    ]
    payload: Annotated[Any, Field(description="any JSON value; the container reads it on stdin")] = {}
    priority: Annotated[Priority, lenient(), one_of(Priority)] = Priority.NORMAL
    timeout_seconds: Annotated[
        int | None, Field(ge=1, description="lowers the processor's time limit, never raises it"), Rule("must be a positive integer")
    ] = None
    labels: Annotated[
        dict[LabelKey, LabelValue] | None,
        Field(max_length=MAX_LABELS, description="string values by key; a key holds no ':'; filter runs with ?label=key:value"),
        LABELS_RULE,
    ] = None


PINNED_IMAGE = r"^(?:[a-z0-9][a-z0-9._:/-]*@)?sha256:[0-9a-f]{64}$"
PINNED_IMAGE_RULE = "repo@sha256:<64 hex> from a registry, or a local image id sha256:<64 hex>"


def _settings_default(schema: dict) -> None:
    """For a field that may be left out (the settings give it) but not sent as null: no default in its schema."""
    schema.pop("default", None)


class Resources(Spec):
    """A processor's container limits (defaults: DOCKYARD_DEFAULT_CPUS, _MEMORY_MB, _PIDS)."""

    cpus: Annotated[float, Field(ge=0.01, le=64, json_schema_extra=_settings_default), Rule("must be a number from 0.01 to 64")] = None
    memory_mb: Annotated[
        int, Field(ge=6, le=1_048_576, json_schema_extra=_settings_default), Rule("must be an integer from 6 to 1048576")
    ] = None
    pids: Annotated[int, Field(ge=1, le=32768, json_schema_extra=_settings_default), Rule("must be an integer from 1 to 32768")] = None


# A whole number stays one (60, not 60.0) in the stored policy and in answers.
Seconds = Annotated[int, Field(ge=0)] | Annotated[float, Field(ge=0)]


class RetrySpec(Spec):
    """When a failed attempt is tried again, and after how long."""

    max_attempts: Annotated[int, Field(ge=1, le=100), Rule("must be an integer from 1 to 100")] = 1
    backoff_min_seconds: Annotated[Seconds, Rule("must be a number >= 0")] = 1
    backoff_max_seconds: Annotated[
        Seconds, Rule("must be a number from 0 up to {settings.max_backoff_seconds} (DOCKYARD_MAX_BACKOFF_SECONDS)")
    ] = 60
    jitter: Annotated[bool, Rule("must be true or false")] = True
    retry_on_exit_codes: Annotated[
        list[Annotated[int, Field(ge=1, le=255)]],
        Field(description="exit codes that are retried"),
        Rule("must be a list of exit codes from 1 to 255"),
    ] = [75]
    retry_on_timeout: Annotated[bool, Rule("must be true or false")] = False

    def problems(self, settings: Settings) -> list[tuple[str, str]]:
        errors = []
        if self.backoff_max_seconds > settings.max_backoff_seconds:
            errors.append(("retry.backoff_max_seconds", f"must be a number up to {settings.max_backoff_seconds}"))
        elif self.backoff_max_seconds < self.backoff_min_seconds:
            errors.append(("retry.backoff_max_seconds", "must not be below retry.backoff_min_seconds"))
        return errors

    def stored(self) -> dict:
        """The policy as the processor row keeps it (every field, defaults filled)."""
        return self.model_dump()


class ProcessorSpec(Spec):
    """A processor, as registered (PUT /v1/processors/{name}, or an entry of a manifest)."""

    name: Annotated[
        str, Field(description="if given, the name in the path", json_schema_extra=_settings_default), Rule("must be a string")
    ] = None
    image: Annotated[
        str,
        Field(pattern=PINNED_IMAGE, description=PINNED_IMAGE_RULE),
        Rule(
            f"{{input!r}} is not pinned by digest; use {PINNED_IMAGE_RULE}",
            required=f"required: an image pinned by digest ({PINNED_IMAGE_RULE})",
        ),
    ]
    command: Annotated[
        list[str] | None, Field(min_length=1, description="default: the image's own"), Rule("must be a non-empty list of strings")
    ] = None
    timeout_seconds: Annotated[
        int,
        Field(
            ge=1,
            description="default DOCKYARD_DEFAULT_TIMEOUT_SECONDS; at most DOCKYARD_MAX_TIMEOUT_SECONDS",
            json_schema_extra=_settings_default,
        ),
        Rule("must be an integer from 1 to {settings.max_timeout_seconds}"),
    ] = None
    resources: Annotated[Resources | None, Rule("must be an object with cpus, memory_mb, pids")] = None
    network: Annotated[Network, lenient(), one_of(Network)] = Network.NONE
    env: Annotated[dict[str, str] | None, Rule("must be an object of string values")] = None
    queue: Annotated[
        str,
        Field(
            pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
            description="default DOCKYARD_DEFAULT_QUEUE, the only one served",
            json_schema_extra=_settings_default,
        ),
        Rule("must be 1-64 characters of letters, digits, '.', '-' or '_'"),
    ] = None
    concurrency: Annotated[
        int | None, Field(ge=1, description="most runs of it at once, cluster-wide"), Rule("must be a positive integer or null")
    ] = None
    retry: Annotated[RetrySpec | None, Rule("must be an object")] = None
    enabled: Annotated[bool, Field(description="a disabled processor takes no new runs"), Rule("must be true or false")] = True

    @field_validator("env")
    @classmethod
    def _env_is_the_processors(cls, env: dict[str, str] | None) -> dict[str, str] | None:
        if env and any(k.startswith("DOCKYARD_") or k == "TRACEPARENT" for k in env):
            raise PydanticCustomError("rule", "must not set DOCKYARD_* or TRACEPARENT (Dockyard sets them)")
        return env

    def problems(self, name: str, settings: Settings) -> list[tuple[str, str]]:
        """The rules that need the path's name and the settings."""
        errors = []
        if not NAME_RE.match(name or ""):
            errors.append(("name", "must be 1-64 characters of a-z, 0-9, '-' or '_', starting with a letter or digit"))
        if self.name is not None and self.name != name:
            errors.append(("name", f"does not match the name in the path ({name!r})"))
        timeout = self.timeout_seconds or settings.default_timeout_seconds
        if not 1 <= timeout <= settings.max_timeout_seconds:
            errors.append(("timeout_seconds", f"must be an integer from 1 to {settings.max_timeout_seconds}"))
        if self.queue not in (None, settings.default_queue):
            errors.append(("queue", f"only the {settings.default_queue!r} queue is served in this version"))
        retry = self.retry or RetrySpec()
        errors += retry.problems(settings)
        if not errors and timeout + retry.backoff_max_seconds >= settings.broker_consumer_timeout_seconds:
            # NOTE: RabbitMQ redelivers a message held unacked past its
            # consumer_timeout: a run and a retry's wait must fit inside it.
            errors.append(
                (
                    "timeout_seconds",
                    f"timeout_seconds ({timeout}) + retry.backoff_max_seconds ({retry.backoff_max_seconds:g}) must stay below "
                    f"RabbitMQ's consumer_timeout ({settings.broker_consumer_timeout_seconds}s, DOCKYARD_BROKER_CONSUMER_TIMEOUT_SECONDS)",
                )
            )
        return errors

    def stored(self, name: str, settings: Settings) -> dict:
        """The processor row's fields, the settings' defaults filled in."""
        resources = self.resources or Resources()
        return {
            "name": name,
            "image": self.image,
            "command": self.command,
            "timeout_seconds": self.timeout_seconds or settings.default_timeout_seconds,
            "cpus": float(resources.cpus if resources.cpus is not None else settings.default_cpus),
            "memory_mb": resources.memory_mb if resources.memory_mb is not None else settings.default_memory_mb,
            "pids": resources.pids if resources.pids is not None else settings.default_pids,
            "network": str(self.network),
            "env": self.env or {},
            "queue": self.queue or settings.default_queue,
            "concurrency": self.concurrency,
            "retry": (self.retry or RetrySpec()).stored(),
            "enabled": self.enabled,
        }


NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_CATCHUP_WINDOW_SECONDS = 7 * 86_400


class ScheduleSpec(Spec):
    """A cron schedule of runs (POST /v1/schedules; a PATCH is checked merged into the stored spec)."""

    name: Annotated[
        str,
        Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="unique within the tenant"),
        Rule("must be 1-64 characters: lowercase letters, digits, '.', '-', '_'"),
    ]
    cron: Annotated[
        str,
        Field(description="five fields, as crontab(5) reads them: minute hour day-of-month month day-of-week"),
        Rule("must be five cron fields: minute hour day-of-month month day-of-week"),
    ]
    timezone: Annotated[str, Field(description="IANA time zone the cron is read in"), Rule("must be an IANA time zone name")] = "UTC"
    processor: Annotated[str, Field(description="the registered processor each fire runs"), Rule("must be a processor's name")]
    payload: Annotated[Any, Field(description="each run's payload")] = {}
    priority: Annotated[Priority, lenient(), one_of(Priority)] = Priority.NORMAL
    overlap: Annotated[Overlap, lenient(), one_of(Overlap)] = Overlap.ALLOW
    catchup_window_seconds: Annotated[
        int,
        Field(ge=0, le=MAX_CATCHUP_WINDOW_SECONDS, description="fires missed while no scheduler led run once if this recent"),
        Rule(f"must be an integer from 0 to {MAX_CATCHUP_WINDOW_SECONDS}"),
    ] = 300
    paused: Annotated[bool, Rule("must be true or false")] = False

    def stored(self) -> dict:
        data = self.model_dump()
        data["priority"], data["overlap"] = str(self.priority), str(self.overlap)
        return data


def checked(model: type[M], body: Any, settings: Settings | None = None) -> M:
    """`body` as a `model`, or InvalidSpec naming every field that breaks its rule (once each, in field order)."""
    if not isinstance(body, dict):
        raise InvalidSpec([("body", "must be a JSON object")])
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise InvalidSpec(field_errors(model, exc, settings)) from None


def field_errors(model: type[BaseModel], exc: ValidationError, settings: Settings | None = None) -> list[tuple[str, str]]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        field, rule = _field_of(model, error["loc"])
        if error["type"] == "extra_forbidden":
            errors.setdefault(field, "unknown field")
        elif error["type"] == "missing":
            errors.setdefault(field, rule.required if rule else "required")
        elif error["type"] == "rule":
            errors.setdefault(field, error["msg"])
        else:
            message = rule.message.format(settings=settings, input=error.get("input")) if rule else error["msg"].lower()
            errors.setdefault(field, message)
    return list(errors.items())


def _field_of(model: type[BaseModel], loc: tuple) -> tuple[str, Rule | None]:
    """The dotted name of the field an error is about (as deep as models go) and that field's Rule.

    An error inside a list or a dict (an exit code, a label) is the whole field's."""
    path: list[str] = []
    rule = None
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None or not isinstance(part, str):
            break
        if part not in current.model_fields:
            path.append(part)  # a field the model does not have
            rule = None
            break
        info = current.model_fields[part]
        path.append(part)
        rule = next((m for m in info.metadata if isinstance(m, Rule)), None)
        current = _model_in(info.annotation)
    return ".".join(path) or "body", rule


def _model_in(annotation) -> type[BaseModel] | None:
    """The model a field holds (`Resources | None` -> Resources), if it holds one."""
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None
