"""GET /openapi.json: the OpenAPI 3.1 document of the HTTP API.

Shapes are not written here: request bodies come from the models that check
them (storage/specs.py) and answers from the models they are serialized
through (web/representations.py). This module adds what only HTTP knows:
paths, parameters, statuses and security.
"""

from __future__ import annotations

import falcon
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from storage.audit import MAX_PAGE as MAX_AUDIT_PAGE
from storage.run_states import RunState
from storage.runs import MAX_PAGE as MAX_RUN_PAGE
from storage.specs import ProcessorSpec, RunSubmission, ScheduleSpec
from web.representations import (
    AttemptList,
    AttemptView,
    AuditPage,
    AuditRecord,
    EventList,
    EventView,
    ProblemView,
    ProcessorList,
    ProcessorView,
    RunPage,
    RunView,
    ScheduleList,
    ScheduleView,
    WorkerList,
    WorkerView,
)

REQUESTS: tuple[type[BaseModel], ...] = (RunSubmission, ProcessorSpec, ScheduleSpec)
ANSWERS: tuple[type[BaseModel], ...] = (
    RunView,
    RunPage,
    AttemptList,
    EventList,
    ProcessorView,
    ProcessorList,
    ScheduleView,
    ScheduleList,
    AuditPage,
    WorkerList,
    ProblemView,
)
REF = "#/components/schemas/{model}"
# The names the document gives the models (the classes' names say which side of the API they are on).
PUBLIC_NAMES = {
    RunSubmission: "RunRequest",
    ProcessorSpec: "ProcessorRequest",
    ScheduleSpec: "ScheduleRequest",
    RunView: "Run",
    AttemptView: "Attempt",
    EventView: "Event",
    ProcessorView: "Processor",
    ScheduleView: "Schedule",
    AuditRecord: "AuditEvent",
    WorkerView: "Worker",
    ProblemView: "Problem",
}


def _without_titles(schema):
    """Pydantic titles every property after its name: noise in a document that already names them."""
    if isinstance(schema, dict):
        return {k: _without_titles(v) for k, v in schema.items() if not (k == "title" and isinstance(v, str))}
    if isinstance(schema, list):
        return [_without_titles(v) for v in schema]
    return schema


class Schemas:
    """The components/schemas of every model, and a $ref to each model's."""

    def __init__(self):
        keyed = [(m, "validation") for m in REQUESTS] + [(m, "serialization") for m in ANSWERS]
        refs, document = models_json_schema(keyed, ref_template=REF)
        renamed = {REF.format(model=m.__name__): REF.format(model=name) for m, name in PUBLIC_NAMES.items()}
        components = {PUBLIC_NAMES.get(_model_named(name), name): schema for name, schema in document["$defs"].items()}
        self.components = _without_titles(_renamed_refs(components, renamed))
        self._refs = {model: _renamed_refs(ref, renamed) for (model, _mode), ref in refs.items()}
        # A PATCH sends any of a schedule's fields: the same shape with nothing required.
        request = self.components[self.name(ScheduleSpec)]
        self.components["ScheduleChange"] = {k: v for k, v in request.items() if k != "required"}

    def ref(self, model: type[BaseModel]) -> dict:
        return dict(self._refs[model])

    def name(self, model: type[BaseModel]) -> str:
        return self._refs[model]["$ref"].rsplit("/", 1)[1]


def _model_named(name: str) -> type[BaseModel] | None:
    return next((m for m in PUBLIC_NAMES if m.__name__ == name), None)


def _renamed_refs(schema, renamed: dict[str, str]):
    if isinstance(schema, dict):
        return {k: renamed.get(v, v) if k == "$ref" else _renamed_refs(v, renamed) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_renamed_refs(v, renamed) for v in schema]
    return schema


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problems(schemas: Schemas, *codes: int) -> dict:
    problem = {"description": "Problem", "content": {"application/problem+json": {"schema": schemas.ref(ProblemView)}}}
    return {str(code): problem for code in codes}


def _path(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, schema: dict, description: str | None = None) -> dict:
    parameter = {"name": name, "in": "query", "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


def build_document() -> dict:
    s = Schemas()
    run = s.ref(RunView)
    schedule = s.ref(ScheduleView)
    processor = s.ref(ProcessorView)
    run_id, schedule_id, name = _path("run_id"), _path("schedule_id"), _path("name")
    runs_filter = [
        _query("state", {"type": "string", "enum": list(RunState)}),
        _query("processor", {"type": "string"}),
        _query("schedule_id", {"type": "string"}),
        _query("label", {"type": "string", "pattern": "^[^:]+:.*$"}, "key:value; repeat it to ask for several labels"),
        _query("since", {"type": "string", "format": "date-time"}, "only runs created at or after this time (UTC without an offset)"),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_RUN_PAGE}),
        _query("cursor", {"type": "string"}),
    ]
    idempotency_key = {
        "name": "Idempotency-Key",
        "in": "header",
        "description": "The same key with the same body returns the run it made (200); another body, 409",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    }
    paths = {
        "/v1/runs": {
            "post": {
                "summary": "Submit a run",
                "parameters": [idempotency_key],
                "requestBody": {"required": True, "content": {"application/json": {"schema": s.ref(RunSubmission)}}},
                "responses": {
                    "200": _json(run, "The run this Idempotency-Key already made"),
                    "201": _json(run, "Created"),
                    **_problems(s, 400, 404, 409, 413, 415, 422, 429, 503),
                },
            },
            "get": {
                "summary": "List runs, newest first",
                "parameters": runs_filter,
                "responses": {"200": _json(s.ref(RunPage), "A page of runs"), **_problems(s, 400, 422)},
            },
        },
        "/v1/runs/{run_id}": {
            "get": {"summary": "Get a run", "parameters": [run_id], "responses": {"200": _json(run, "The run"), **_problems(s, 404)}}
        },
        "/v1/runs/{run_id}/attempts": {
            "get": {
                "summary": "A run's attempts",
                "parameters": [run_id],
                "responses": {"200": _json(s.ref(AttemptList), "Attempts"), **_problems(s, 404)},
            }
        },
        "/v1/runs/{run_id}/events": {
            "get": {
                "summary": "A run's state changes, oldest first",
                "parameters": [run_id],
                "responses": {"200": _json(s.ref(EventList), "Events"), **_problems(s, 404)},
            }
        },
        "/v1/runs/{run_id}/logs": {
            "get": {
                "summary": "A run's captured stdout and stderr",
                "parameters": [
                    run_id,
                    _query("attempt", {"type": "integer", "minimum": 1}),
                    _query("follow", {"type": "boolean"}, "stream until the run ends"),
                ],
                "responses": {
                    "200": {"description": "Log text", "content": {"text/plain": {"schema": {"type": "string"}}}},
                    **_problems(s, 404),
                },
            }
        },
        "/v1/runs/{run_id}/cancel": {
            "post": {
                "summary": "Cancel a queued, retrying or running run (a running container is killed)",
                "parameters": [run_id],
                "responses": {"202": _json(run, "Cancelled"), **_problems(s, 404, 409, 503)},
            }
        },
        "/v1/runs/{run_id}/replay": {
            "post": {
                "summary": "Run again, as a new run, a run that ended other than succeeded (once per run)",
                "parameters": [run_id],
                "responses": {
                    "200": _json(run, "The replay made earlier"),
                    "201": _json(run, "The new run"),
                    **_problems(s, 404, 409, 422, 429, 503),
                },
            }
        },
        "/v1/schedules": {
            "post": {
                "summary": "Create a schedule",
                "requestBody": {"required": True, "content": {"application/json": {"schema": s.ref(ScheduleSpec)}}},
                "responses": {"201": _json(schedule, "Created"), **_problems(s, 400, 409, 413, 415, 422, 503)},
            },
            "get": {"summary": "List schedules by name", "responses": {"200": _json(s.ref(ScheduleList), "Schedules")}},
        },
        "/v1/schedules/{schedule_id}": {
            "get": {
                "summary": "A schedule, with its latest fire times",
                "parameters": [schedule_id],
                "responses": {"200": _json(schedule, "The schedule"), **_problems(s, 404)},
            },
            "patch": {
                "summary": "Change some fields of a schedule",
                "parameters": [schedule_id],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": REF.format(model="ScheduleChange")}}},
                },
                "responses": {"200": _json(schedule, "The schedule"), **_problems(s, 400, 404, 409, 413, 415, 422)},
            },
            "delete": {
                "summary": "Delete a schedule (its runs stay)",
                "parameters": [schedule_id],
                "responses": {"204": {"description": "Deleted"}, **_problems(s, 404)},
            },
        },
        **{
            f"/v1/schedules/{{schedule_id}}/{action}": {
                "post": {
                    "summary": summary,
                    "parameters": [schedule_id],
                    "responses": {"200": _json(schedule, "The schedule"), **_problems(s, 404)},
                }
            }
            for action, summary in (("pause", "Stop firing (next_fire_at becomes null)"), ("resume", "Fire again from now on"))
        },
        "/v1/schedules/{schedule_id}/trigger": {
            "post": {
                "summary": "Start a run of the schedule now",
                "parameters": [schedule_id],
                "responses": {"201": _json(run, "The run"), **_problems(s, 404, 422, 429, 503)},
            }
        },
        "/v1/processors": {"get": {"summary": "List processors", "responses": {"200": _json(s.ref(ProcessorList), "Processors")}}},
        "/v1/processors/{name}": {
            "get": {
                "summary": "Get a processor",
                "parameters": [name],
                "responses": {"200": _json(processor, "The processor"), **_problems(s, 404)},
            },
            "put": {
                "summary": "Create or replace a processor",
                "parameters": [name],
                "requestBody": {"required": True, "content": {"application/json": {"schema": s.ref(ProcessorSpec)}}},
                "responses": {
                    "200": _json(processor, "Replaced"),
                    "201": _json(processor, "Created"),
                    **_problems(s, 400, 413, 415, 422),
                },
            },
        },
        "/v1/audit": {
            "get": {
                "summary": "The audit log (admin scope): the tenant's changes and global ones, newest first",
                "parameters": [
                    _query("action", {"type": "string"}, "an action or its family"),
                    _query("target", {"type": "string"}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_AUDIT_PAGE}),
                    _query("cursor", {"type": "string"}),
                ],
                "responses": {"200": _json(s.ref(AuditPage), "A page of records"), **_problems(s, 400, 422)},
            }
        },
        "/v1/workers": {
            "get": {
                "summary": "The workers that reported in (admin scope): live and lost ones, by name",
                "parameters": [_query("all", {"type": "boolean"}, "also the stopped ones not yet forgotten (a day)")],
                "responses": {"200": _json(s.ref(WorkerList), "The workers"), **_problems(s, 400)},
            }
        },
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "Serving"}}}},
        "/readyz": {
            "get": {
                "summary": "Readiness of database and broker",
                "responses": {"200": {"description": "Ready"}, "503": {"description": "Something is down"}},
            }
        },
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "Prometheus text format"}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Dockyard API", "version": "1"},
        "components": {"schemas": s.components},
        "paths": paths,
    }


def secured(document: dict) -> dict:
    """Every /v1 operation needs a bearer API key: 401 without a valid one, 403 without its scope;
    and may answer 400 to a URL it cannot take (NUL characters in the path or query)."""
    document["components"]["securitySchemes"] = {
        "apiKey": {"type": "http", "scheme": "bearer", "description": "A Dockyard API key, dky_<id>_<secret> (`dockyard keys create`)"}
    }
    problem = {
        "description": "Problem",
        "content": {"application/problem+json": {"schema": {"$ref": REF.format(model=PUBLIC_NAMES[ProblemView])}}},
    }
    for path, operations in document["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for operation in operations.values():
            operation["security"] = [{"apiKey": []}]
            operation["responses"].update({code: problem for code in ("400", "401", "403")})
    return document


class OpenApiResource:
    def __init__(self):
        self.document = secured(build_document())

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.document
