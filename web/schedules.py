"""/v1/schedules: cron schedules of runs (fired by the scheduler process's leader)."""

from __future__ import annotations

import falcon

from actors.admission import Refusal
from actors.dispatch import Dispatcher
from settings import Settings
from storage import schedules as schedule_store
from storage.api_keys import Scope
from web.auth import actor_of
from web.errors import refused
from web.representations import RunView, ScheduleList, ScheduleView, send
from web.requests import payload_body_limit, read_json_body


class SchedulesResource:
    scopes = {"GET": Scope.RUNS_READ, "POST": Scope.SCHEDULES_WRITE}

    def __init__(self, settings: Settings):
        self.settings = settings

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        fields = schedule_store.parse_schedule_spec(read_json_body(req, payload_body_limit(self.settings.max_payload_bytes)), self.settings)
        schedule = schedule_store.create_schedule(fields, req.context.tenant_id, actor=actor_of(req))
        resp.location = f"/v1/schedules/{schedule.id}"
        send(resp, ScheduleView.of(schedule), falcon.HTTP_201)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(resp, ScheduleList.model_construct(items=[ScheduleView.of(s) for s in schedule_store.list_schedules(req.context.tenant_id)]))


class ScheduleResource:
    scopes = {"GET": Scope.RUNS_READ, "PATCH": Scope.SCHEDULES_WRITE, "DELETE": Scope.SCHEDULES_WRITE}

    def __init__(self, settings: Settings):
        self.settings = settings

    def on_get(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        schedule = schedule_store.get_schedule(schedule_id, req.context.tenant_id)
        send(resp, ScheduleView.of(schedule, events=schedule_store.list_schedule_events(schedule.id, limit=20)))

    def on_patch(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        schedule = schedule_store.get_schedule(schedule_id, req.context.tenant_id)
        body = read_json_body(req, payload_body_limit(self.settings.max_payload_bytes))
        fields = schedule_store.parse_schedule_spec(body, self.settings, current=schedule_store.spec_of(schedule))
        send(resp, ScheduleView.of(schedule_store.update_schedule(schedule, fields, actor=actor_of(req))))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        schedule = schedule_store.get_schedule(schedule_id, req.context.tenant_id)
        schedule_store.delete_schedule(schedule, actor=actor_of(req))
        resp.status = falcon.HTTP_204


class SchedulePauseResource:
    """POST .../pause and .../resume."""

    scopes = {"POST": Scope.SCHEDULES_WRITE}

    def __init__(self, paused: bool):
        self.paused = paused

    def on_post(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        schedule = schedule_store.get_schedule(schedule_id, req.context.tenant_id)
        send(resp, ScheduleView.of(schedule_store.set_paused(schedule, self.paused, actor=actor_of(req))))


class ScheduleTriggerResource:
    """POST .../trigger: one run now, whatever the cron says (overlap is not checked, as for a
    Kubernetes job created from a CronJob by hand)."""

    scopes = {"POST": Scope.SCHEDULES_WRITE}
    rate_limited = {"POST"}

    def __init__(self, dispatcher: Dispatcher):
        self.dispatcher = dispatcher

    def on_post(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        run = self.dispatcher.trigger(schedule_store.get_schedule(schedule_id, req.context.tenant_id))
        if isinstance(run, Refusal):
            raise refused(run)
        resp.location = f"/v1/runs/{run.id}"
        send(resp, RunView.of(run), falcon.HTTP_201)
