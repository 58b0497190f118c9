"""Build the Falcon application from settings and collaborators."""

from __future__ import annotations

import falcon
import peewee

from actors.dispatch import Dispatcher
from actors.queues import QueueAdmin
from settings import Settings
from storage.database import database
from web.audit import AuditResource
from web.auth import Authentication, KeyCache
from web.connections import DatabaseConnection
from web.console.errors import console_or_problem
from web.console.pages import add_console
from web.console.sessions import ConsoleSessions
from web.errors import install_error_handlers
from web.health import HealthResource, MetricsResource, ReadyResource
from web.metrics import RequestMetrics
from web.openapi import OpenApiResource
from web.processors import ProcessorResource, ProcessorsResource
from web.rate_limits import SubmissionRateLimit
from web.requests import RefuseNul
from web.runs import (
    RunAttemptsResource,
    RunCancelResource,
    RunEventsResource,
    RunLogsResource,
    RunReplayResource,
    RunResource,
    RunsResource,
)
from web.schedules import (
    SchedulePauseResource,
    ScheduleResource,
    SchedulesResource,
    ScheduleTriggerResource,
)
from web.tracing import RequestTracing
from web.workers import WorkersResource


def create_app(settings: Settings, *, db: peewee.Database, dispatcher: Dispatcher, queues: QueueAdmin | None = None) -> falcon.App:
    """The API over `db` (which storage.database.open_database must have opened: storage reads and writes
    through the database it opened last) and `dispatcher`, which makes runs and holds the processor cache
    that a PUT through this app clears at once. `queues` administers the run queues on RabbitMQ (readiness,
    dead letters); by default, through the dispatcher's broker."""
    if database.obj is not db:
        raise ValueError("create_app: db is not the database storage is bound to; open it with storage.database.open_database")
    app = falcon.App(
        middleware=[
            RequestMetrics(),
            RequestTracing(),
            DatabaseConnection(db),
            Authentication(KeyCache()),
            ConsoleSessions(),
            RefuseNul(),
            SubmissionRateLimit(settings),
        ],
    )
    app.req_options.strip_url_path_trailing_slash = True
    install_error_handlers(app)
    app.set_error_serializer(console_or_problem)
    app.add_route("/healthz", HealthResource())
    queues = queues or QueueAdmin(dispatcher.broker)
    app.add_route("/readyz", ReadyResource(db, queues))
    app.add_route("/metrics", MetricsResource())
    app.add_route("/openapi.json", OpenApiResource())
    app.add_route("/v1/runs", RunsResource(settings, dispatcher))
    app.add_route("/v1/runs/{run_id}", RunResource())
    app.add_route("/v1/runs/{run_id}/attempts", RunAttemptsResource())
    app.add_route("/v1/runs/{run_id}/events", RunEventsResource())
    app.add_route("/v1/runs/{run_id}/logs", RunLogsResource(settings))
    app.add_route("/v1/runs/{run_id}/cancel", RunCancelResource())
    app.add_route("/v1/runs/{run_id}/replay", RunReplayResource(dispatcher))
    app.add_route("/v1/schedules", SchedulesResource(settings))
    app.add_route("/v1/schedules/{schedule_id}", ScheduleResource(settings))
    app.add_route("/v1/schedules/{schedule_id}/pause", SchedulePauseResource(paused=True))
    app.add_route("/v1/schedules/{schedule_id}/resume", SchedulePauseResource(paused=False))
    app.add_route("/v1/schedules/{schedule_id}/trigger", ScheduleTriggerResource(dispatcher))
    app.add_route("/v1/processors", ProcessorsResource())
    app.add_route("/v1/processors/{name}", ProcessorResource(settings, dispatcher.processors))
    app.add_route("/v1/audit", AuditResource())
    app.add_route("/v1/workers", WorkersResource())
    add_console(app, settings, dispatcher, queues)
    return app
