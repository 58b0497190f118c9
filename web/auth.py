"""Who is calling, and may they: API keys and scopes on every /v1 path.

No key, or a bad one: 401. A key without the scope the route needs: 403.
A valid key sets `req.context.tenant_id`, and every read and write below is
limited to that tenant (another tenant's run is 404, as an unknown one).
Health, readiness, metrics and the OpenAPI document need no key.
"""

from __future__ import annotations

import hashlib
import logging
import time

import falcon

from storage import audit
from storage.api_keys import Caller, KeyRefused, authenticate
from storage.caching import AgeCache
from storage.models import utcnow
from web.errors import Problem

log = logging.getLogger(__name__)

PROTECTED_PREFIX = "/v1/"
# A checked key is trusted this long in each API process: a revocation or
# expiry takes effect within it. Keeps a database read off most requests.
KEY_CACHE_SECONDS = 5.0


class KeyCache:
    """Callers of recently checked keys, by the key's SHA-256 (never the key itself)."""

    def __init__(self, max_age_seconds: float = KEY_CACHE_SECONDS, clock=time.monotonic):
        self._cache: AgeCache[Caller] = AgeCache(max_age_seconds, clock)

    def caller(self, token: str | None) -> Caller:
        if not token:
            return authenticate(token)
        # Refusals are not cached (a load that raises): a new key works at once.
        return self._cache.get(
            hashlib.sha256(token.encode()).hexdigest(),
            lambda: authenticate(token),
            still_good=lambda caller: caller.expires_at is None or caller.expires_at > utcnow(),
        )


def actor_of(req: falcon.Request) -> str:
    """Who made a change, for the audit log: the key the request came with."""
    return audit.key_actor(req.context.caller.key_id)


def _bearer(req: falcon.Request) -> str | None:
    header = req.get_header("Authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class Authentication:
    """Falcon middleware: authenticate /v1 requests, then check the route's scope.

    Each resource serving /v1 declares `scopes`, a dict of HTTP method ->
    scope; a responder without one is refused (403), never let through.
    """

    def __init__(self, keys: KeyCache):
        self.keys = keys

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.tenant_id = None
        req.context.caller = None
        if not req.path.startswith(PROTECTED_PREFIX):
            return
        try:
            caller = self.keys.caller(_bearer(req))
        except KeyRefused as exc:
            raise Problem(falcon.HTTP_401, "Unauthorized", str(exc), headers={"WWW-Authenticate": 'Bearer realm="dockyard"'}) from None
        req.context.caller = caller
        req.context.tenant_id = caller.tenant_id

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource, params) -> None:
        if req.path.startswith(PROTECTED_PREFIX):
            check_scope(req, resource, req.context.caller)


def check_scope(req: falcon.Request, resource, caller: Caller | None) -> None:
    """403 unless `caller` has the scope `resource` declares for the request's method (`scopes`, a dict of
    HTTP method -> scope); a responder without one is refused, never let through. The API and the console
    both ask this."""
    if caller is None or resource is None or not hasattr(resource, f"on_{req.method.lower()}"):
        return  # unprotected path, unknown route (404) or method (405)
    scope = getattr(resource, "scopes", {}).get(req.method)
    if scope is None:
        log.error("%s %s has no scope declared; refusing it", req.method, req.uri_template)
        raise Problem(falcon.HTTP_403, "Forbidden", f"{req.method} {req.uri_template} is not open to API keys")
    if not caller.allows(scope):
        raise Problem(falcon.HTTP_403, "Forbidden", f"API key {caller.key_id} lacks the scope {str(scope)!r}")
