"""Per-tenant token buckets for submissions, kept in the database: every API process and host shares them.

A bucket holds up to `burst` tokens and refills at `rate_per_second`; each
submission takes one. On Postgres one statement takes the token (the row
lock orders concurrent takers) and reads time from the server's clock, so
API hosts with skewed clocks agree.
"""

from __future__ import annotations

import datetime as dt

from storage.api_keys import update_tenant
from storage.database import database, is_postgres
from storage.errors import InvalidSpec
from storage.models import RateBucket, Tenant, utcnow

TAKE_POSTGRES = """
INSERT INTO rate_buckets AS b (tenant_id, tokens, updated_at)
VALUES (%(tenant)s, %(burst)s - 1, (now() AT TIME ZONE 'utc'))
ON CONFLICT (tenant_id) DO UPDATE
SET tokens = LEAST(%(burst)s, b.tokens + EXTRACT(EPOCH FROM (EXCLUDED.updated_at - b.updated_at)) * %(rate)s) - 1,
    updated_at = EXCLUDED.updated_at
WHERE LEAST(%(burst)s, b.tokens + EXTRACT(EPOCH FROM (EXCLUDED.updated_at - b.updated_at)) * %(rate)s) >= 1
RETURNING tokens
"""
LEVEL_POSTGRES = """
SELECT LEAST(%(burst)s, tokens + EXTRACT(EPOCH FROM ((now() AT TIME ZONE 'utc') - updated_at)) * %(rate)s)
FROM rate_buckets WHERE tenant_id = %(tenant)s
"""


def take_token(tenant_id: str, rate_per_second: float, burst: int, now: dt.datetime | None = None) -> float:
    """Take one token from the tenant's bucket: 0.0 if taken, else the seconds until one is there.

    `now` (tests) is used on SQLite; Postgres always reads its own clock.
    """
    burst = max(burst, 1)
    if is_postgres(database.obj):
        params = {"tenant": tenant_id, "rate": rate_per_second, "burst": burst}
        if database.execute_sql(TAKE_POSTGRES, params).fetchone() is not None:
            return 0.0
        row = database.execute_sql(LEVEL_POSTGRES, params).fetchone()
        level = float(row[0]) if row else float(burst)
        return max((1 - level) / rate_per_second, 0.001)
    now = now or utcnow()
    with database.atomic():
        bucket = RateBucket.get_or_none(RateBucket.tenant_id == tenant_id)
        level = float(burst)
        if bucket is not None:
            level = min(burst, bucket.tokens + (now - bucket.updated_at).total_seconds() * rate_per_second)
        if level < 1:
            return max((1 - level) / rate_per_second, 0.001)
        RateBucket.insert(tenant_id=tenant_id, tokens=level - 1, updated_at=now).on_conflict_replace().execute()
    return 0.0


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
