"""/v1/workers: the worker processes that reported in, for `admin` keys (workers are shared by every tenant)."""

from __future__ import annotations

import falcon

from storage import workers
from storage.api_keys import Scope
from web.representations import WorkerList, WorkerView, send


class WorkersResource:
    scopes = {"GET": Scope.ADMIN}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        rows = workers.list_workers(include_gone=req.get_param_as_bool("all", default=False))
        send(resp, WorkerList.model_construct(items=[WorkerView.of(w, state=state) for w, state in rows]))
