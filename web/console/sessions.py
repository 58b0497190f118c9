"""Who is using the console, and may they: the session cookie, the same scopes as the API, CSRF tokens,
and the headers that keep the pages from being framed or running anyone's script.

A page needs a session (signing in with an API key opens one); without one,
a GET is sent to the sign-in page and anything else is 401. Each page and
action declares `scopes` as the API's resources do and is checked by the
same `check_scope`, and reads through the same storage calls with the
session's tenant, so another tenant's run is the same 404. Every POST but
the sign-in's carries the session's CSRF token (the sign-in form carries a
token of its own cookie's). Pages marked `public` (sign-in, static files)
need no session.
"""

from __future__ import annotations

import hmac
from urllib.parse import quote

import falcon

from storage.console_sessions import Session, session_of
from web.auth import check_scope
from web.console.forms import form_of
from web.errors import Problem

CONSOLE = "/console"
SESSION_COOKIE = "dockyard_session"
SIGN_IN_PATH = f"{CONSOLE}/sign-in"
STATIC_PREFIX = f"{CONSOLE}/static/"

# No inline script or style, nothing from elsewhere, no framing: a processor's output shown on a page cannot
# run, load or submit anything even if it got past the escaping.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def is_console(req: falcon.Request) -> bool:
    return req.path == CONSOLE or req.path.startswith(f"{CONSOLE}/")


def is_https(req: falcon.Request) -> bool:
    """Whether the browser came over HTTPS (directly, or to a proxy that says so): cookies are then Secure."""
    return req.forwarded_scheme == "https"


def same_token(given, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


class ConsoleSessions:
    """Falcon middleware for /console, after Authentication: the session, the scope check, CSRF, the headers."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not is_console(req):
            return
        req.context.console = None
        if req.path.startswith(STATIC_PREFIX):
            return  # the stylesheet and the script are public: no session to look up
        session: Session | None = session_of(req.cookies.get(SESSION_COOKIE))
        req.context.console = session
        if session is not None:
            req.context.caller = session.caller
            req.context.tenant_id = session.caller.tenant_id

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource, params) -> None:
        if not is_console(req) or resource is None or getattr(resource, "public", False):
            return
        session: Session | None = req.context.console
        if session is None:
            if req.method == "GET":
                raise falcon.HTTPSeeOther(f"{SIGN_IN_PATH}?next={quote(req.relative_uri, safe='')}")
            raise Problem(falcon.HTTP_401, "Signed out", "sign in again: your session has ended")
        if not getattr(resource, "any_signed_in", False):
            check_scope(req, resource, session.caller)
        if req.method == "POST" and not same_token(form_of(req).get("csrf"), session.csrf_token):
            raise Problem(falcon.HTTP_403, "Forbidden", "the form's CSRF token is missing or stale: reload the page and try again")

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, req_succeeded: bool) -> None:
        if is_console(req):
            resp.set_headers(SECURITY_HEADERS)
            if not req.path.startswith(STATIC_PREFIX):
                resp.cache_control = ["no-store"]
