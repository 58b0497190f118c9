"""Errors on console pages are pages too; everywhere else they stay problem+json."""

from __future__ import annotations

import falcon

from web.console.render import page
from web.console.sessions import is_console
from web.errors import serialize_problem


def console_or_problem(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    """The app's error serializer: an error page under /console, problem+json elsewhere."""
    if not is_console(req):
        return serialize_problem(req, resp, exc)
    page(
        resp,
        "error.html",
        exc.status,
        title=exc.title or "Error",
        detail=exc.description or exc.title or "",
        code=exc.status_code,
        session=getattr(req.context, "console", None),
    )
