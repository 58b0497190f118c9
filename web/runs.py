"""/v1/runs: submit runs and read them, their attempts, events and logs."""

from __future__ import annotations

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
from storage.run_states import RunState, is_terminal
from web.errors import Problem, invalid, refused
from web.representations import attempt_json, event_json, run_json
from web.requests import payload_body_limit, read_json_body

SUBMIT_FIELDS = {"processor", "payload", "priority", "timeout_seconds", "labels"}
MAX_LABELS = 32
MAX_LABEL_CHARS = 128
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
    """Check a POST /v1/runs body's shape; return its fields (processor checks come after)."""
    if not isinstance(body, dict):
        raise invalid([("body", "must be a JSON object")])
    errors = [(name, "unknown field") for name in sorted(set(body) - SUBMIT_FIELDS)]
    processor = body.get("processor")
    if not isinstance(processor, str) or not processor:
        errors.append(("processor", "required: the name of a registered processor"))
    priority = body.get("priority", "normal")
    if not isinstance(priority, str) or priority not in list(run_store.Priority):
        errors.append(("priority", f"must be one of {', '.join(run_store.Priority)}"))
    timeout = body.get("timeout_seconds")
    if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1):
        errors.append(("timeout_seconds", "must be a positive integer"))
    labels = body.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        errors.append(("labels", "must be an object of string values"))
    elif len(labels) > MAX_LABELS or any(len(k) > MAX_LABEL_CHARS or len(v) > MAX_LABEL_CHARS or ":" in k for k, v in labels.items()):
        errors.append(
            (
                "labels",
                f"at most {MAX_LABELS} labels; keys without ':'; keys and values up to {MAX_LABEL_CHARS} characters",
            )
        )
    if errors:
        raise invalid(errors)
    payload = body.get("payload", {})
    if len(json.dumps(payload, separators=(",", ":"))) > settings.max_payload_bytes:
        raise Problem(
            falcon.HTTP_413,
            "Payload too large",
            f"payload: larger than {settings.max_payload_bytes} bytes",
            errors=[("payload", f"larger than {settings.max_payload_bytes} bytes")],
        )
    return {
        "processor": processor,
        "payload": payload,
        "priority": priority,
        "timeout_seconds": timeout,
        "labels": labels,
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
        resp.status = falcon.HTTP_201
        resp.location = f"/v1/runs/{run.id}"
        resp.media = run_json(run)

    def _repeat(self, resp: falcon.Response, existing, request_hash: str) -> None:
        """A repeated Idempotency-Key: the run it made (200), or 409 if the body differs."""
        if existing.request_hash != request_hash:
            raise Problem(
                falcon.HTTP_409,
                "Idempotency key reused",
                f"Idempotency-Key was already used for run {existing.id} with a different body",
                errors=[("Idempotency-Key", "already used with a different body")],
            )
        resp.status = falcon.HTTP_200
        resp.location = f"/v1/runs/{existing.id}"
        resp.media = run_json(existing)

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
        items, cursor = run_store.list_runs(
            tenant_id=req.context.tenant_id,
            state=state,
            processor=req.get_param("processor"),
            schedule_id=req.get_param("schedule_id"),
            labels=labels,
            limit=limit,
            cursor=req.get_param("cursor"),
        )
        resp.media = {"items": [run_json(r) for r in items], "next_cursor": cursor}


class RunResource:
    scopes = {"GET": Scope.RUNS_READ}

    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        resp.media = run_json(run_store.get_run(run_id, req.context.tenant_id))


class RunAttemptsResource:
    scopes = {"GET": Scope.RUNS_READ}

    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        run_store.get_run(run_id, req.context.tenant_id)
        resp.media = {"items": [attempt_json(a) for a in run_store.list_attempts(run_id)]}


class RunEventsResource:
    scopes = {"GET": Scope.RUNS_READ}

    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        run_store.get_run(run_id, req.context.tenant_id)
        resp.media = {"items": [event_json(e) for e in run_store.list_events(run_id)]}


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
        resp.status = falcon.HTTP_202
        resp.media = run_json(run_store.cancel(run_id, req.context.tenant_id))


class RunReplayResource:
    scopes = {"POST": Scope.RUNS_WRITE}
    rate_limited = {"POST"}

    def __init__(self, dispatcher: Dispatcher):
        self.dispatcher = dispatcher

    def on_post(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        replayed = self.dispatcher.replay(run_store.get_run(run_id, req.context.tenant_id))
        if isinstance(replayed, Refusal):
            raise refused(replayed)
        replay, created = replayed
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.location = f"/v1/runs/{replay.id}"
        resp.media = run_json(replay)
