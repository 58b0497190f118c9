"""Per-tenant submission rate limits: 429 with Retry-After past a tenant's token bucket.

Resources that make runs name the methods that count (`rate_limited`); the
bucket lives in the database (storage.rate_limits), so the limit holds
across gunicorn workers and API hosts.
"""

from __future__ import annotations

import math

import falcon

from settings import Settings
from storage.api_keys import Caller
from storage.rate_limits import take_token
from web.errors import Problem


class SubmissionRateLimit:
    """Falcon middleware, after Authentication: take a token for each submission of the caller's tenant."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def limit_of(self, caller: Caller) -> tuple[float, int]:
        rate = caller.rate_per_second if caller.rate_per_second is not None else self.settings.rate_limit_per_second
        return rate, caller.rate_burst or self.settings.rate_limit_burst

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource, params) -> None:
        caller: Caller | None = getattr(req.context, "caller", None)
        if caller is None or req.method not in getattr(resource, "rate_limited", ()):
            return
        rate, burst = self.limit_of(caller)
        if rate <= 0:
            return  # no limit
        wait = take_token(caller.tenant_id, rate, burst)
        if wait > 0:
            raise Problem(
                falcon.HTTP_429,
                "Too many requests",
                f"tenant {caller.tenant_id!r} may submit {rate:g} runs per second (bursts of {burst}); retry in {wait:.1f}s",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
