"""Give a request's database connection back to the pool when it ends (peewee opens it on first use)."""

from __future__ import annotations

import falcon
import peewee


class DatabaseConnection:
    def __init__(self, db: peewee.Database):
        self.db = db

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, req_succeeded: bool) -> None:
        # NOTE: a streamed response (logs ?follow) keeps reading after this
        # hook; peewee reopens a connection for that thread on demand.
        if not self.db.is_closed():
            self.db.close()
