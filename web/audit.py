"""/v1/audit: the audit log of key, processor, schedule and tenant changes, for `admin` keys."""

from __future__ import annotations

import falcon

from storage import audit
from storage.api_keys import Scope
from web.errors import invalid
from web.representations import AuditPage, AuditRecord, send


class AuditResource:
    scopes = {"GET": Scope.ADMIN}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit = req.get_param_as_int("limit", default=50)
        if not 1 <= limit <= audit.MAX_PAGE:
            raise invalid([("limit", f"must be from 1 to {audit.MAX_PAGE}")])
        items, cursor = audit.list_events(
            req.context.tenant_id,
            action=req.get_param("action"),
            target=req.get_param("target"),
            limit=limit,
            cursor=req.get_param("cursor"),
        )
        send(resp, AuditPage.model_construct(items=[AuditRecord.of(e) for e in items], next_cursor=cursor))
