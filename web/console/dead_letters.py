"""The console's Dead letters page: the tenant's dead-lettered runs, replaying one or all that match a filter
(after a confirmation that shows how many), and purging the tenant's dead letters (admin keys, confirmed).

Replays go through `actors.queues.replay_dead_lettered`, as `dockyard dlq replay` does: the API's replay
rules, once per run, and the replayed runs' dead letters dropped from RabbitMQ.
"""

from __future__ import annotations

import logging

import falcon

from actors.dispatch import Dispatcher
from actors.queues import QueueAdmin, drop_dead_letters, replay_dead_lettered
from settings import Settings
from storage import runs as run_store
from storage.api_keys import Scope
from storage.errors import Conflict
from storage.run_states import RunState
from web.console.forms import filtered_link, form_of, utc_time
from web.console.render import page
from web.console.sessions import CONSOLE
from web.errors import refused

log = logging.getLogger(__name__)

PATH = f"{CONSOLE}/dead-letters"
SHOWN = 200
# Replay all replays at most this many runs per confirmation (the newest first); the page says when more match.
REPLAY_ALL_LIMIT = 10_000
PURGE_LIMIT = 1_000_000


def _filters(values) -> tuple[dict[str, str], dict]:
    """The page's filters as given (to show and pass on) and as the query takes them; 422 naming a bad one."""
    given = {name: str(values.get(name) or "").strip() for name in ("processor", "since")}
    return given, {"processor": given["processor"] or None, "since": utc_time("since", given["since"])}


def _waiting(admin: QueueAdmin, queue: str) -> int | None:
    """Messages in the queue's dead-letter queue, or None when RabbitMQ does not answer (the page still shows the runs)."""
    try:
        return admin.dead_letters(queue).count()
    except Exception as exc:
        log.warning("could not count the dead letters of %s: %s", queue, exc)
        return None


class DeadLettersPage:
    scopes = {"GET": Scope.RUNS_READ}

    def __init__(self, settings: Settings, admin: QueueAdmin):
        self.settings = settings
        self.admin = admin

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        given, query = _filters(req.params)
        runs = run_store.dead_lettered_runs(tenant_id=req.context.tenant_id, limit=SHOWN + 1, **query)
        caller = req.context.caller
        is_admin = caller.allows(Scope.ADMIN)
        page(
            resp,
            "dead_letters.html",
            session=req.context.console,
            runs=runs[:SHOWN],
            more=len(runs) > SHOWN,
            tails=run_store.last_log_tails([run.id for run in runs[:SHOWN]]),
            filters=given,
            may_replay=caller.allows(Scope.RUNS_WRITE),
            may_purge=is_admin,
            queue=self.settings.default_queue,
            waiting=_waiting(self.admin, self.settings.default_queue) if is_admin else None,
        )


class DeadLettersReplay:
    """Replay one dead-lettered run (`run_id`), or all that match the filters (`all`), the second after a
    confirmation page that shows how many."""

    scopes = {"POST": Scope.RUNS_WRITE}
    rate_limited = {"POST"}  # a replay is a submission; replaying all counts as one request against the limit

    def __init__(self, dispatcher: Dispatcher, admin: QueueAdmin):
        self.dispatcher = dispatcher
        self.admin = admin

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = form_of(req)
        tenant_id = req.context.tenant_id
        if form.get("run_id"):
            original = run_store.get_run(form["run_id"], tenant_id)
            if original.state != RunState.DEAD_LETTER:
                raise Conflict(f"run {original.id} is {original.state}, not dead_letter")
            report = replay_dead_lettered(self.dispatcher, self.admin, [original])
            if report.refused:
                raise refused(report.refused[0][1])
            raise falcon.HTTPSeeOther(f"{CONSOLE}/runs/{report.replayed[0][1].id}")
        given, query = _filters(form)
        originals = run_store.dead_lettered_runs(tenant_id=tenant_id, limit=REPLAY_ALL_LIMIT, **query)
        if form.get("confirm") != "yes":
            return page(
                resp,
                "confirm.html",
                session=req.context.console,
                title="Replay dead-lettered runs",
                question=f"Replay {len(originals)} dead-lettered run(s){_described(given)}?",
                detail="Each is replayed once, as a new run, and its dead letter is dropped; a run whose processor "
                "is now disabled or gone is refused and keeps its dead letter.",
                action=f"{PATH}/replay",
                fields={"all": "1", **given},
                button=f"Replay {len(originals)}",
                back=filtered_link(PATH, given),
            )
        report = replay_dead_lettered(self.dispatcher, self.admin, originals)
        page(resp, "replayed.html", session=req.context.console, report=report, back=PATH)


class DeadLettersPurge:
    """Drop the tenant's dead letters from the dead-letter queue, after a confirmation showing how many runs
    they are; the runs keep their history (and can still be replayed from their pages). Admin keys only. The
    queue is every tenant's: other tenants' messages stay."""

    scopes = {"POST": Scope.ADMIN}

    def __init__(self, admin: QueueAdmin):
        self.admin = admin

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        runs = run_store.dead_lettered_runs(tenant_id=req.context.tenant_id, limit=PURGE_LIMIT)
        if form_of(req).get("confirm") != "yes":
            return page(
                resp,
                "confirm.html",
                session=req.context.console,
                title="Purge your dead letters",
                question=f"Delete the dead letters of your {len(runs)} dead-lettered run(s) from the dead-letter queue?",
                detail="The runs keep their history and can still be replayed from their pages; other tenants' dead letters stay.",
                action=f"{PATH}/purge",
                fields={},
                button="Purge",
                back=PATH,
            )
        purged = drop_dead_letters(self.admin, runs)
        log.info("key %s purged %d dead letter(s) of tenant %s", req.context.caller.key_id, purged, req.context.tenant_id)
        page(resp, "purged.html", session=req.context.console, purged=purged, back=PATH)


def _described(given: dict[str, str]) -> str:
    parts = [f"of {given['processor']}" if given["processor"] else "", f"since {given['since']}" if given["since"] else ""]
    return "".join(f" {part}" for part in parts if part)


def add_dead_letters(app: falcon.App, settings: Settings, dispatcher: Dispatcher, admin: QueueAdmin) -> None:
    app.add_route(PATH, DeadLettersPage(settings, admin))
    app.add_route(f"{PATH}/replay", DeadLettersReplay(dispatcher, admin))
    app.add_route(f"{PATH}/purge", DeadLettersPurge(admin))
