"""/v1/runs: submit runs and read them, their attempts, events and logs."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time

import falcon
import peewee

from actors.admission import Refusal
from actors.dispatch import Dispatcher
from settings import Settings
from storage import runs as run_store
from storage.api_keys import Scope
from storage.models import Run
from storage.run_states import RunState, is_terminal
from storage.specs import RunSubmission, checked
from storage.times import naive_utc
from web.errors import Problem, invalid, refused
from web.representations import AttemptList, AttemptView, EventList, EventView, RunPage, RunView, send
from web.requests import payload_body_limit, read_json_body

FOLLOW_POLL_SECONDS = 0.5
MAX_IDEMPOTENCY_KEY = 255


def idempotency_key(req: falcon.Request) -> str | None:
    key = req.get_header("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise invalid([("Idempotency-Key", f"must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters")], falcon.HTTP_400)
    return key


def parse_submission(body, settings: Settings) -> dict:
    """A POST /v1/runs body's fields (storage/specs.py checks their shape; the dispatcher, the processor rules)."""
    submission = checked(RunSubmission, body)
    if len(json.dumps(submission.payload, separators=(",", ":"))) > settings.max_payload_bytes:
        raise Problem(
            falcon.HTTP_413,
            "Payload too large",
            f"payload: larger than {settings.max_payload_bytes} bytes",
            errors=[("payload", f"larger than {settings.max_payload_bytes} bytes")],
        )
    return {
        "processor": submission.processor,
        "payload": submission.payload,
        "priority": submission.priority,
        "timeout_seconds": submission.timeout_seconds,
        "labels": submission.labels or {},
    }


class RunsResource:
    scopes = {"GET": Scope.RUNS_READ, "POST": Scope.RUNS_WRITE}
    rate_limited = {"POST"}

    def __init__(self, settings: Settings, dispatcher: Dispatcher):
        self.settings = settings
        self.dispatcher = dispatcher

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        key = idempotency_key(req)
        body = read_json_body(req, payload_body_limit(self.settings.max_payload_bytes))
        fields = parse_submission(body, self.settings)
        request_hash = None
        if key is not None:
            request_hash = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
            if existing := run_store.find_by_idempotency_key(req.context.tenant_id, key):
                return self._repeat(resp, existing, request_hash)
        try:
            run = self.dispatcher.submit(**fields, tenant_id=req.context.tenant_id, idempotency_key=key, request_hash=request_hash)
        except peewee.IntegrityError:
            # The same key, concurrently: the unique index let one request in.
            existing = run_store.find_by_idempotency_key(req.context.tenant_id, key) if key is not None else None
            if existing is None:
                raise
            return self._repeat(resp, existing, request_hash)
        if isinstance(run, Refusal):
            raise refused(run)
        resp.location = f"/v1/runs/{run.id}"
        send(resp, RunView.of(run), falcon.HTTP_201)

    def _repeat(self, resp: falcon.Response, existing, request_hash: str) -> None:
        """A repeated Idempotency-Key: the run it made (200), or 409 if the body differs."""
        if existing.request_hash != request_hash:
            raise Problem(
                falcon.HTTP_409,
                "Idempotency key reused",
                f"Idempotency-Key was already used for run {existing.id} with a different body",
                errors=[("Idempotency-Key", "already used with a different body")],
            )
        resp.location = f"/v1/runs/{existing.id}"
        send(resp, RunView.of(existing), falcon.HTTP_200)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        state = req.get_param("state")
        if state is not None and state not in list(RunState):
            raise invalid([("state", f"must be one of {', '.join(RunState)}")])
        limit = req.get_param_as_int("limit", default=50)
        if not 1 <= limit <= run_store.MAX_PAGE:
            raise invalid([("limit", f"must be from 1 to {run_store.MAX_PAGE}")])
        labels = {}
        for item in req.get_param_as_list("label") or []:
            key, sep, value = item.partition(":")
            if not sep or not key:
                raise invalid([("label", f"{item!r} is not key:value")])
            labels[key] = value
        since = req.get_param("since")
        if since is not None:
            since = _utc_time("since", since)
        items, cursor = run_store.list_runs(
            created_since=since,
            tenant_id=req.context.tenant_id,
            state=state,
            processor=req.get_param("processor"),
            schedule_id=req.get_param("schedule_id"),
            labels=labels,
            limit=limit,
            cursor=req.get_param("cursor"),
        )
        send(resp, RunPage.model_construct(items=[RunView.of(r) for r in items], next_cursor=cursor))


def _utc_time(name: str, value: str) -> dt.datetime:
    """An ISO 8601 time of a query parameter as naive UTC (a time without an offset is UTC); 422 naming it if it is not one."""
    try:
        return naive_utc(value)
    except ValueError:
        raise invalid([(name, f"{value!r} is not an ISO 8601 time (2026-12-01T10:00:00Z)")]) from None


class RunResource:
    scopes = {"GET": Scope.RUNS_READ}

    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        send(resp, RunView.of(run_store.get_run(run_id, req.context.tenant_id)))


class RunAttemptsResource:
    scopes = {"GET": Scope.RUNS_READ}

    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        run_store.get_run(run_id, req.context.tenant_id)
        send(resp, AttemptList.model_construct(items=[AttemptView.of(a) for a in run_store.list_attempts(run_id)]))


class RunEventsResource:
    scopes = {"GET": Scope.RUNS_READ}

    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        run_store.get_run(run_id, req.context.tenant_id)
        send(resp, EventList.model_construct(items=[EventView.of(e) for e in run_store.list_events(run_id)]))


class RunLogsResource:
    scopes = {"GET": Scope.RUNS_READ}

    def __init__(self, settings: Settings):
        self.settings = settings

    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        run = run_store.get_run(run_id, req.context.tenant_id)
        attempt = req.get_param_as_int("attempt", min_value=1)
        follow = req.get_param_as_bool("follow", default=False)
        resp.content_type = falcon.MEDIA_TEXT
        if not follow or is_terminal(run.state):
            resp.text, _ = run_store.read_logs(run_id, attempt)
            return
        resp.stream = self._follow(
            run_id,
            attempt,
            deadline=time.monotonic() + run.timeout_seconds * max(run.max_attempts, 1) + 600,
        )

    def _follow(self, run_id: str, attempt: int | None, deadline: float):
        """Yield new log text until the run ends (or the deadline passes)."""
        last = 0
        while True:
            text, last = run_store.read_logs(run_id, attempt, after_id=last)
            if text:
                yield text.encode()
            state = run_store.get_run(run_id).state
            if is_terminal(state):
                text, last = run_store.read_logs(run_id, attempt, after_id=last)
                if text:
                    yield text.encode()
                return
            if time.monotonic() > deadline:
                return
            time.sleep(FOLLOW_POLL_SECONDS)


class RunCancelResource:
    scopes = {"POST": Scope.RUNS_WRITE}

    def on_post(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        send(resp, RunView.of(run_store.cancel(run_id, req.context.tenant_id)), falcon.HTTP_202)


class RunReplayResource:
    scopes = {"POST": Scope.RUNS_WRITE}
    rate_limited = {"POST"}

    def __init__(self, dispatcher: Dispatcher):
        self.dispatcher = dispatcher

    def on_post(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        replay, created = replay_run(self.dispatcher, run_id, req.context.tenant_id)
        resp.location = f"/v1/runs/{replay.id}"
        send(resp, RunView.of(replay), falcon.HTTP_201 if created else falcon.HTTP_200)


def replay_run(dispatcher: Dispatcher, run_id: str, tenant_id: str | None) -> tuple[Run, bool]:
    """Replay a run of the tenant: its replay and whether it was made now; 404 for another tenant's run, and
    the replay rules' refusals as problems (the API's replay and the console's)."""
    replayed = dispatcher.replay(run_store.get_run(run_id, tenant_id))
    if isinstance(replayed, Refusal):
        raise refused(replayed)
    return replayed
