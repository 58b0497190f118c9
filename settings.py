"""One frozen Settings object, read from DOCKYARD_* environment variables.

Only entry points call `Settings.from_env()`; everything else receives the
object as an argument.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

PREFIX = "DOCKYARD_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("auto", "json", "text")
QUEUE_TYPES = ("classic", "quorum")
# A run queue's priority levels name its broker queues (runs.high: actors/broker.py).
PRIORITY_LEVELS = ("critical", "high", "normal", "low")


class SettingsError(ValueError):
    """A DOCKYARD_* variable is unknown or malformed."""


def dockyard_version() -> str:
    """The installed Dockyard's version (pyproject.toml), as `dockyard --version` and the workers list show it."""
    from importlib import metadata

    try:
        return metadata.version("dockyard")
    except metadata.PackageNotFoundError:
        return "unknown"


def _default_worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///.dockyard/dockyard.db"
    database_pool_size: int = 10
    # One RabbitMQ URL, or a cluster's nodes separated by ";": a process connects to the first that answers,
    # starting from a node of its own (so processes spread over the nodes), and fails over to the next.
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    docker_url: str = "unix:///var/run/docker.sock"
    # A remote engine over TLS (docker_url tcp://host:2376): each is a file's path or the PEM text itself.
    # The CA verifies the engine; the client certificate and key prove the worker to it (dockerd --tlsverify).
    docker_tls_ca: str = field(default="", repr=False)
    docker_tls_cert: str = field(default="", repr=False)
    docker_tls_key: str = field(default="", repr=False)
    default_queue: str = "runs"
    # "classic", or "quorum" on a RabbitMQ cluster: replicated queues that lose no accepted run with a node.
    # Fixed when the queues are first declared (docs/operations.md, "RabbitMQ").
    queue_type: str = "classic"
    # Runs a worker process runs at once; 0 chooses from the Docker engine's CPUs (actors/concurrency.py).
    worker_threads: int = 0
    worker_name: str = field(default_factory=_default_worker_name)
    # A worker writes its heartbeat this often; silent for 3 periods, it shows as lost.
    worker_heartbeat_seconds: int = 10
    # Bounds that keep a delivery under RabbitMQ's consumer_timeout (see
    # infra/rabbitmq/rabbitmq.conf): the longest run a processor may ask for.
    max_timeout_seconds: int = 3600
    default_timeout_seconds: int = 300
    max_payload_bytes: int = 1_048_576
    max_log_bytes: int = 1_048_576
    max_result_bytes: int = 65_536
    log_tail_bytes: int = 4096
    container_user: str = "65534:65534"
    container_tmpfs_mb: int = 64
    default_memory_mb: int = 256
    default_cpus: float = 1.0
    default_pids: int = 128
    log_level: str = "INFO"
    # "json" (one object per line), "text", or "auto": text at a terminal, JSON elsewhere.
    log_format: str = "auto"
    # RabbitMQ's consumer_timeout (infra/rabbitmq/rabbitmq.conf): a delivery
    # held unacked longer than this is redelivered.
    broker_consumer_timeout_seconds: int = 10800
    # The longest retry backoff a processor may ask for.
    max_backoff_seconds: int = 3600
    # Where the CLI's user commands send requests, and the API key they send.
    api_url: str = "http://127.0.0.1:8000"
    api_key: str = field(default="", repr=False)
    # Retries granted to engine failures (Docker unreachable, worker lost)
    # on top of a processor's own max_attempts.
    infrastructure_retries: int = 3
    # A running attempt's lease: renewed by its worker every third of this;
    # a redelivery finding it expired takes the run over.
    lease_seconds: int = 30
    # Messages a run queue holds before RabbitMQ refuses publishes (x-max-length,
    # x-overflow reject-publish); fixed when the queue is first declared.
    queue_max_length: int = 100_000
    # On SIGTERM a worker lets its runs finish for this long, then kills
    # their containers and hands the runs back to be retried elsewhere.
    worker_shutdown_grace_seconds: int = 25
    # Submissions (POST /v1/runs, replay, trigger) per tenant: a token bucket
    # refilling at this rate up to the burst; 0 turns the limit off. A
    # tenant's own limit (`dockyard tenants set-limit`) overrides these.
    rate_limit_per_second: float = 50.0
    rate_limit_burst: int = 100
    # Runs of one tenant running at once, across every worker; runs beyond it
    # wait in the queue. 0: no quota. `dockyard tenants set-quota` overrides it.
    tenant_max_running: int = 0
    # A schedule may not fire more often than this.
    schedule_min_interval_seconds: int = 60
    # Where the scheduler's leader sends housekeeping messages (workers consume it).
    housekeeping_queue: str = "housekeeping"
    # Runs that ended longer ago than this are deleted with their history; 0 keeps everything.
    retention_days: int = 30
    # Prometheus /metrics of a worker and of a scheduler process; 0 turns it off.
    worker_metrics_port: int = 9191
    scheduler_metrics_port: int = 9192

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from DOCKYARD_* variables; unknown or malformed ones fail."""
        environ = os.environ if environ is None else environ
        known = {f.name: f for f in fields(cls)}
        values = {}
        for key, raw in environ.items():
            if not key.startswith(PREFIX):
                continue
            name = key[len(PREFIX) :].lower()
            if name not in known:
                raise SettingsError(f"{key}: unknown setting (known: {', '.join(sorted(PREFIX + k.upper() for k in known))})")
            values[name] = _parse(key, raw, known[name])
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse values that parse but make no sense together."""
        positive = [
            "database_pool_size",
            "max_timeout_seconds",
            "default_timeout_seconds",
            "max_payload_bytes",
            "max_log_bytes",
            "max_result_bytes",
            "container_tmpfs_mb",
            "default_memory_mb",
            "default_pids",
            "log_tail_bytes",
            "broker_consumer_timeout_seconds",
            "max_backoff_seconds",
            "lease_seconds",
            "worker_heartbeat_seconds",
            "queue_max_length",
            "worker_shutdown_grace_seconds",
            "schedule_min_interval_seconds",
        ]
        for name in positive:
            if getattr(self, name) <= 0:
                raise SettingsError(f"{PREFIX}{name.upper()}: must be greater than 0")
        for name in ("worker_threads", "retention_days", "worker_metrics_port", "scheduler_metrics_port", "tenant_max_running"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{PREFIX}{name.upper()}: must be 0 or more")
        if self.infrastructure_retries < 0:
            raise SettingsError(f"{PREFIX}INFRASTRUCTURE_RETRIES: must be 0 or more")
        if self.rate_limit_per_second < 0:
            raise SettingsError(f"{PREFIX}RATE_LIMIT_PER_SECOND: must be 0 (no limit) or more")
        if self.rate_limit_burst < 1:
            raise SettingsError(f"{PREFIX}RATE_LIMIT_BURST: must be 1 or more")
        if self.default_cpus <= 0:
            raise SettingsError(f"{PREFIX}DEFAULT_CPUS: must be greater than 0")
        if self.log_level.upper() not in LOG_LEVELS:
            raise SettingsError(f"{PREFIX}LOG_LEVEL: must be one of {', '.join(LOG_LEVELS)}")
        if self.queue_type not in QUEUE_TYPES:
            raise SettingsError(f"{PREFIX}QUEUE_TYPE: must be one of {', '.join(QUEUE_TYPES)}")
        level = self.housekeeping_queue.rpartition(".")[2]
        if level in PRIORITY_LEVELS:
            raise SettingsError(f"{PREFIX}HOUSEKEEPING_QUEUE: must not end in .{level}, a run queue's priority level")
        if self.log_format not in LOG_FORMATS:
            raise SettingsError(f"{PREFIX}LOG_FORMAT: must be one of {', '.join(LOG_FORMATS)}")
        # NOTE: a delivery stays unacked for a whole run (and a retry's whole
        # backoff); past consumer_timeout RabbitMQ closes the channel and
        # redelivers, so the longest run plus the longest backoff must fit.
        if self.max_timeout_seconds + self.max_backoff_seconds >= self.broker_consumer_timeout_seconds:
            raise SettingsError(
                f"{PREFIX}MAX_TIMEOUT_SECONDS ({self.max_timeout_seconds}) + {PREFIX}MAX_BACKOFF_SECONDS ({self.max_backoff_seconds}) "
                f"must stay below {PREFIX}BROKER_CONSUMER_TIMEOUT_SECONDS ({self.broker_consumer_timeout_seconds}), "
                "RabbitMQ's consumer_timeout; raise consumer_timeout in rabbitmq.conf first"
            )
        for url in self.broker_urls():
            if not url.startswith(("amqp://", "amqps://")):
                raise SettingsError(f"{PREFIX}BROKER_URL: {url!r} is not an amqp:// or amqps:// URL (several are separated by ';')")
        if bool(self.docker_tls_cert) != bool(self.docker_tls_key):
            raise SettingsError(f"{PREFIX}DOCKER_TLS_CERT and {PREFIX}DOCKER_TLS_KEY: give both or neither")
        if (self.docker_tls_ca or self.docker_tls_cert) and not self.docker_url.startswith("tcp://"):
            raise SettingsError(f"{PREFIX}DOCKER_TLS_*: TLS needs a tcp:// {PREFIX}DOCKER_URL, not {self.docker_url!r}")
        if self.default_timeout_seconds > self.max_timeout_seconds:
            raise SettingsError(f"{PREFIX}DEFAULT_TIMEOUT_SECONDS: must not exceed DOCKYARD_MAX_TIMEOUT_SECONDS")

    def broker_urls(self) -> list[str]:
        """The RabbitMQ nodes of DOCKYARD_BROKER_URL, in the order given."""
        return [url.strip() for url in self.broker_url.split(";") if url.strip()]

    def replace(self, **changes) -> Settings:
        """Return a copy with some fields changed (tests, CLI flags)."""
        return dataclasses.replace(self, **changes)


def _parse(key: str, raw: str, f: dataclasses.Field):
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
    except ValueError:
        raise SettingsError(f"{key}: expected {kind}, got {raw!r}") from None
    if not raw:
        raise SettingsError(f"{key}: must not be empty")
    return raw
