"""/v1/processors: register and read processors."""

from __future__ import annotations

import falcon

from settings import Settings
from storage import audit
from storage.models import Processor
from storage.processors import (
    ProcessorCache,
    get_processor,
    list_processors,
    parse_processor_spec,
    put_processor,
    spec_differences,
)
from web.auth import actor_of
from web.representations import processor_json
from web.requests import read_json_body

MAX_SPEC_BYTES = 262_144


class ProcessorsResource:
    scopes = {"GET": "runs:read"}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"items": [processor_json(p) for p in list_processors()]}


class ProcessorResource:
    scopes = {"GET": "runs:read", "PUT": "processors:write"}

    def __init__(self, settings: Settings, cache: ProcessorCache):
        self.settings = settings
        self.cache = cache

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = processor_json(get_processor(name))

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        fields = parse_processor_spec(name, read_json_body(req, MAX_SPEC_BYTES), self.settings)
        with audit.change(actor_of(req), "processor.change", name) as entry:
            current = Processor.get_or_none(Processor.name == name)
            processor, created = put_processor(fields)
            if created or current is None:  # None: created by a PUT racing this one
                entry.action, entry.detail = "processor.add", {"image": processor.image}
            else:
                entry.detail = audit.redacted({k: list(v) for k, v in spec_differences(current, fields).items()})
                entry.skip = not entry.detail
        self.cache.forget(name)
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.media = processor_json(processor)
