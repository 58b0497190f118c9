"""One error tree mapped to application/problem+json, once."""

from __future__ import annotations

import logging

import falcon
import peewee

from actors.admission import Refusal, RefusalKind
from actors.dispatch import QueueUnavailable
from storage.errors import Conflict, InvalidSpec, NotFound
from web.representations import FieldProblem, ProblemView, send

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 5


class Problem(falcon.HTTPError):
    """An HTTP error with an optional list of {field, message} pairs."""

    def __init__(
        self,
        status,
        title: str,
        detail: str | None = None,
        *,
        errors: list[tuple[str, str]] | None = None,
        headers=None,
    ):
        super().__init__(status, title=title, description=detail, headers=headers)
        self.errors = errors


def invalid(errors: list[tuple[str, str]], status=falcon.HTTP_422) -> Problem:
    detail = "; ".join(f"{field}: {message}" for field, message in errors)
    return Problem(status, "Invalid request", detail, errors=errors)


REFUSAL_STATUS = {
    RefusalKind.NOT_FOUND: (falcon.HTTP_404, "Not found"),
    RefusalKind.CONFLICT: (falcon.HTTP_409, "Conflict"),
    RefusalKind.INVALID: (falcon.HTTP_422, "Invalid request"),
}


def refused(refusal: Refusal) -> Problem:
    """The problem an admission rule's Refusal is answered with."""
    status, title = REFUSAL_STATUS[refusal.kind]
    return Problem(status, title, f"{refusal.field}: {refusal.message}", errors=[(refusal.field, refusal.message)])


def serialize_problem(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    problem = {
        "type": "about:blank",
        "title": exc.title or "Error",
        "status": exc.status_code,
        "detail": exc.description or exc.title or "",
    }
    errors = getattr(exc, "errors", None)
    if errors:
        problem["errors"] = [FieldProblem.model_construct(field=field, message=message) for field, message in errors]
    send(resp, ProblemView.model_construct(**problem))
    resp.content_type = PROBLEM_JSON


def install_error_handlers(app: falcon.App) -> None:
    app.set_error_serializer(serialize_problem)

    def not_found(req, resp, exc: NotFound, params):
        raise Problem(falcon.HTTP_404, "Not found", str(exc))

    def invalid_spec(req, resp, exc: InvalidSpec, params):
        raise invalid(exc.errors)

    def conflict(req, resp, exc: Conflict, params):
        raise Problem(falcon.HTTP_409, "Conflict", str(exc), errors=exc.errors)

    def queue_unavailable(req, resp, exc: QueueUnavailable, params):
        raise Problem(
            falcon.HTTP_503,
            "Queue unavailable",
            f"{exc}; nothing was created, retry later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    def database_down(req, resp, exc, params):
        log.error("database error: %s", exc)
        raise Problem(
            falcon.HTTP_503,
            "Database unavailable",
            "the database did not answer; retry later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    def unexpected(req, resp, exc, params):
        if isinstance(exc, falcon.HTTPError):
            raise exc
        log.exception("unhandled error on %s %s", req.method, req.path)
        raise Problem(
            falcon.HTTP_500,
            "Internal error",
            "an unexpected error occurred; it has been logged",
        )

    # NOTE: falcon picks the most specific registered handler by MRO, so the
    # catch-all Exception handler does not shadow the ones below.
    app.add_error_handler(Exception, unexpected)
    app.add_error_handler(peewee.OperationalError, database_down)
    app.add_error_handler(peewee.InterfaceError, database_down)
    app.add_error_handler(NotFound, not_found)
    app.add_error_handler(InvalidSpec, invalid_spec)
    app.add_error_handler(Conflict, conflict)
    app.add_error_handler(QueueUnavailable, queue_unavailable)
