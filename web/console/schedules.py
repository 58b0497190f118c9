"""The console's Schedules pages: each schedule's cron as written and in words, its time zone, next and last
fire, and its fire records; pause, resume and trigger now, through the same calls as the API."""

from __future__ import annotations

import falcon

from actors.admission import Refusal
from actors.dispatch import Dispatcher
from storage import schedules as schedule_store
from storage.api_keys import Scope
from web.auth import actor_of
from web.console.render import page
from web.console.sessions import CONSOLE
from web.errors import refused
from web.representations import FireRecord, ScheduleView

PATH = f"{CONSOLE}/schedules"
FIRE_RECORDS_SHOWN = 50


class SchedulesPage:
    scopes = {"GET": Scope.RUNS_READ}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        schedules = [ScheduleView.of(s) for s in schedule_store.list_schedules(req.context.tenant_id)]
        page(resp, "schedules.html", session=req.context.console, schedules=schedules)


class SchedulePage:
    scopes = {"GET": Scope.RUNS_READ}

    def on_get(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        schedule = schedule_store.get_schedule(schedule_id, req.context.tenant_id)
        records = [FireRecord.of(e) for e in schedule_store.list_schedule_events(schedule.id, limit=FIRE_RECORDS_SHOWN)]
        page(
            resp,
            "schedule.html",
            session=req.context.console,
            schedule=ScheduleView.of(schedule),
            records=records,
            may_change=req.context.caller.allows(Scope.SCHEDULES_WRITE),
        )


class SchedulePause:
    scopes = {"POST": Scope.SCHEDULES_WRITE}

    def __init__(self, paused: bool):
        self.paused = paused

    def on_post(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        schedule = schedule_store.get_schedule(schedule_id, req.context.tenant_id)
        schedule_store.set_paused(schedule, self.paused, actor=actor_of(req))
        raise falcon.HTTPSeeOther(f"{PATH}/{schedule_id}")


class ScheduleTrigger:
    scopes = {"POST": Scope.SCHEDULES_WRITE}
    rate_limited = {"POST"}  # a submission, as in the API

    def __init__(self, dispatcher: Dispatcher):
        self.dispatcher = dispatcher

    def on_post(self, req: falcon.Request, resp: falcon.Response, schedule_id: str) -> None:
        run = self.dispatcher.trigger(schedule_store.get_schedule(schedule_id, req.context.tenant_id))
        if isinstance(run, Refusal):
            raise refused(run)
        raise falcon.HTTPSeeOther(f"{CONSOLE}/runs/{run.id}")


def add_schedules(app: falcon.App, dispatcher: Dispatcher) -> None:
    app.add_route(PATH, SchedulesPage())
    app.add_route(f"{PATH}/{{schedule_id}}", SchedulePage())
    app.add_route(f"{PATH}/{{schedule_id}}/pause", SchedulePause(paused=True))
    app.add_route(f"{PATH}/{{schedule_id}}/resume", SchedulePause(paused=False))
    app.add_route(f"{PATH}/{{schedule_id}}/trigger", ScheduleTrigger(dispatcher))
