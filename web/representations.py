"""The JSON shapes of the API's answers, written once as models: the API serializes through them and
/openapi.json describes them (web/openapi.py)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import falcon
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from storage import models
from storage.run_states import AttemptOutcome, RunState
from storage.schedules import FireKind
from storage.specs import Network, Overlap, Priority, RetrySpec
from storage.workers import WorkerState
from telemetry.tracing import trace_id_of


def timestamp(value: dt.datetime) -> str:
    """UTC (stored naive), to the millisecond, with a Z: 2026-11-22T10:00:00.000Z."""
    return value.isoformat(timespec="milliseconds") + "Z"


Timestamp = Annotated[
    dt.datetime | None,
    PlainSerializer(timestamp, return_type=str, when_used="unless-none"),
    WithJsonSchema({"type": ["string", "null"], "format": "date-time"}),
]


class View(BaseModel):
    """An answer's shape."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def of(cls, row, *, leave_out: tuple[str, ...] = (), **fields):
        """A view of `row`: each field read from the row's attribute of the same name, but those given or left out
        (a field left out is left out of the JSON too). Validated, which also turns stored strings into enums:
        pydantic-core does that faster than model_construct copies fields in Python."""
        # NOTE: a peewee row keeps its column values in __data__; reading it there skips a descriptor per field.
        values = row.__data__
        copied = {name: values.get(name) for name in cls.model_fields if name not in fields and name not in leave_out}
        return cls.model_validate({**copied, **fields})


def send(resp: falcon.Response, view: BaseModel, status: str | None = None) -> None:
    """Answer with `view` as JSON (pydantic serializes it; falcon's media handler is not used)."""
    resp.content_type = falcon.MEDIA_JSON
    resp.data = view.__pydantic_serializer__.to_json(view, exclude_unset=True)
    if status is not None:
        resp.status = status


class RunError(View):
    reason: str
    message: str | None


class RunView(View):
    id: str
    processor: str
    state: RunState
    priority: Priority
    payload: Any = Field(description="the JSON value the run was submitted with")
    labels: dict[str, str]
    attempts: int
    max_attempts: int
    timeout_seconds: int
    result: Any = Field(description="the value of the last DOCKYARD_RESULT line, or null")
    exit_code: int | None
    error: RunError | None = Field(description="why the run did not succeed (null while it may)")
    schedule_id: str | None
    scheduled_for: Timestamp
    replay_of: str | None
    created_at: Timestamp
    started_at: Timestamp
    finished_at: Timestamp
    trace_id: str | None = Field(description="the OpenTelemetry trace of the run: its submit, attempts and containers (32 hex digits)")
    cpu_seconds: float | None = Field(description="CPU seconds its attempts' containers used, summed (null: not measured)")
    peak_memory_bytes: int | None = Field(description="the highest memory one of its attempts' containers used (null: not measured)")

    @classmethod
    def of(cls, run: models.Run) -> RunView:
        error = {"reason": run.error_reason, "message": run.error_message} if run.error_reason else None
        return super().of(run, labels=run.labels or {}, error=error, trace_id=trace_id_of(run.traceparent))


class RunPage(View):
    items: list[RunView]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


class AttemptView(View):
    number: int
    outcome: AttemptOutcome | None = Field(description="null while the attempt runs")
    exit_code: int | None
    worker: str | None
    container_id: str | None
    log_tail: str | None
    started_at: Timestamp
    finished_at: Timestamp
    cpu_seconds: float | None = Field(description="CPU seconds the attempt's container used (null: not measured, or still running)")
    peak_memory_bytes: int | None = Field(description="the highest memory the attempt's container used, in bytes")


class AttemptList(View):
    items: list[AttemptView]


class EventView(View):
    from_state: RunState | None
    to_state: RunState
    reason: str | None
    message: str | None
    at: Timestamp


class EventList(View):
    items: list[EventView]


class ResourcesView(View):
    cpus: float
    memory_mb: int
    pids: int


class ProcessorView(View):
    name: str
    image: str
    command: list[str] | None
    timeout_seconds: int
    resources: ResourcesView
    network: Network
    env: dict[str, str]
    queue: str
    concurrency: int | None
    retry: RetrySpec
    enabled: bool
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, p: models.Processor) -> ProcessorView:
        return super().of(p, resources=ResourcesView.of(p), retry=p.retry or {})


class ProcessorList(View):
    items: list[ProcessorView]


class FireRecord(View):
    scheduled_for: Timestamp
    kind: FireKind
    run_id: str | None
    message: str | None
    at: Timestamp


class ScheduleView(View):
    id: str
    name: str
    cron: str
    timezone: str
    processor: str
    payload: Any
    priority: Priority
    overlap: Overlap
    catchup_window_seconds: int
    paused: bool
    next_fire_at: Timestamp = Field(description="null while paused")
    last_fired_at: Timestamp
    created_at: Timestamp
    updated_at: Timestamp
    recent: list[FireRecord] | None = Field(None, description="the latest fire times and what they came to (one schedule's GET only)")

    @classmethod
    def of(cls, s: models.Schedule, events: list[models.ScheduleEvent] | None = None) -> ScheduleView:
        if events is None:
            return super().of(s, leave_out=("recent",))
        return super().of(s, recent=[FireRecord.of(e) for e in events])


class ScheduleList(View):
    items: list[ScheduleView]


class AuditRecord(View):
    id: int
    at: Timestamp
    actor: str = Field(description="key:<key id>, or cli:<user>@<host> for admin commands")
    tenant_id: str | None = Field(description="null for a global change (processors)")
    action: str
    target: str
    detail: dict[str, Any]


class AuditPage(View):
    items: list[AuditRecord]
    next_cursor: str | None


class WorkerView(View):
    name: str = Field(description="DOCKYARD_WORKER_NAME (its host and process id unless set)")
    host: str
    pid: int
    engine: str = Field(description="the Docker engine it runs containers on (DOCKYARD_DOCKER_URL)")
    engine_name: str | None = Field(description="the engine's own name; null if it did not answer at the worker's start")
    state: WorkerState = Field(description="live; lost: no heartbeat for 3 periods; stopped: it said so on its way out")
    threads: int
    busy: int = Field(description="threads running an attempt at its last heartbeat")
    broker_node: str | None = Field(description="host:port of the RabbitMQ node it consumes from, at its last heartbeat")
    version: str
    heartbeat_seconds: int
    started_at: Timestamp
    last_seen_at: Timestamp
    stopped_at: Timestamp | None


class WorkerList(View):
    items: list[WorkerView]


class FieldProblem(View):
    field: str
    message: str


class ProblemView(View):
    """application/problem+json (RFC 9457), with the fields at fault."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None
