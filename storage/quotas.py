"""Concurrency quotas: how many runs of one tenant, and of one processor, may be running at once, cluster-wide.

A worker claims a queued run (queued -> running) only if every quota that
applies has room, counted in the same transaction as the claim. Claims of
the same tenant or processor are serialised: a transaction-scoped advisory
lock per quota on Postgres, the database write lock (BEGIN IMMEDIATE) on
SQLite. A run over a quota is not failed: it stays queued and the worker
hands its message back to come again later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from storage.api_keys import update_tenant
from storage.caching import AgeCache
from storage.database import database, is_postgres
from storage.errors import InvalidSpec
from storage.models import Run, Tenant
from storage.run_states import RunState, transition

# A tenant's quota as read at most this long ago (changes reach workers within it).
TENANT_QUOTA_MAX_AGE_SECONDS = 5.0

TENANT = "tenant"
PROCESSOR = "processor"


@dataclass(frozen=True)
class Quota:
    kind: str  # TENANT or PROCESSOR
    name: str
    limit: int

    def lock_key(self) -> int:
        """A signed 64-bit advisory lock key for this quota (distinct from the scheduler's)."""
        digest = hashlib.sha256(f"dockyard.quota.{self.kind}.{self.name}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    def running(self) -> int:
        column = Run.tenant_id if self.kind == TENANT else Run.processor
        return Run.select().where((Run.state == RunState.RUNNING) & (column == self.name)).count()


class OverQuota(Exception):
    """A quota has no room for the run now; it stays queued."""

    def __init__(self, quota: Quota, running: int):
        self.quota, self.running = quota, running
        super().__init__(f"{quota.kind} {quota.name!r} has {running} run(s) running, its quota is {quota.limit}")


def claim(run_id: str, quotas: list[Quota], *, wait_until: dt.datetime | None = None, **changes) -> RunState | None:
    """Move a queued run to running if every quota has room: run_states.transition's answer, or OverQuota.

    `changes` are the transition's keyword arguments (fence, lease...).
    Over a quota, the run stays queued with `next_attempt_at` = `wait_until`,
    when its handed-back message is due: if that message is lost, the outbox
    publishes the run again once it is long overdue, as for a retry.
    """
    if not quotas:
        return transition(run_id, RunState.RUNNING, **changes)
    with database.atomic():
        if is_postgres(database.obj):
            # Sorted: two claims taking the same two locks take them in one order.
            # NOTE: correct under READ COMMITTED (the default): the count below
            # is a new statement, so it sees claims committed while we waited.
            for key in sorted({q.lock_key() for q in quotas}):
                database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (key,))
        for quota in quotas:
            running = quota.running()
            if running >= quota.limit:
                over = OverQuota(quota, running)
                waiting = (Run.id == run_id) & (Run.state == RunState.QUEUED)
                Run.update(next_attempt_at=wait_until).where(waiting).execute()
                break
        else:
            return transition(run_id, RunState.RUNNING, **changes)
    raise over


class QuotaBook:
    """The quotas that apply to a run: its tenant's (cached) and its processor's `concurrency`."""

    def __init__(self, default_tenant_limit: int, max_age_seconds: float = TENANT_QUOTA_MAX_AGE_SECONDS):
        self.default_tenant_limit = default_tenant_limit
        self._tenants: AgeCache[int | None] = AgeCache(max_age_seconds)

    def for_run(self, run: Run, processor_concurrency: int | None) -> list[Quota]:
        quotas = []
        if run.tenant_id is not None:
            limit = self._tenant_limit(run.tenant_id)
            if limit:
                quotas.append(Quota(TENANT, run.tenant_id, limit))
        if processor_concurrency:
            quotas.append(Quota(PROCESSOR, run.processor, processor_concurrency))
        return quotas

    def _tenant_limit(self, tenant_id: str) -> int:
        override = self._tenants.get(tenant_id, lambda: Tenant.select(Tenant.max_running).where(Tenant.id == tenant_id).scalar())
        return self.default_tenant_limit if override is None else override


def set_tenant_quota(tenant_id: str, max_running: int | None, *, actor: str) -> Tenant:
    """Override a tenant's concurrency quota (None: back to the settings' default; 0: no quota), audited as `actor`."""
    if max_running is not None and max_running < 0:
        raise InvalidSpec([("max_running", "must be 0 (no quota) or more")])
    return update_tenant(tenant_id, "tenant.set_quota", actor=actor, max_running=max_running)
