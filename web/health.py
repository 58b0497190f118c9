"""Liveness, readiness and metrics: no API key needed."""

from __future__ import annotations

import falcon
import peewee
import prometheus_client

from actors.queues import QueueAdmin
from web.metrics import exposition


class HealthResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class ReadyResource:
    def __init__(self, db: peewee.Database, queues: QueueAdmin):
        self.db = db
        self.queues = queues

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        down = []
        try:
            self.db.execute_sql("SELECT 1")
        except peewee.PeeweeException:
            down.append("database")
        if not self.queues.broker_ready():
            down.append("broker")
        if down:
            resp.status = falcon.HTTP_503
            resp.append_header("Retry-After", "5")
            resp.media = {"status": "unavailable", "down": down}
        else:
            resp.media = {"status": "ready", "broker_node": self.queues.broker_node()}


class MetricsResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = prometheus_client.CONTENT_TYPE_LATEST
        resp.data = exposition()
