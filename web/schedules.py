"""/v1/schedules: cron schedules of runs (fired by the scheduler process's leader)."""

from __future__ import annotations

import falcon
import peewee

from actors.dispatch import Dispatcher
from settings import Settings
from storage import audit
from storage import schedules as schedule_store
from storage.errors import InvalidSpec
from storage.models import utcnow
from storage.processors import get_processor
from web.auth import actor_of
from web.errors import Problem
from web.representations import run_json, schedule_json
from web.requests import payload_body_limit, read_json_body


def _audited(fields: dict) -> dict:
    """A schedule spec as the audit log keeps it: the payload may hold secrets, so only whether it is set."""
    return {k: v for k, v in fields.items() if k != "payload"} | {"payload": "(set)" if fields.get("payload") is not None else None}


def _audit(req: falcon.Request, action: str, schedule_id: str, detail: dict):
    return audit.change(actor_of(req), action, schedule_id, tenant_id=req.context.tenant_id, detail=detail)


def name_taken(name: str) -> Problem:
    return Problem(falcon.HTTP_409, "Conflict", f"a schedule named {name!r} exists", errors=[("name", "already used")])


class SchedulesResource:
    scopes = {"GET": "runs:read", "POST": "schedules:write"}

    def __init__(self, settings: Settings):
        self.settings = settings

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        fields = schedule_store.parse_schedule_spec(read_json_body(req, payload_body_limit(self.settings.max_payload_bytes)), self.settings)
        try:
            with _audit(req, "schedule.create", "", _audited(fields)) as entry:
                schedule = schedule_store.create_schedule(fields, req.context.tenant_id)
                entry.target = schedule.id
        except peewee.IntegrityError:
            raise name_taken(fields["name"]) from None
        resp.status = falcon.HTTP_201
        resp.location = f"/v1/schedules/{schedule.id}"
        resp.media = schedule_json(schedule)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"items": [schedule_json(s) for s in schedule_store.list_schedules(req.context.tenant_id)]}


class ScheduleResource:
    scopes = {"GET": "runs:read", "PATCH": "schedules:write", "DELETE": "schedules:write"}

    def __init__(self, settings: Settings):
        self.settings = settings

    def on_get(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        schedule = schedule_store.get_schedule(schedule_id, req.context.tenant_id)
        resp.media = schedule_json(schedule, events=schedule_store.list_schedule_events(schedule.id, limit=20))

    def on_patch(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        schedule = schedule_store.get_schedule(schedule_id, req.context.tenant_id)
        body = read_json_body(req, payload_body_limit(self.settings.max_payload_bytes))
        before = schedule_store.spec_of(schedule)
        fields = schedule_store.parse_schedule_spec(body, self.settings, current=before)
        try:
            with _audit(req, "schedule.change", schedule.id, audit.redacted(audit.differences(before, fields))) as entry:
                entry.skip = not entry.detail
                resp.media = schedule_json(schedule_store.update_schedule(schedule, fields))
        except peewee.IntegrityError:
            raise name_taken(fields["name"]) from None

    def on_delete(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        schedule = schedule_store.get_schedule(schedule_id, req.context.tenant_id)
        with _audit(req, "schedule.delete", schedule.id, {"name": schedule.name}):
            schedule_store.delete_schedule(schedule)
        resp.status = falcon.HTTP_204


class SchedulePauseResource:
    """POST .../pause and .../resume."""

    scopes = {"POST": "schedules:write"}

    def __init__(self, paused: bool):
        self.paused = paused

    def on_post(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        schedule = schedule_store.get_schedule(schedule_id, req.context.tenant_id)
        fields = {**schedule_store.spec_of(schedule), "paused": self.paused}
        with _audit(req, "schedule.pause" if self.paused else "schedule.resume", schedule.id, {"name": schedule.name}) as entry:
            entry.skip = schedule.paused == self.paused  # already so: nothing changed
            resp.media = schedule_json(schedule_store.update_schedule(schedule, fields))


class ScheduleTriggerResource:
    """POST .../trigger: one run now, whatever the cron says (overlap is not checked, as for a
    Kubernetes job created from a CronJob by hand)."""

    scopes = {"POST": "schedules:write"}
    rate_limited = {"POST"}

    def __init__(self, dispatcher: Dispatcher):
        self.dispatcher = dispatcher

    def on_post(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        schedule = schedule_store.get_schedule(schedule_id, req.context.tenant_id)
        processor = get_processor(schedule.processor)
        if not processor.enabled:
            raise InvalidSpec([("processor", f"{processor.name!r} is disabled")])
        now = utcnow()
        run = self.dispatcher.submit(**schedule_store.fire_run_fields(schedule, processor), scheduled_for=now)
        schedule_store.record_fire(schedule, now, schedule_store.TRIGGERED, run_id=run.id)
        resp.status = falcon.HTTP_201
        resp.location = f"/v1/runs/{run.id}"
        resp.media = run_json(run)
