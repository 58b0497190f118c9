"""Versioned, forward-only schema migrations.

Each migration is SQL written once and never edited after it ships; a new
change is a new entry at the end of MIGRATIONS. `migrate()` applies what is
missing, each step in its own transaction with its version row, so re-running
is a no-op and a failed step leaves the previous version intact.
"""

from __future__ import annotations

import logging

import peewee

from storage.database import is_postgres

log = logging.getLogger(__name__)

# Postgres advisory lock key: two `release` steps at once apply each step once.
MIGRATION_LOCK_KEY = 0x646F636B  # "dock"

DIALECT_TYPES = {
    "sqlite": {
        "serial": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "ts": "TIMESTAMP",
        "float": "REAL",
        "bool": "INTEGER",
    },
    "postgres": {
        "serial": "BIGSERIAL PRIMARY KEY",
        "ts": "TIMESTAMP",
        "float": "DOUBLE PRECISION",
        "bool": "BOOLEAN",
    },
}

V1_INITIAL = """
CREATE TABLE processors (
    name VARCHAR(64) PRIMARY KEY,
    image VARCHAR(512) NOT NULL,
    command TEXT,
    timeout_seconds INTEGER NOT NULL,
    cpus {float} NOT NULL,
    memory_mb INTEGER NOT NULL,
    pids INTEGER NOT NULL,
    network VARCHAR(64) NOT NULL,
    env TEXT NOT NULL,
    queue VARCHAR(64) NOT NULL,
    concurrency INTEGER,
    retry TEXT NOT NULL,
    enabled {bool} NOT NULL,
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL
);
CREATE TABLE runs (
    id VARCHAR(32) PRIMARY KEY,
    tenant_id VARCHAR(64),
    processor VARCHAR(64) NOT NULL REFERENCES processors (name),
    queue VARCHAR(64) NOT NULL,
    state VARCHAR(16) NOT NULL,
    priority VARCHAR(16) NOT NULL,
    payload TEXT,
    labels TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    timeout_seconds INTEGER NOT NULL,
    result TEXT,
    exit_code INTEGER,
    error_reason VARCHAR(64),
    error_message TEXT,
    schedule_id VARCHAR(32),
    scheduled_for {ts},
    replay_of VARCHAR(32),
    idempotency_key VARCHAR(255),
    request_hash VARCHAR(64),
    lease_owner VARCHAR(255),
    lease_expires_at {ts},
    created_at {ts} NOT NULL,
    published_at {ts},
    started_at {ts},
    finished_at {ts},
    next_attempt_at {ts},
    updated_at {ts} NOT NULL
);
CREATE INDEX runs_created_at ON runs (created_at, id);
CREATE INDEX runs_state ON runs (state);
CREATE INDEX runs_processor ON runs (processor, created_at);
CREATE UNIQUE INDEX runs_idempotency ON runs (tenant_id, idempotency_key);
CREATE UNIQUE INDEX runs_schedule_fire ON runs (schedule_id, scheduled_for);
CREATE TABLE run_attempts (
    id {serial},
    run_id VARCHAR(32) NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    worker VARCHAR(255),
    container_id VARCHAR(128),
    started_at {ts} NOT NULL,
    finished_at {ts},
    exit_code INTEGER,
    outcome VARCHAR(32),
    log_tail TEXT
);
CREATE UNIQUE INDEX run_attempts_number ON run_attempts (run_id, number);
CREATE TABLE run_events (
    id {serial},
    run_id VARCHAR(32) NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    from_state VARCHAR(16),
    to_state VARCHAR(16) NOT NULL,
    reason VARCHAR(64),
    message TEXT,
    at {ts} NOT NULL
);
CREATE INDEX run_events_run ON run_events (run_id, id);
CREATE TABLE run_log_chunks (
    id {serial},
    run_id VARCHAR(32) NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    data TEXT NOT NULL,
    at {ts} NOT NULL
);
CREATE INDEX run_log_chunks_run ON run_log_chunks (run_id, attempt, id);
"""

# Idempotency keys unique per tenant, the tenant-less default included (a
# plain unique index lets NULL tenants repeat a key); one replay per run;
# the outbox's scan for unpublished runs.
V2_RECOVERY = """
DROP INDEX runs_idempotency;
CREATE UNIQUE INDEX runs_idempotency_key ON runs ((COALESCE(tenant_id, '')), idempotency_key);
CREATE UNIQUE INDEX runs_replay_of ON runs (replay_of);
CREATE INDEX runs_unpublished ON runs (created_at) WHERE published_at IS NULL
"""

# Cron schedules and what happened at each of their fire times.
V3_SCHEDULES = """
CREATE TABLE schedules (
    id VARCHAR(32) PRIMARY KEY,
    tenant_id VARCHAR(64),
    name VARCHAR(64) NOT NULL,
    cron VARCHAR(128) NOT NULL,
    timezone VARCHAR(64) NOT NULL,
    processor VARCHAR(64) NOT NULL,
    payload TEXT,
    priority VARCHAR(16) NOT NULL,
    overlap VARCHAR(16) NOT NULL,
    catchup_window_seconds INTEGER NOT NULL,
    paused {bool} NOT NULL,
    next_fire_at {ts},
    last_fired_at {ts},
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL
);
CREATE UNIQUE INDEX schedules_name ON schedules ((COALESCE(tenant_id, '')), name);
CREATE TABLE schedule_events (
    id {serial},
    schedule_id VARCHAR(32) NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    scheduled_for {ts} NOT NULL,
    kind VARCHAR(32) NOT NULL,
    run_id VARCHAR(32),
    message TEXT,
    at {ts} NOT NULL
);
CREATE INDEX schedule_events_schedule ON schedule_events (schedule_id, id)
"""

# One record of what each cron fire time came to (fired, skipped, missed or
# not fired), however many leaders saw it; the scheduler's scan of due
# schedules; the retention sweep's scan of old runs.
V4_SCHEDULER = """
CREATE UNIQUE INDEX schedule_events_once ON schedule_events (schedule_id, scheduled_for)
    WHERE kind IN ('fired', 'skipped_overlap', 'missed', 'not_fired');
CREATE INDEX schedules_next_fire ON schedules (next_fire_at);
CREATE INDEX runs_finished_at ON runs (finished_at)
"""

# Tenants and their API keys (only a SHA-256 of each key's secret is kept).
# Runs and schedules made before keys existed belong to the tenant "default",
# which `dockyard keys create --tenant default` gives a key to.
V5_API_KEYS = """
CREATE TABLE tenants (
    id VARCHAR(64) PRIMARY KEY,
    created_at {ts} NOT NULL
);
CREATE TABLE api_keys (
    id VARCHAR(32) PRIMARY KEY,
    tenant_id VARCHAR(64) NOT NULL REFERENCES tenants (id),
    name VARCHAR(128),
    secret_sha256 VARCHAR(64) NOT NULL,
    scopes TEXT NOT NULL,
    created_at {ts} NOT NULL,
    expires_at {ts},
    revoked_at {ts}
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);
INSERT INTO tenants (id, created_at) VALUES ('default', CURRENT_TIMESTAMP);
UPDATE runs SET tenant_id = 'default' WHERE tenant_id IS NULL;
UPDATE schedules SET tenant_id = 'default' WHERE tenant_id IS NULL
"""

# Per-tenant submission rate limits: overrides on the tenant, and one token
# bucket per tenant shared by every API process.
V6_RATE_LIMITS = """
ALTER TABLE tenants ADD COLUMN rate_per_second {float};
ALTER TABLE tenants ADD COLUMN rate_burst INTEGER;
CREATE TABLE rate_buckets (
    tenant_id VARCHAR(64) PRIMARY KEY,
    tokens {float} NOT NULL,
    updated_at {ts} NOT NULL
)
"""

# Concurrency quotas: a tenant's override, and an index that makes counting
# what is running (per tenant, per processor) cheap at every claim.
V7_QUOTAS = """
ALTER TABLE tenants ADD COLUMN max_running INTEGER;
CREATE INDEX runs_running_tenant ON runs (tenant_id) WHERE state = 'running';
CREATE INDEX runs_running_processor ON runs (processor) WHERE state = 'running'
"""

# The audit log of key, processor, schedule and tenant changes.
V8_AUDIT = """
CREATE TABLE audit_events (
    id {serial},
    at {ts} NOT NULL,
    actor VARCHAR(128) NOT NULL,
    tenant_id VARCHAR(64),
    action VARCHAR(64) NOT NULL,
    target VARCHAR(128) NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, id)
"""

# Each run keeps the trace context it was submitted in (a W3C traceparent).
V9_TRACES = """
ALTER TABLE runs ADD COLUMN traceparent VARCHAR(64)
"""

# What each attempt's container used, and the run's totals (CPU summed, memory's highest peak).
V10_USAGE = """
ALTER TABLE run_attempts ADD COLUMN cpu_seconds {float};
ALTER TABLE run_attempts ADD COLUMN peak_memory_bytes BIGINT;
ALTER TABLE runs ADD COLUMN cpu_seconds {float};
ALTER TABLE runs ADD COLUMN peak_memory_bytes BIGINT
"""

# Signed-in web console sessions: the cookie's token is kept only as its SHA-256, with the key it speaks for.
V11_CONSOLE_SESSIONS = """
CREATE TABLE console_sessions (
    token_sha256 VARCHAR(64) PRIMARY KEY,
    key_id VARCHAR(32) NOT NULL,
    csrf_token VARCHAR(64) NOT NULL,
    created_at {ts} NOT NULL,
    expires_at {ts} NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at)
"""

# The run lists at a million runs: one index per filter the API and the console
# offer, each ending in (created_at, id) after the tenant, so a page is a short
# walk whatever the history's size. They replace the tenant-less (created_at,
# id) and (processor, created_at) indexes, which no query needs any more.
V12_RUN_LISTS = """
CREATE INDEX runs_tenant_created ON runs (tenant_id, created_at, id);
CREATE INDEX runs_tenant_state ON runs (tenant_id, state, created_at, id);
CREATE INDEX runs_tenant_processor ON runs (tenant_id, processor, created_at, id);
CREATE INDEX runs_tenant_schedule ON runs (tenant_id, schedule_id, created_at, id) WHERE schedule_id IS NOT NULL;
DROP INDEX runs_created_at;
DROP INDEX runs_processor
"""

# The workers that report in: each worker process registers at start and
# heartbeats; one silent past its heartbeat window is shown as lost.
V13_WORKERS = """
CREATE TABLE workers (
    name VARCHAR(255) PRIMARY KEY,
    host VARCHAR(255) NOT NULL,
    pid INTEGER NOT NULL,
    engine VARCHAR(512) NOT NULL,
    engine_name VARCHAR(255),
    threads INTEGER NOT NULL,
    busy INTEGER NOT NULL,
    broker_node VARCHAR(255),
    version VARCHAR(64) NOT NULL,
    heartbeat_seconds INTEGER NOT NULL,
    started_at {ts} NOT NULL,
    last_seen_at {ts} NOT NULL,
    stopped_at {ts}
);
CREATE INDEX workers_last_seen ON workers (last_seen_at)
"""

# (version, name, sql). Append only.
MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "initial", V1_INITIAL),
    (2, "recovery", V2_RECOVERY),
    (3, "schedules", V3_SCHEDULES),
    (4, "scheduler", V4_SCHEDULER),
    (5, "api_keys", V5_API_KEYS),
    (6, "rate_limits", V6_RATE_LIMITS),
    (7, "quotas", V7_QUOTAS),
    (8, "audit", V8_AUDIT),
    (9, "traces", V9_TRACES),
    (10, "usage", V10_USAGE),
    (11, "console_sessions", V11_CONSOLE_SESSIONS),
    (12, "run_lists", V12_RUN_LISTS),
    (13, "workers", V13_WORKERS),
]

VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS dockyard_migrations (
    version INTEGER PRIMARY KEY,
    name VARCHAR(128) NOT NULL,
    applied_at {ts} NOT NULL
)
"""


def _statements(sql: str, dialect: str) -> list[str]:
    text = sql.format(**DIALECT_TYPES[dialect])
    return [s.strip() for s in text.split(";") if s.strip()]


def applied_versions(db: peewee.Database) -> set[int]:
    """Versions already recorded in the database."""
    dialect = "postgres" if is_postgres(db) else "sqlite"
    db.execute_sql(VERSION_TABLE.format(**DIALECT_TYPES[dialect]))
    return {row[0] for row in db.execute_sql("SELECT version FROM dockyard_migrations")}


def migrate(db: peewee.Database) -> list[int]:
    """Apply every missing migration in order; return the versions applied."""
    dialect = "postgres" if is_postgres(db) else "sqlite"
    applied_now = []
    with db.connection_context():
        applied_versions(db)
        for version, name, sql in MIGRATIONS:
            with db.atomic():
                if dialect == "postgres":
                    db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
                done = db.execute_sql(
                    "SELECT 1 FROM dockyard_migrations WHERE version = ?".replace("?", db.param),
                    (version,),
                )
                if done.fetchone():
                    continue
                for statement in _statements(sql, dialect):
                    db.execute_sql(statement)
                db.execute_sql(
                    "INSERT INTO dockyard_migrations (version, name, applied_at) VALUES (?, ?, CURRENT_TIMESTAMP)".replace("?", db.param),
                    (version, name),
                )
                log.info("applied migration %04d_%s", version, name)
                applied_now.append(version)
    return applied_now


def pending(db: peewee.Database) -> list[int]:
    """Versions not yet applied."""
    with db.connection_context():
        done = applied_versions(db)
    return [v for v, _, _ in MIGRATIONS if v not in done]
