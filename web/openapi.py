"""GET /openapi.json: the OpenAPI 3 document of the HTTP API."""

from __future__ import annotations

import falcon

from storage.run_states import RunState
from storage.runs import Priority


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


PROBLEM = {
    "description": "Problem",
    "content": {"application/problem+json": {"schema": _ref("Problem")}},
}
TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}
RUN_ID = {
    "name": "run_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}


def _errors(*codes: int) -> dict:
    return {str(code): PROBLEM for code in codes}


def build_document() -> dict:
    run = {
        "type": "object",
        "required": ["id", "processor", "state", "priority", "attempts", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "processor": {"type": "string"},
            "state": {"type": "string", "enum": list(RunState)},
            "priority": {"type": "string", "enum": list(Priority)},
            "payload": {},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "attempts": {"type": "integer"},
            "max_attempts": {"type": "integer"},
            "timeout_seconds": {"type": "integer"},
            "result": {},
            "exit_code": {"type": ["integer", "null"]},
            "error": {
                "type": ["object", "null"],
                "properties": {
                    "reason": {"type": "string"},
                    "message": {"type": ["string", "null"]},
                },
            },
            "schedule_id": {"type": ["string", "null"]},
            "scheduled_for": TIMESTAMP,
            "replay_of": {"type": ["string", "null"]},
            "created_at": TIMESTAMP,
            "started_at": TIMESTAMP,
            "finished_at": TIMESTAMP,
        },
    }
    run_request = {
        "type": "object",
        "required": ["processor"],
        "additionalProperties": False,
        "properties": {
            "processor": {"type": "string", "minLength": 1},
            "payload": {},
            "priority": {
                "type": "string",
                "enum": list(Priority),
                "default": "normal",
            },
            "timeout_seconds": {"type": "integer", "minimum": 1},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    processor = {
        "type": "object",
        "required": ["image"],
        "properties": {
            "name": {"type": "string"},
            "image": {
                "type": "string",
                "description": "repo@sha256:<digest> or a local image id sha256:<id>",
            },
            "command": {"type": ["array", "null"], "items": {"type": "string"}},
            "timeout_seconds": {"type": "integer", "minimum": 1},
            "resources": {
                "type": "object",
                "properties": {
                    "cpus": {"type": "number"},
                    "memory_mb": {"type": "integer"},
                    "pids": {"type": "integer"},
                },
            },
            "network": {"type": "string", "enum": ["none", "bridge"]},
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
            "queue": {"type": "string"},
            "concurrency": {"type": ["integer", "null"], "minimum": 1},
            "retry": {"type": "object"},
            "enabled": {"type": "boolean"},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
    }
    attempt = {
        "type": "object",
        "required": ["number", "outcome", "started_at"],
        "properties": {
            "number": {"type": "integer"},
            "outcome": {
                "type": ["string", "null"],
                "enum": [None, "succeeded", "failed", "timed_out", "oom_killed", "cancelled", "infrastructure_error", "worker_lost"],
            },
            "exit_code": {"type": ["integer", "null"]},
            "worker": {"type": ["string", "null"]},
            "container_id": {"type": ["string", "null"]},
            "log_tail": {"type": ["string", "null"]},
            "started_at": TIMESTAMP,
            "finished_at": TIMESTAMP,
        },
    }
    event = {
        "type": "object",
        "required": ["to_state", "at"],
        "properties": {
            "from_state": {"type": ["string", "null"]},
            "to_state": {"type": "string", "enum": list(RunState)},
            "reason": {"type": ["string", "null"]},
            "message": {"type": ["string", "null"]},
            "at": TIMESTAMP,
        },
    }
    problem = {
        "type": "object",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "field": {"type": "string"},
                        "message": {"type": "string"},
                    },
                },
            },
        },
    }
    schedule_spec = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,63}$"},
            "cron": {"type": "string", "description": "five fields: minute hour day-of-month month day-of-week"},
            "timezone": {"type": "string", "description": "IANA time zone", "default": "UTC"},
            "processor": {"type": "string"},
            "payload": {},
            "priority": {"type": "string", "enum": list(Priority), "default": "normal"},
            "overlap": {"type": "string", "enum": ["allow", "forbid", "replace"], "default": "allow"},
            "catchup_window_seconds": {"type": "integer", "minimum": 0, "default": 300},
            "paused": {"type": "boolean", "default": False},
        },
        "additionalProperties": False,
    }
    schedule = {
        "type": "object",
        "required": ["id", "name", "cron", "timezone", "processor", "overlap", "paused"],
        "properties": {
            **schedule_spec["properties"],
            "id": {"type": "string"},
            "next_fire_at": TIMESTAMP,
            "last_fired_at": TIMESTAMP,
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
            "recent": {
                "type": "array",
                "description": "the latest fire times and what they came to (single schedule only)",
                "items": {
                    "type": "object",
                    "properties": {
                        "scheduled_for": TIMESTAMP,
                        "kind": {"type": "string", "enum": ["fired", "triggered", "skipped_overlap", "replaced", "missed", "not_fired"]},
                        "run_id": {"type": ["string", "null"]},
                        "message": {"type": ["string", "null"]},
                        "at": TIMESTAMP,
                    },
                },
            },
        },
    }
    schedule_id = {"name": "schedule_id", "in": "path", "required": True, "schema": {"type": "string"}}
    audit_event = {
        "type": "object",
        "required": ["id", "at", "actor", "tenant_id", "action", "target", "detail"],
        "properties": {
            "id": {"type": "integer"},
            "at": {"type": "string", "format": "date-time"},
            "actor": {"type": "string", "description": "key:<key id>, or cli:<user>@<host> for admin commands"},
            "tenant_id": {"type": ["string", "null"], "description": "null for a global change (processors)"},
            "action": {"type": "string"},
            "target": {"type": "string"},
            "detail": {"type": "object"},
        },
    }
    items = lambda schema: {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": schema}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Dockyard API", "version": "1"},
        "components": {
            "schemas": {
                "Run": run,
                "RunRequest": run_request,
                "Attempt": attempt,
                "Event": event,
                "Processor": processor,
                "Schedule": schedule,
                "ScheduleRequest": {**schedule_spec, "required": ["name", "cron", "processor"]},
                "ScheduleChange": schedule_spec,
                "Problem": problem,
                "AuditEvent": audit_event,
            },
        },
        "paths": {
            "/v1/runs": {
                "post": {
                    "summary": "Submit a run",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "description": "The same key with the same body returns the run it made (200); another body, 409",
                            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                        }
                    ],
                    "requestBody": {"required": True, **_json(_ref("RunRequest"))},
                    "responses": {
                        "200": {"description": "The run this Idempotency-Key already made", **_json(_ref("Run"))},
                        "201": {"description": "Created", **_json(_ref("Run"))},
                        **_errors(400, 404, 409, 413, 415, 422, 429, 503),
                    },
                },
                "get": {
                    "summary": "List runs, newest first",
                    "parameters": [
                        {
                            "name": "state",
                            "in": "query",
                            "schema": {"type": "string", "enum": list(RunState)},
                        },
                        {
                            "name": "processor",
                            "in": "query",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "schedule_id",
                            "in": "query",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "label",
                            "in": "query",
                            "schema": {"type": "string", "pattern": "^[^:]+:.*$"},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                        },
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "A page of runs",
                            **_json(
                                {
                                    "type": "object",
                                    "properties": {
                                        "items": {
                                            "type": "array",
                                            "items": _ref("Run"),
                                        },
                                        "next_cursor": {"type": ["string", "null"]},
                                    },
                                }
                            ),
                        },
                        **_errors(400, 422),
                    },
                },
            },
            "/v1/runs/{run_id}": {
                "get": {
                    "summary": "Get a run",
                    "parameters": [RUN_ID],
                    "responses": {
                        "200": {"description": "The run", **_json(_ref("Run"))},
                        **_errors(404),
                    },
                }
            },
            "/v1/runs/{run_id}/attempts": {
                "get": {
                    "summary": "A run's attempts",
                    "parameters": [RUN_ID],
                    "responses": {
                        "200": {
                            "description": "Attempts",
                            **_json(items(_ref("Attempt"))),
                        },
                        **_errors(404),
                    },
                }
            },
            "/v1/runs/{run_id}/events": {
                "get": {
                    "summary": "A run's state changes, oldest first",
                    "parameters": [RUN_ID],
                    "responses": {
                        "200": {
                            "description": "Events",
                            **_json(items(_ref("Event"))),
                        },
                        **_errors(404),
                    },
                }
            },
            "/v1/runs/{run_id}/logs": {
                "get": {
                    "summary": "A run's captured stdout and stderr",
                    "parameters": [
                        RUN_ID,
                        {
                            "name": "attempt",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1},
                        },
                        {
                            "name": "follow",
                            "in": "query",
                            "schema": {"type": "boolean"},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "Log text",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        **_errors(404),
                    },
                }
            },
            "/v1/runs/{run_id}/cancel": {
                "post": {
                    "summary": "Cancel a queued, retrying or running run (a running container is killed)",
                    "parameters": [RUN_ID],
                    "responses": {
                        "202": {"description": "Cancelled", **_json(_ref("Run"))},
                        **_errors(404, 409, 503),
                    },
                }
            },
            "/v1/runs/{run_id}/replay": {
                "post": {
                    "summary": "Run again, as a new run, a run that ended other than succeeded (once per run)",
                    "parameters": [RUN_ID],
                    "responses": {
                        "200": {"description": "The replay made earlier", **_json(_ref("Run"))},
                        "201": {"description": "The new run", **_json(_ref("Run"))},
                        **_errors(404, 409, 429, 503),
                    },
                }
            },
            "/v1/schedules": {
                "post": {
                    "summary": "Create a schedule",
                    "requestBody": {"required": True, **_json(_ref("ScheduleRequest"))},
                    "responses": {
                        "201": {"description": "Created", **_json(_ref("Schedule"))},
                        **_errors(400, 409, 413, 415, 422, 503),
                    },
                },
                "get": {
                    "summary": "List schedules by name",
                    "responses": {"200": {"description": "Schedules", **_json(items(_ref("Schedule")))}},
                },
            },
            "/v1/schedules/{schedule_id}": {
                "get": {
                    "summary": "A schedule, with its latest fire times",
                    "parameters": [schedule_id],
                    "responses": {"200": {"description": "The schedule", **_json(_ref("Schedule"))}, **_errors(404)},
                },
                "patch": {
                    "summary": "Change some fields of a schedule",
                    "parameters": [schedule_id],
                    "requestBody": {"required": True, **_json(_ref("ScheduleChange"))},
                    "responses": {
                        "200": {"description": "The schedule", **_json(_ref("Schedule"))},
                        **_errors(400, 404, 409, 413, 415, 422),
                    },
                },
                "delete": {
                    "summary": "Delete a schedule (its runs stay)",
                    "parameters": [schedule_id],
                    "responses": {"204": {"description": "Deleted"}, **_errors(404)},
                },
            },
            **{
                f"/v1/schedules/{{schedule_id}}/{action}": {
                    "post": {
                        "summary": summary,
                        "parameters": [schedule_id],
                        "responses": {"200": {"description": "The schedule", **_json(_ref("Schedule"))}, **_errors(404)},
                    }
                }
                for action, summary in (("pause", "Stop firing (next_fire_at becomes null)"), ("resume", "Fire again from now on"))
            },
            "/v1/schedules/{schedule_id}/trigger": {
                "post": {
                    "summary": "Start a run of the schedule now",
                    "parameters": [schedule_id],
                    "responses": {"201": {"description": "The run", **_json(_ref("Run"))}, **_errors(404, 422, 429, 503)},
                }
            },
            "/v1/processors": {
                "get": {
                    "summary": "List processors",
                    "responses": {
                        "200": {
                            "description": "Processors",
                            **_json(items(_ref("Processor"))),
                        }
                    },
                }
            },
            "/v1/processors/{name}": {
                "get": {
                    "summary": "Get a processor",
                    "parameters": [
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The processor",
                            **_json(_ref("Processor")),
                        },
                        **_errors(404),
                    },
                },
                "put": {
                    "summary": "Create or replace a processor",
                    "parameters": [
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {"required": True, **_json(_ref("Processor"))},
                    "responses": {
                        "200": {"description": "Replaced", **_json(_ref("Processor"))},
                        "201": {"description": "Created", **_json(_ref("Processor"))},
                        **_errors(400, 413, 415, 422),
                    },
                },
            },
            "/v1/audit": {
                "get": {
                    "summary": "The audit log (admin scope): the tenant's changes and global ones, newest first",
                    "parameters": [
                        {"name": "action", "in": "query", "schema": {"type": "string"}, "description": "an action or its family"},
                        {"name": "target", "in": "query", "schema": {"type": "string"}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "A page of records",
                            **_json(
                                {
                                    "type": "object",
                                    "required": ["items", "next_cursor"],
                                    "properties": {
                                        "items": {"type": "array", "items": _ref("AuditEvent")},
                                        "next_cursor": {"type": ["string", "null"]},
                                    },
                                }
                            ),
                        },
                        **_errors(400, 422),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "responses": {"200": {"description": "Serving"}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness of database and broker",
                    "responses": {
                        "200": {"description": "Ready"},
                        "503": {"description": "Something is down"},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "Prometheus text format"}},
                }
            },
        },
    }


def secured(document: dict) -> dict:
    """Every /v1 operation needs a bearer API key: 401 without a valid one, 403 without its scope;
    and may answer 400 to a URL it cannot take (NUL characters in the path or query)."""
    document["components"]["securitySchemes"] = {
        "apiKey": {"type": "http", "scheme": "bearer", "description": "A Dockyard API key, dky_<id>_<secret> (`dockyard keys create`)"}
    }
    for path, operations in document["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for operation in operations.values():
            operation["security"] = [{"apiKey": []}]
            operation["responses"].update(_errors(400, 401, 403))
    return document


class OpenApiResource:
    def __init__(self):
        self.document = secured(build_document())

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.document
