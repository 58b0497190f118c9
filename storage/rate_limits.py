"""Per-tenant token buckets for submissions, kept in the database: every API process and host shares them.

A bucket holds up to `burst` tokens and refills at `rate_per_second`; each
submission takes one. On Postgres one statement takes tokens (the row lock
orders concurrent takers) and reads time from the server's clock, so API
hosts with skewed clocks agree.

A tenant's submissions would all update its one bucket row, each waiting
for the one before: at a high rate that row, not the runs' inserts, set the
ceiling of submissions per second. So a process takes tokens in batches of
up to BATCH_SECONDS of the tenant's rate (at most a tenth of its burst; one
when the rate is low) and hands them to its own requests; tokens it took
and did not use within LEASE_SECONDS are dropped. No process hands out a
token the shared bucket did not give; a tenant that was idle may, for a
moment, get the tokens its processes still hold on top of a full bucket
(BATCH_SECONDS of its rate per process at most).
"""

from __future__ import annotations

import datetime as dt
import threading
import time

from storage.api_keys import update_tenant
from storage.database import database, is_postgres
from storage.errors import InvalidSpec
from storage.models import RateBucket, Tenant, utcnow

BATCH_SECONDS = 0.05
LEASE_SECONDS = 1.0

TAKE_POSTGRES = """
INSERT INTO rate_buckets AS b (tenant_id, tokens, updated_at)
VALUES (%(tenant)s, %(burst)s - %(n)s, (now() AT TIME ZONE 'utc'))
ON CONFLICT (tenant_id) DO UPDATE
SET tokens = LEAST(%(burst)s, b.tokens + EXTRACT(EPOCH FROM (EXCLUDED.updated_at - b.updated_at)) * %(rate)s) - %(n)s,
    updated_at = EXCLUDED.updated_at
WHERE LEAST(%(burst)s, b.tokens + EXTRACT(EPOCH FROM (EXCLUDED.updated_at - b.updated_at)) * %(rate)s) >= %(n)s
RETURNING tokens
"""
LEVEL_POSTGRES = """
SELECT LEAST(%(burst)s, tokens + EXTRACT(EPOCH FROM ((now() AT TIME ZONE 'utc') - updated_at)) * %(rate)s)
FROM rate_buckets WHERE tenant_id = %(tenant)s
"""


class _Held:
    """The tokens this process took and has not handed out yet, by tenant and limit (a changed limit starts
    afresh), until they lapse."""

    def __init__(self, clock=time.monotonic):
        self._lock = threading.Lock()
        self._clock = clock
        self._held: dict[tuple, tuple[int, float]] = {}

    def take(self, key: tuple) -> bool:
        with self._lock:
            count, until = self._held.get(key, (0, 0.0))
            if count < 1 or self._clock() >= until:
                return False
            self._held[key] = (count - 1, until)
            return True

    def add(self, key: tuple, count: int) -> None:
        with self._lock:
            held, until = self._held.get(key, (0, 0.0))
            now = self._clock()
            self._held[key] = ((held if now < until else 0) + count, now + LEASE_SECONDS)


_HELD = _Held()


def batch_size(rate_per_second: float, burst: int) -> int:
    """How many tokens one take asks for: BATCH_SECONDS of the rate, at most a tenth of the burst, at least one."""
    return max(1, min(burst // 10, int(rate_per_second * BATCH_SECONDS)))


def take_token(tenant_id: str, rate_per_second: float, burst: int, now: dt.datetime | None = None) -> float:
    """Take one token from the tenant's bucket: 0.0 if taken, else the seconds until one is there.

    `now` (tests) is used on SQLite; Postgres always reads its own clock.
    """
    burst = max(burst, 1)
    held = (tenant_id, rate_per_second, burst)
    if _HELD.take(held):
        return 0.0
    batch = batch_size(rate_per_second, burst)
    if batch > 1 and _take(tenant_id, rate_per_second, burst, batch, now):
        _HELD.add(held, batch - 1)  # one for this request
        return 0.0
    if _take(tenant_id, rate_per_second, burst, 1, now):
        return 0.0
    if is_postgres(database.obj):
        row = database.execute_sql(LEVEL_POSTGRES, {"tenant": tenant_id, "rate": rate_per_second, "burst": burst}).fetchone()
        level = float(row[0]) if row else float(burst)
    else:
        bucket = RateBucket.get_or_none(RateBucket.tenant_id == tenant_id)
        level = float(burst) if bucket is None else _level(bucket, rate_per_second, burst, now or utcnow())
    return max((1 - level) / rate_per_second, 0.001)


def _take(tenant_id: str, rate_per_second: float, burst: int, n: int, now: dt.datetime | None) -> bool:
    """Take `n` tokens from the shared bucket if it holds that many; True if taken."""
    if is_postgres(database.obj):
        params = {"tenant": tenant_id, "rate": rate_per_second, "burst": burst, "n": n}
        return database.execute_sql(TAKE_POSTGRES, params).fetchone() is not None
    now = now or utcnow()
    with database.atomic():
        bucket = RateBucket.get_or_none(RateBucket.tenant_id == tenant_id)
        level = float(burst) if bucket is None else _level(bucket, rate_per_second, burst, now)
        if level < n:
            return False
        RateBucket.insert(tenant_id=tenant_id, tokens=level - n, updated_at=now).on_conflict_replace().execute()
    return True


def _level(bucket: RateBucket, rate_per_second: float, burst: int, now: dt.datetime) -> float:
    return min(burst, bucket.tokens + (now - bucket.updated_at).total_seconds() * rate_per_second)


def set_rate_limit(tenant_id: str, rate_per_second: float | None, burst: int | None, *, actor: str) -> Tenant:
    """Override a tenant's limit (None: back to the settings' default; rate 0: unlimited), audited as `actor`."""
    if rate_per_second is not None and rate_per_second < 0:
        raise InvalidSpec([("rate_per_second", "must be 0 (unlimited) or more")])
    if burst is not None and burst < 1:
        raise InvalidSpec([("burst", "must be 1 or more")])
    with database.atomic():
        tenant = update_tenant(
            tenant_id, "tenant.set_limit", actor=actor, names={"rate_burst": "burst"}, rate_per_second=rate_per_second, rate_burst=burst
        )
        RateBucket.delete().where(RateBucket.tenant_id == tenant_id).execute()  # a new limit starts full
    return tenant


def list_tenants() -> list[Tenant]:
    return list(Tenant.select().order_by(Tenant.id))
