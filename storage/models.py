"""Peewee models: the tables the migrations in storage/migrations.py create."""

from __future__ import annotations

import datetime as dt

import peewee

from storage.database import database
from storage.fields import JSONField


def utcnow() -> dt.datetime:
    """Naive UTC now: every timestamp column holds UTC."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class Processor(BaseModel):
    name = peewee.CharField(primary_key=True, max_length=64)
    image = peewee.CharField(max_length=512)
    command = JSONField(null=True)
    timeout_seconds = peewee.IntegerField()
    cpus = peewee.FloatField()
    memory_mb = peewee.IntegerField()
    pids = peewee.IntegerField()
    network = peewee.CharField(max_length=64, default="none")
    env = JSONField(default=dict)
    queue = peewee.CharField(max_length=64)
    concurrency = peewee.IntegerField(null=True)
    retry = JSONField(default=dict)
    enabled = peewee.BooleanField(default=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "processors"


class Run(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=32)
    tenant_id = peewee.CharField(max_length=64, null=True)
    processor = peewee.CharField(max_length=64)
    queue = peewee.CharField(max_length=64)
    state = peewee.CharField(max_length=16)
    priority = peewee.CharField(max_length=16)
    payload = JSONField(null=True)
    labels = JSONField(default=dict)
    attempts = peewee.IntegerField(default=0)
    max_attempts = peewee.IntegerField(default=1)
    timeout_seconds = peewee.IntegerField()
    result = JSONField(null=True)
    exit_code = peewee.IntegerField(null=True)
    error_reason = peewee.CharField(max_length=64, null=True)
    error_message = peewee.TextField(null=True)
    schedule_id = peewee.CharField(max_length=32, null=True)
    scheduled_for = peewee.DateTimeField(null=True)
    replay_of = peewee.CharField(max_length=32, null=True)
    idempotency_key = peewee.CharField(max_length=255, null=True)
    request_hash = peewee.CharField(max_length=64, null=True)
    # The W3C traceparent of the span that submitted the run: its attempts continue that trace.
    traceparent = peewee.CharField(max_length=64, null=True)
    # What its attempts' containers used: CPU summed, the highest memory peak (null: not measured).
    cpu_seconds = peewee.FloatField(null=True)
    peak_memory_bytes = peewee.BigIntegerField(null=True)
    lease_owner = peewee.CharField(max_length=255, null=True)
    lease_expires_at = peewee.DateTimeField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    published_at = peewee.DateTimeField(null=True)
    started_at = peewee.DateTimeField(null=True)
    finished_at = peewee.DateTimeField(null=True)
    next_attempt_at = peewee.DateTimeField(null=True)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "runs"


class RunAttempt(BaseModel):
    id = peewee.AutoField()
    run = peewee.ForeignKeyField(Run, column_name="run_id", backref="attempt_rows", on_delete="CASCADE")
    number = peewee.IntegerField()
    worker = peewee.CharField(max_length=255, null=True)
    container_id = peewee.CharField(max_length=128, null=True)
    started_at = peewee.DateTimeField(default=utcnow)
    finished_at = peewee.DateTimeField(null=True)
    exit_code = peewee.IntegerField(null=True)
    outcome = peewee.CharField(max_length=32, null=True)
    log_tail = peewee.TextField(null=True)
    cpu_seconds = peewee.FloatField(null=True)
    peak_memory_bytes = peewee.BigIntegerField(null=True)

    class Meta:
        table_name = "run_attempts"


class RunEvent(BaseModel):
    id = peewee.AutoField()
    run = peewee.ForeignKeyField(Run, column_name="run_id", backref="event_rows", on_delete="CASCADE")
    from_state = peewee.CharField(max_length=16, null=True)
    to_state = peewee.CharField(max_length=16)
    reason = peewee.CharField(max_length=64, null=True)
    message = peewee.TextField(null=True)
    at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "run_events"


class RunLogChunk(BaseModel):
    id = peewee.AutoField()
    run = peewee.ForeignKeyField(Run, column_name="run_id", on_delete="CASCADE")
    attempt = peewee.IntegerField()
    data = peewee.TextField()
    at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "run_log_chunks"


class Schedule(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=32)
    tenant_id = peewee.CharField(max_length=64, null=True)
    name = peewee.CharField(max_length=64)
    cron = peewee.CharField(max_length=128)
    timezone = peewee.CharField(max_length=64)
    processor = peewee.CharField(max_length=64)
    payload = JSONField(null=True)
    priority = peewee.CharField(max_length=16)
    overlap = peewee.CharField(max_length=16)
    catchup_window_seconds = peewee.IntegerField()
    paused = peewee.BooleanField(default=False)
    next_fire_at = peewee.DateTimeField(null=True)
    last_fired_at = peewee.DateTimeField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "schedules"


class ScheduleEvent(BaseModel):
    id = peewee.AutoField()
    schedule = peewee.ForeignKeyField(Schedule, column_name="schedule_id", on_delete="CASCADE")
    scheduled_for = peewee.DateTimeField()
    kind = peewee.CharField(max_length=32)
    run_id = peewee.CharField(max_length=32, null=True)
    message = peewee.TextField(null=True)
    at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "schedule_events"


class Tenant(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=64)
    created_at = peewee.DateTimeField(default=utcnow)
    # Submission rate limit overrides; null: the settings' defaults.
    rate_per_second = peewee.FloatField(null=True)
    rate_burst = peewee.IntegerField(null=True)
    # Concurrency quota override (runs running at once); null: the settings' default, 0: none.
    max_running = peewee.IntegerField(null=True)

    class Meta:
        table_name = "tenants"


class ApiKey(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=32)  # the public part of the key
    tenant = peewee.ForeignKeyField(Tenant, column_name="tenant_id", backref="keys")
    name = peewee.CharField(max_length=128, null=True)
    secret_sha256 = peewee.CharField(max_length=64)
    scopes = JSONField(default=list)
    created_at = peewee.DateTimeField(default=utcnow)
    expires_at = peewee.DateTimeField(null=True)
    revoked_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "api_keys"


class RateBucket(BaseModel):
    tenant_id = peewee.CharField(primary_key=True, max_length=64)
    tokens = peewee.FloatField()
    updated_at = peewee.DateTimeField()

    class Meta:
        table_name = "rate_buckets"


class AuditEvent(BaseModel):
    id = peewee.AutoField()
    at = peewee.DateTimeField(default=utcnow)
    actor = peewee.CharField(max_length=128)  # key:<key id> or cli:<user>@<host>
    tenant_id = peewee.CharField(max_length=64, null=True)  # null: a global change (processors)
    action = peewee.CharField(max_length=64)
    target = peewee.CharField(max_length=128)
    detail = JSONField(default=dict)

    class Meta:
        table_name = "audit_events"


class ConsoleSession(BaseModel):
    token_sha256 = peewee.CharField(primary_key=True, max_length=64)  # the cookie's token is never kept
    key_id = peewee.CharField(max_length=32)  # the API key signed in with: its scopes and tenant, checked on use
    csrf_token = peewee.CharField(max_length=64)
    created_at = peewee.DateTimeField(default=utcnow)
    expires_at = peewee.DateTimeField()

    class Meta:
        table_name = "console_sessions"


class Worker(BaseModel):
    """A worker process that reported in (storage/workers.py): registered at start, then heartbeats."""

    name = peewee.CharField(primary_key=True, max_length=255)  # DOCKYARD_WORKER_NAME: host-pid unless set
    host = peewee.CharField(max_length=255)
    pid = peewee.IntegerField()
    engine = peewee.CharField(max_length=512)  # DOCKYARD_DOCKER_URL, without credentials
    engine_name = peewee.CharField(max_length=255, null=True)  # the engine's own name (docker info), if it answered
    threads = peewee.IntegerField()
    busy = peewee.IntegerField()
    broker_node = peewee.CharField(max_length=255, null=True)  # host:port of the RabbitMQ node it consumes from
    version = peewee.CharField(max_length=64)
    heartbeat_seconds = peewee.IntegerField()
    started_at = peewee.DateTimeField(default=utcnow)
    last_seen_at = peewee.DateTimeField(default=utcnow)
    stopped_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "workers"
