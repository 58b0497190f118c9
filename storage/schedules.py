"""Schedules: validating a spec, storing it, reading it, and the record of their fires."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from enum import StrEnum
from typing import Any

import peewee

from settings import Settings
from storage import audit
from storage.cron import CronError, next_fire_after, shortest_interval
from storage.database import database
from storage.errors import Conflict, InvalidSpec, NotFound
from storage.models import Processor, Run, Schedule, ScheduleEvent, utcnow
from storage.run_states import TERMINAL
from storage.specs import ScheduleSpec, checked


class FireKind(StrEnum):
    """What a fire time came to (schedule_events.kind)."""

    FIRED = "fired"
    TRIGGERED = "triggered"  # by hand (POST .../trigger)
    SKIPPED_OVERLAP = "skipped_overlap"
    REPLACED = "replaced"  # an earlier run cancelled by this fire (overlap replace)
    MISSED = "missed"
    NOT_FIRED = "not_fired"  # the processor was missing or disabled at the fire time


# The outcomes of a cron fire time: each is recorded once and moves next_fire_at past it.
CRON_OUTCOMES = frozenset({FireKind.FIRED, FireKind.SKIPPED_OVERLAP, FireKind.MISSED, FireKind.NOT_FIRED})


def parse_schedule_spec(body: Any, settings: Settings, *, current: dict | None = None, now: dt.datetime | None = None) -> dict:
    """Check a schedule spec (storage/specs.py), with `current` a PATCH over it; return the fields to store.

    The fields' shapes, then what needs the database and the clock: the
    processor is registered, the payload fits, the cron fires and not too often.
    """
    if not isinstance(body, dict):
        raise InvalidSpec([("body", "must be a JSON object")])
    merged = {**(current or {}), **body}
    try:
        spec, errors = checked(ScheduleSpec, merged), []
    except InvalidSpec as exc:
        spec, errors = None, exc.errors
    at_fault = {field for field, _ in errors}
    errors += [e for e in _world_errors(merged, settings, now or utcnow()) if e[0] not in at_fault]
    if errors or spec is None:
        raise InvalidSpec(errors)
    return spec.stored()


def _world_errors(spec: dict, settings: Settings, now: dt.datetime) -> list[tuple[str, str]]:
    errors = []
    processor = spec.get("processor")
    if isinstance(processor, str) and Processor.get_or_none(Processor.name == processor) is None:
        errors.append(("processor", f"no processor named {processor!r} is registered"))
    if len(json.dumps(spec.get("payload", {}), separators=(",", ":"))) > settings.max_payload_bytes:
        errors.append(("payload", f"larger than {settings.max_payload_bytes} bytes"))
    if isinstance(spec.get("cron"), str):
        errors.extend(_cron_errors(spec["cron"], spec.get("timezone", "UTC"), settings, now))
    return errors


def _cron_errors(expression, timezone, settings: Settings, now: dt.datetime) -> list[tuple[str, str]]:
    try:
        gap = shortest_interval(expression, timezone, now)
    except CronError as exc:
        return [(exc.field, str(exc))]
    if gap is None:
        if next_fire_after(expression, timezone, now) is None:
            return [("cron", "never fires")]
        return []
    if gap.total_seconds() < settings.schedule_min_interval_seconds:
        return [
            (
                "cron",
                f"fires every {gap.total_seconds():g}s; the minimum interval is {settings.schedule_min_interval_seconds}s "
                "(DOCKYARD_SCHEDULE_MIN_INTERVAL_SECONDS)",
            )
        ]
    return []


def _next_fire(fields: dict, now: dt.datetime, previous: dt.datetime | None) -> dt.datetime | None:
    if fields["paused"]:
        return None
    return next_fire_after(fields["cron"], fields["timezone"], now, previous)


def _name_taken(name: str) -> Conflict:
    return Conflict(f"a schedule named {name!r} exists", errors=[("name", "already used")])


def create_schedule(fields: dict, tenant_id: str | None = None, *, actor: str, now: dt.datetime | None = None) -> Schedule:
    """Store a new schedule (fields from parse_schedule_spec), audited as `actor`; Conflict if its name is taken."""
    now = now or utcnow()
    try:
        with audit.change(actor, "schedule.create", "", tenant_id=tenant_id, detail=audit.redacted(fields, mark="(set)")) as entry:
            schedule = Schedule.create(
                id=uuid.uuid4().hex,
                tenant_id=tenant_id,
                next_fire_at=_next_fire(fields, now, None),
                created_at=now,
                updated_at=now,
                **fields,
            )
            entry.target = schedule.id
    except peewee.IntegrityError:
        raise _name_taken(fields["name"]) from None
    return schedule


def update_schedule(schedule: Schedule, fields: dict, *, actor: str, now: dt.datetime | None = None) -> Schedule:
    """Replace a schedule's spec, audited as `actor` (schedule.change naming what differs; nothing if nothing does).

    A new cron, zone or pause state computes the next fire again from now;
    other changes keep it, so a fire time already due is still fired (or caught up).
    """
    differences = audit.redacted(audit.differences(spec_of(schedule), fields))
    try:
        with audit.change(actor, "schedule.change", schedule.id, tenant_id=schedule.tenant_id, detail=differences) as entry:
            entry.skip = not differences
            return _store_spec(schedule, fields, now or utcnow())
    except peewee.IntegrityError:
        raise _name_taken(fields["name"]) from None


def set_paused(schedule: Schedule, paused: bool, *, actor: str, now: dt.datetime | None = None) -> Schedule:
    """Pause or resume a schedule, audited as `actor` (schedule.pause or schedule.resume; nothing if it already was)."""
    action = "schedule.pause" if paused else "schedule.resume"
    with audit.change(actor, action, schedule.id, tenant_id=schedule.tenant_id, detail={"name": schedule.name}) as entry:
        entry.skip = schedule.paused == paused
        return _store_spec(schedule, {**spec_of(schedule), "paused": paused}, now or utcnow())


def _store_spec(schedule: Schedule, fields: dict, now: dt.datetime) -> Schedule:
    changes = {**fields, "updated_at": now}
    timing = ("cron", "timezone", "paused")
    if any(fields[k] != getattr(schedule, k) for k in timing) or schedule.next_fire_at is None:
        changes["next_fire_at"] = _next_fire(fields, now, schedule.last_fired_at)
    Schedule.update(changes).where(Schedule.id == schedule.id).execute()
    return Schedule.get_by_id(schedule.id)


def spec_of(schedule: Schedule) -> dict:
    """A stored schedule's spec, as parse_schedule_spec returns one."""
    return {key: getattr(schedule, key) for key in ScheduleSpec.model_fields}


def get_schedule(schedule_id: str, tenant_id: str | None = None) -> Schedule:
    query = Schedule.select().where(Schedule.id == schedule_id)
    if tenant_id is not None:
        query = query.where(Schedule.tenant_id == tenant_id)
    schedule = query.first()
    if schedule is None:
        raise NotFound("schedule", schedule_id)
    return schedule


def list_schedules(tenant_id: str | None = None) -> list[Schedule]:
    query = Schedule.select()
    if tenant_id is not None:
        query = query.where(Schedule.tenant_id == tenant_id)
    return list(query.order_by(Schedule.name, Schedule.id))


def delete_schedule(schedule: Schedule, *, actor: str) -> None:
    """Delete a schedule and its fire records (its runs stay), audited as `actor`."""
    with audit.change(actor, "schedule.delete", schedule.id, tenant_id=schedule.tenant_id, detail={"name": schedule.name}):
        ScheduleEvent.delete().where(ScheduleEvent.schedule == schedule.id).execute()
        Schedule.delete().where(Schedule.id == schedule.id).execute()


def record_fire(
    schedule: Schedule,
    scheduled_for: dt.datetime,
    kind: FireKind,
    *,
    run_id: str | None = None,
    message: str | None = None,
    through: dt.datetime | None = None,
) -> bool:
    """Note what a fire time came to; False if that cron fire time already has its outcome recorded.

    A fire or trigger moves `last_fired_at`; a cron outcome moves `next_fire_at`
    past `through` (default `scheduled_for`: a range of missed fires is one
    record), also when the record was already there (another leader wrote it,
    and `next_fire_at` was set back meanwhile). `updated_at` is for spec
    changes only.
    """
    now = utcnow()
    through = through or scheduled_for
    recorded = True
    with database.atomic():
        try:
            with database.atomic():  # a savepoint: a duplicate record leaves the rest to do
                ScheduleEvent.create(schedule=schedule.id, scheduled_for=scheduled_for, kind=kind, run_id=run_id, message=message, at=now)
        except peewee.IntegrityError:
            recorded = False
        if kind in (FireKind.FIRED, FireKind.TRIGGERED):
            Schedule.update(last_fired_at=scheduled_for).where(
                (Schedule.id == schedule.id) & (Schedule.last_fired_at.is_null() | (Schedule.last_fired_at < scheduled_for))
            ).execute()
        if kind in CRON_OUTCOMES:
            following = next_fire_after(schedule.cron, schedule.timezone, through, previous=through)
            Schedule.update(next_fire_at=following).where(
                (Schedule.id == schedule.id)
                & (Schedule.paused == False)  # noqa: E712 (peewee builds SQL from ==)
                & (Schedule.next_fire_at.is_null() | (Schedule.next_fire_at <= through))
            ).execute()
    return recorded


def fire_submission(schedule: Schedule) -> dict:
    """What a run fired (or triggered) by `schedule` is asked for (Dispatcher.submit's arguments), but its `scheduled_for`."""
    return {
        "processor": schedule.processor,
        "tenant_id": schedule.tenant_id,
        "priority": schedule.priority,
        "payload": schedule.payload,
        "labels": {"schedule": schedule.name},
        "schedule_id": schedule.id,
    }


def firing_schedules() -> list[Schedule]:
    """Unpaused schedules that have a next fire time: the ones the leader keeps a timer for."""
    return list(Schedule.select().where((Schedule.paused == False) & Schedule.next_fire_at.is_null(False)))  # noqa: E712


def active_runs(schedule_id: str) -> list[Run]:
    """Runs of a schedule that have not ended (what overlap policies look at), oldest first."""
    query = Run.select().where((Run.schedule_id == schedule_id) & Run.state.not_in(TERMINAL))
    return list(query.order_by(Run.created_at))


def run_of_fire(schedule_id: str, scheduled_for: dt.datetime) -> Run | None:
    """The run made for one fire time of a schedule, if any (at most one: a unique index)."""
    return Run.select().where((Run.schedule_id == schedule_id) & (Run.scheduled_for == scheduled_for)).first()


def list_schedule_events(schedule_id: str, limit: int = 100) -> list[ScheduleEvent]:
    return list(ScheduleEvent.select().where(ScheduleEvent.schedule == schedule_id).order_by(ScheduleEvent.id.desc()).limit(limit))
