"""/v1/processors: register and read processors."""

from __future__ import annotations

import falcon

from settings import Settings
from storage.api_keys import Scope
from storage.processors import ProcessorCache, get_processor, list_processors, parse_processor_spec, put_processor
from web.auth import actor_of
from web.representations import ProcessorList, ProcessorView, send
from web.requests import read_json_body

MAX_SPEC_BYTES = 262_144


class ProcessorsResource:
    scopes = {"GET": Scope.RUNS_READ}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(resp, ProcessorList.model_construct(items=[ProcessorView.of(p) for p in list_processors()]))


class ProcessorResource:
    scopes = {"GET": Scope.RUNS_READ, "PUT": Scope.PROCESSORS_WRITE}

    def __init__(self, settings: Settings, cache: ProcessorCache):
        self.settings = settings
        self.cache = cache

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        send(resp, ProcessorView.of(get_processor(name)))

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        fields = parse_processor_spec(name, read_json_body(req, MAX_SPEC_BYTES), self.settings)
        processor, created = put_processor(fields, actor=actor_of(req))
        self.cache.forget(name)  # this process's submits see the change at once
        send(resp, ProcessorView.of(processor), falcon.HTTP_201 if created else falcon.HTTP_200)
