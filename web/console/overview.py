"""The console's Overview: the tenant's queued runs by priority and the oldest one's age, its dead letters and
its runs by state in the last hour; for admin keys also what the whole system holds (RabbitMQ's queue depths,
runs running on every worker). RabbitMQ is asked at most every few seconds per web process."""

from __future__ import annotations

import datetime as dt
import logging

import falcon

from actors.queues import QueueAdmin
from settings import Settings
from storage import runs as run_store
from storage.api_keys import Scope
from storage.caching import AgeCache
from storage.models import utcnow
from storage.run_states import RunState
from storage.specs import Priority
from web.console.render import page
from web.console.sessions import CONSOLE

log = logging.getLogger(__name__)

DEPTHS_CACHE_SECONDS = 5.0
LAST = dt.timedelta(hours=1)


class OverviewPage:
    scopes = {"GET": Scope.RUNS_READ}

    def __init__(self, settings: Settings, admin: QueueAdmin):
        self.settings = settings
        self.admin = admin
        self._depths: AgeCache[dict[str, int] | None] = AgeCache(DEPTHS_CACHE_SECONDS)

    def _queue_depths(self) -> dict[str, int] | None:
        """Messages in the run queue, its delay and dead-letter queues, and the run queue's consumers, by what
        the page calls them; None when RabbitMQ does not answer."""

        def load():
            try:
                queue = self.settings.default_queue
                return {
                    **{f"Messages in {name}": count for name, count in self.admin.depths(queue).items()},
                    f"Consumers of {queue} (worker processes)": self.admin.consumers(queue),
                }
            except Exception as exc:  # the page shows the database's figures all the same
                log.warning("could not read the queue depths: %s", exc)
                return None

        return self._depths.get(self.settings.default_queue, load)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        now = utcnow()
        tenant_id = req.context.tenant_id
        queued = run_store.queued_by_priority(tenant_id)
        is_admin = req.context.caller.allows(Scope.ADMIN)
        page(
            resp,
            "overview.html",
            session=req.context.console,
            priorities=list(Priority),
            queued={p: queued.get(p, (0, None))[0] for p in Priority},
            oldest_seconds=max(((now - oldest).total_seconds() for _, oldest in queued.values()), default=None),
            last_hour=run_store.runs_by_state(tenant_id=tenant_id, since=now - LAST),
            states=list(RunState),
            dead_letters=run_store.count_runs(RunState.DEAD_LETTER, tenant_id=tenant_id),
            system=({"depths": self._queue_depths(), "running": run_store.count_runs(RunState.RUNNING)} if is_admin else None),
            queue=self.settings.default_queue,
        )


def add_overview(app: falcon.App, settings: Settings, admin: QueueAdmin) -> None:
    app.add_route(f"{CONSOLE}/overview", OverviewPage(settings, admin))
