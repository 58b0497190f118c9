"""The console's pages and actions: signing in and out, runs, a run (cancel, replay), static files.

Pages read and act through the same calls as the API's resources, with the
session's tenant and scopes (web/console/sessions.py checks them), so the
console can do nothing an API key could not.
"""

from __future__ import annotations

import importlib.resources
import secrets
from urllib.parse import urlsplit

import falcon

from actors.admission import replay_refusal
from actors.dispatch import Dispatcher
from actors.queues import QueueAdmin
from settings import Settings
from storage import runs as run_store
from storage.api_keys import KeyRefused, Scope, authenticate
from storage.console_sessions import close_session, open_session
from storage.errors import Conflict
from storage.models import utcnow
from storage.run_states import RunState, is_terminal
from storage.specs import Priority
from web.console.catalog import add_catalog
from web.console.dead_letters import add_dead_letters
from web.console.forms import form_of, page_link, utc_time
from web.console.overview import add_overview
from web.console.render import page
from web.console.schedules import add_schedules
from web.console.sessions import CONSOLE, SESSION_COOKIE, SIGN_IN_PATH, is_https, same_token
from web.errors import Problem, invalid
from web.representations import AttemptView, EventView, RunView
from web.runs import RunLogsResource, RunResource, replay_run

SIGN_IN_COOKIE = "dockyard_sign_in"
RUNS_PER_PAGE = 50
RUN_FILTERS = ("state", "processor", "schedule_id", "priority", "since", "until")
LOG_TAIL_CHARACTERS = 64 * 1024
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def _cookie(req: falcon.Request, resp: falcon.Response, name: str, value: str, *, max_age: int, path: str) -> None:
    resp.set_cookie(name, value, max_age=max_age, path=path, secure=is_https(req), http_only=True, same_site="Strict")


def _landing(target) -> str:
    """Where to go after signing in: a console page the sign-in was asked from, never another site (nor a
    header split by a control character)."""
    if (
        isinstance(target, str)
        and target.startswith(f"{CONSOLE}/")
        and "\\" not in target
        and target.isprintable()
        and urlsplit(target).netloc == ""
    ):
        return target
    return f"{CONSOLE}/runs"


class ConsoleRoot:
    public = True

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPSeeOther(f"{CONSOLE}/overview")


class SignInPage:
    """Sign in with an API key. The form carries a token that must match its own cookie's (there is no
    session yet to hold one), so another site cannot sign a browser in with its key."""

    public = True

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._form(req, resp, falcon.HTTP_200, error=None)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = form_of(req)
        expected = req.cookies.get(SIGN_IN_COOKIE)
        # No cookie, no sign-in: a form posted from another site never carries it (SameSite=Strict).
        if not expected or not same_token(form.get("csrf"), expected):
            return self._form(req, resp, falcon.HTTP_403, error="The sign-in form was stale. Please try again.")
        try:
            caller = authenticate(form.get("key", "").strip())
        except KeyRefused as exc:
            return self._form(req, resp, falcon.HTTP_401, error=f"Not signed in: {exc}.")
        token, session = open_session(caller)
        max_age = max(1, int((session.expires_at - utcnow()).total_seconds()))
        _cookie(req, resp, SESSION_COOKIE, token, max_age=max_age, path=CONSOLE)
        resp.unset_cookie(SIGN_IN_COOKIE, path=SIGN_IN_PATH)
        raise falcon.HTTPSeeOther(_landing(form.get("next")))

    def _form(self, req: falcon.Request, resp: falcon.Response, status: str, *, error: str | None) -> None:
        token = secrets.token_urlsafe(24)
        _cookie(req, resp, SIGN_IN_COOKIE, token, max_age=3600, path=SIGN_IN_PATH)
        target = req.get_param("next") or form_of(req).get("next") or ""
        page(resp, "sign_in.html", status, csrf=token, next=_landing(target), error=error, session=None)


class SignOut:
    any_signed_in = True  # whatever the key's scopes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        close_session(req.cookies.get(SESSION_COOKIE))
        resp.unset_cookie(SESSION_COOKIE, path=CONSOLE)
        raise falcon.HTTPSeeOther(SIGN_IN_PATH)


class RunsPage:
    scopes = {"GET": Scope.RUNS_READ}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        filters = {
            name: (req.get_param(name) or "").strip() for name in ("state", "processor", "schedule_id", "priority", "since", "until")
        }
        if filters["state"] and filters["state"] not in list(RunState):
            raise invalid([("state", f"must be one of {', '.join(RunState)}")])
        if filters["priority"] and filters["priority"] not in list(Priority):
            raise invalid([("priority", f"must be one of {', '.join(Priority)}")])
        runs, cursor = run_store.list_runs(
            tenant_id=req.context.tenant_id,
            state=filters["state"] or None,
            processor=filters["processor"] or None,
            schedule_id=filters["schedule_id"] or None,
            priority=filters["priority"] or None,
            created_since=utc_time("since", filters["since"]),
            created_before=utc_time("until", filters["until"]),
            limit=RUNS_PER_PAGE,
            cursor=req.get_param("cursor"),
        )
        next_page = page_link(f"{CONSOLE}/runs", filters, cursor)
        page(
            resp,
            "runs.html",
            session=req.context.console,
            runs=[RunView.of(run) for run in runs],
            filters=filters,
            states=list(RunState),
            priorities=list(Priority),
            next_page=next_page,
        )


class RunPage:
    scopes = {"GET": Scope.RUNS_READ}

    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        run = run_store.get_run(run_id, req.context.tenant_id)
        logs, _ = run_store.read_logs(run.id)
        caller = req.context.caller
        may_write = caller.allows(Scope.RUNS_WRITE)
        page(
            resp,
            "run.html",
            session=req.context.console,
            run=RunView.of(run),
            events=[EventView.of(e) for e in run_store.list_events(run.id)],
            attempts=[AttemptView.of(a) for a in run_store.list_attempts(run.id)],
            logs=logs[-LOG_TAIL_CHARACTERS:],
            logs_cut=len(logs) > LOG_TAIL_CHARACTERS,
            follow=not is_terminal(run.state),
            may_cancel=may_write and not is_terminal(run.state),
            may_replay=may_write and replay_refusal(run) is None,
            replayed_by=run_store.find_replay(run.id),
        )


class RunCancel:
    scopes = {"POST": Scope.RUNS_WRITE}

    def on_post(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        try:
            run_store.cancel(run_id, req.context.tenant_id)
        except Conflict:
            pass  # it ended meanwhile: its page says how
        raise falcon.HTTPSeeOther(f"{CONSOLE}/runs/{run_id}")


class RunReplay:
    scopes = {"POST": Scope.RUNS_WRITE}
    rate_limited = {"POST"}  # a replay is a submission: the tenant's rate limit applies, as in the API

    def __init__(self, dispatcher: Dispatcher):
        self.dispatcher = dispatcher

    def on_post(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        replay, _ = replay_run(self.dispatcher, run_id, req.context.tenant_id)
        raise falcon.HTTPSeeOther(f"{CONSOLE}/runs/{replay.id}")


class StaticFile:
    """The console's stylesheet and script, from the package (no CDN, nothing fetched elsewhere)."""

    public = True

    def __init__(self):
        folder = importlib.resources.files("web.console") / "static"
        self.files = {
            item.name: (item.read_bytes(), STATIC_TYPES[suffix])
            for item in folder.iterdir()
            if (suffix := "." + item.name.rpartition(".")[2]) in STATIC_TYPES
        }

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        found = self.files.get(name)
        if found is None:
            raise Problem(falcon.HTTP_404, "Not found", f"no static file {name!r}")
        resp.data, resp.content_type = found
        resp.cache_control = ["max-age=300"]


def add_console(app: falcon.App, settings: Settings, dispatcher: Dispatcher, queues: QueueAdmin) -> None:
    """Serve the console under /console."""
    app.add_route(CONSOLE, ConsoleRoot())
    app.add_route(SIGN_IN_PATH, SignInPage())
    app.add_route(f"{CONSOLE}/sign-out", SignOut())
    app.add_route(f"{CONSOLE}/runs", RunsPage())
    app.add_route(f"{CONSOLE}/runs/{{run_id}}", RunPage())
    # A run as the API shows it, its log text and its follow stream: the API's own resources, behind the session.
    app.add_route(f"{CONSOLE}/runs/{{run_id}}/state", RunResource())
    app.add_route(f"{CONSOLE}/runs/{{run_id}}/logs", RunLogsResource(settings))
    app.add_route(f"{CONSOLE}/runs/{{run_id}}/cancel", RunCancel())
    app.add_route(f"{CONSOLE}/runs/{{run_id}}/replay", RunReplay(dispatcher))
    app.add_route(f"{CONSOLE}/static/{{name}}", StaticFile())
    add_dead_letters(app, settings, dispatcher, queues)
    add_schedules(app, dispatcher)
    add_catalog(app)
    add_overview(app, settings, queues)
