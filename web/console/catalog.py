"""The console's read-only pages: Processors (as registered: the manifest is the way to change them) and,
for admin keys, the Audit log; through the same calls as the API's GET /v1/processors and /v1/audit."""

from __future__ import annotations

import falcon

from storage import audit
from storage.api_keys import Scope
from storage.processors import list_processors
from web.console.forms import page_link
from web.console.render import page
from web.console.sessions import CONSOLE
from web.representations import AuditRecord, ProcessorView

AUDIT_PER_PAGE = 50


class ProcessorsPage:
    scopes = {"GET": Scope.RUNS_READ}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        processors = [ProcessorView.of(p) for p in list_processors()]
        page(resp, "processors.html", session=req.context.console, processors=processors)


class AuditPage:
    scopes = {"GET": Scope.ADMIN}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        filters = {name: (req.get_param(name) or "").strip() for name in ("action", "target")}
        items, cursor = audit.list_events(
            req.context.tenant_id,
            action=filters["action"] or None,
            target=filters["target"] or None,
            limit=AUDIT_PER_PAGE,
            cursor=req.get_param("cursor"),
        )
        next_page = page_link(f"{CONSOLE}/audit", filters, cursor)
        page(
            resp,
            "audit.html",
            session=req.context.console,
            records=[AuditRecord.of(e) for e in items],
            filters=filters,
            next_page=next_page,
        )


def add_catalog(app: falcon.App) -> None:
    app.add_route(f"{CONSOLE}/processors", ProcessorsPage())
    app.add_route(f"{CONSOLE}/audit", AuditPage())
