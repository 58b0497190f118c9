"""A throwaway Dockyard for the benchmarks: a fresh Postgres database, its own
queue, the sample processors, and real gunicorn / dramatiq processes.

The services come from `infra/dev/services.sh up` (or `make bench`, which
runs it): DOCKYARD_BROKER_URL, BENCH_POSTGRES_URL (or TEST_POSTGRES_URL)
and BENCH_PROCESSORS_MANIFEST (default .dockyard/processors.yaml, written by
infra/processors/build.sh) must be set or present.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import uuid

import docker
import pika
import psycopg2
import requests
import yaml

from actors.broker import broker_queues
from settings import Settings
from storage.api_keys import create_key
from storage.database import open_database
from storage.migrations import migrate
from storage.processors import parse_processor_spec, put_processor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READY_DEADLINE_SECONDS = 30


def need(*names: str) -> str:
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    sys.exit(f'bench: set {" or ".join(names)} (`eval "$(infra/dev/services.sh env)"` after `infra/dev/services.sh up`)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def machine_line() -> str:
    """Machine and versions, for the figures to be comparable."""
    import dramatiq
    import falcon
    import peewee

    cpus = os.cpu_count()
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    try:
        engine = docker.from_env().version().get("Version", "?")
    except docker.errors.DockerException:
        engine = "?"
    return (
        f"{cpus} cpus, {mem_gib:.0f} GiB, Linux {platform.release()}, Python {platform.python_version()}, "
        f"falcon {falcon.__version__}, dramatiq {dramatiq.__version__}, peewee {peewee.__version__}, Docker {engine}"
    )


def cpu_seconds_by_command(labels: dict[int, str] | None = None) -> dict[str, float]:
    """CPU seconds used so far by every process on the machine, summed by command name; a process in `labels`
    (pid -> name), or whose parent is, is counted under that name instead (e.g. "worker" rather than "python")."""
    tick = os.sysconf("SC_CLK_TCK")
    labels = labels or {}
    totals: dict[str, float] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                raw = fh.read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        name = labels.get(int(pid)) or labels.get(int(fields[1])) or {"beam.smp": "rabbitmq"}.get(name, name.split(":")[0])
        totals[name] = totals.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return totals


def cpu_per_item_line(before: dict[str, float], after: dict[str, float], items: int, top: int = 7) -> str:
    """'total N ms: name N, ...': the CPU milliseconds per item between two samples, heaviest first."""
    used = {name: (after[name] - before.get(name, 0.0)) * 1000 / items for name in after}
    heaviest = sorted(((name, ms) for name, ms in used.items() if ms >= 0.5), key=lambda item: -item[1])
    return f"total {sum(used.values()):.0f} ms: " + ", ".join(f"{name} {ms:.0f}" for name, ms in heaviest[:top])


def cpu_share_line(before: dict[str, float], after: dict[str, float], wall: float, top: int = 6) -> str:
    """'name N%' for the heaviest commands between two samples (100% = one cpu)."""
    used = {name: after[name] - before.get(name, 0.0) for name in after}
    heaviest = sorted(used.items(), key=lambda item: -item[1])[:top]
    return ", ".join(f"{name} {seconds / wall * 100:.0f}%" for name, seconds in heaviest if seconds > 0)


class Stack:
    """Everything one benchmark needs; `with Stack() as s:` cleans up all of it."""

    def __init__(self, *, sqlite: bool = False, durable: bool = False):
        """A fresh Postgres database (with `durable`, on the server with fsync and synchronous commits on:
        `infra/dev/services.sh up postgres-durable`), or with `sqlite` a fresh SQLite file as `make run` has."""
        self.broker_url = need("DOCKYARD_BROKER_URL")
        self.sqlite = sqlite
        if sqlite:
            self.server_url = None
        else:
            self.server_url = need("BENCH_DURABLE_POSTGRES_URL") if durable else need("BENCH_POSTGRES_URL", "TEST_POSTGRES_URL")
        self.manifest = os.environ.get("BENCH_PROCESSORS_MANIFEST", os.path.join(ROOT, ".dockyard", "processors.yaml"))
        self.name = f"bench_{uuid.uuid4().hex[:8]}"
        if sqlite:
            self.sqlite_path = os.path.join(ROOT, ".dockyard", f"{self.name}.db")
            self.database_url = f"sqlite:///{self.sqlite_path}"
        else:
            self.database_url = f"{self.server_url.rsplit('/', 1)[0]}/{self.name}"
        self.queue = self.name
        self.processes: list[subprocess.Popen] = []
        self.logs = os.path.join(ROOT, ".dockyard", "bench-logs")

    def __enter__(self) -> Stack:
        self._admin("CREATE DATABASE {}")
        self.settings = Settings(database_url=self.database_url, broker_url=self.broker_url, default_queue=self.queue)
        self.db = open_database(self.database_url, pool_size=4)
        migrate(self.db)
        self._register_processors()
        _, self.api_key = create_key("default", "admin", name="bench", actor="bench")
        os.makedirs(self.logs, exist_ok=True)
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        getattr(self.db, "close_all", self.db.close)()
        with contextlib.suppress(Exception):
            connection = pika.BlockingConnection([pika.URLParameters(url) for url in self.broker_url.split(";")])
            channel = connection.channel()
            for queue in {self.queue, f"{self.queue}.DQ", *broker_queues(self.queue)}:
                channel.queue_delete(queue)
            connection.close()
        self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)")

    def _admin(self, statement: str) -> None:
        if self.sqlite:
            if statement.startswith("DROP"):
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(self.sqlite_path + suffix)
            return
        admin = psycopg2.connect(self.server_url)
        admin.autocommit = True
        admin.cursor().execute(statement.format(self.name))
        admin.close()

    def _register_processors(self) -> None:
        if not os.path.exists(self.manifest):
            sys.exit(f"bench: {self.manifest} is missing; run infra/processors/build.sh {self.manifest}")
        with open(self.manifest) as fh:
            for spec in yaml.safe_load(fh)["processors"]:
                put_processor(parse_processor_spec(spec["name"], spec, self.settings), actor="bench")

    def postgres_line(self) -> str:
        """'Postgres 15 (fsync on, synchronous_commit on)': what a figure's durability was."""
        found = dict(
            self.db.execute_sql(
                "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'server_version')"
            ).fetchall()
        )
        self.db.close()
        return f"Postgres {found['server_version']} (fsync {found['fsync']}, synchronous_commit {found['synchronous_commit']})"

    @property
    def auth_header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
        env.update(
            DOCKYARD_DATABASE_URL=self.database_url,
            DOCKYARD_BROKER_URL=self.broker_url,
            DOCKYARD_DEFAULT_QUEUE=self.queue,
            DOCKYARD_LOG_LEVEL="WARNING",
            DOCKYARD_RATE_LIMIT_PER_SECOND="0",  # the benchmarks measure throughput, not the limit
            PYTHONPATH=ROOT,
        )
        env.update(extra)
        return env

    def spawn(self, name: str, argv: list[str], **env: str) -> subprocess.Popen:
        log = open(os.path.join(self.logs, f"{name}.log"), "w")
        proc = subprocess.Popen(argv, cwd=ROOT, env=self.env(**env), stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(proc)
        return proc

    def start_web(self, *, workers: int, threads: int, **env: str) -> str:
        """gunicorn as the Procfile runs it, on a free loopback port; return its base URL. `env`: DOCKYARD_* overrides."""
        port = free_port()
        argv = [
            os.path.join(os.path.dirname(sys.executable), "gunicorn"),
            "-c",
            "python:web.gunicorn_config",
            "--bind",
            f"127.0.0.1:{port}",
            "--worker-class",
            "gthread",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "web.wsgi:app",
        ]
        proc = self.spawn("web", argv, DOCKYARD_DATABASE_POOL_SIZE=str(threads), **env)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + READY_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                sys.exit(f"bench: gunicorn exited with {proc.returncode}; see {self.logs}/web.log")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/readyz", timeout=1).status_code == 200:
                    return url
            time.sleep(0.2)
        sys.exit(f"bench: gunicorn not ready within {READY_DEADLINE_SECONDS}s; see {self.logs}/web.log")

    def cpu_labels(self) -> dict[int, str]:
        """pid -> name for cpu_seconds_by_command: this stack's processes, and the benchmark itself."""
        names = {os.getpid(): "bench"}
        for proc in self.processes:
            names[proc.pid] = "worker" if "actors" in proc.args else "gunicorn" if "gunicorn" in proc.args[0] else "stack"
        return names

    def start_worker(self, *, threads: int | None, **env: str) -> subprocess.Popen:
        """A dramatiq worker as the Procfile runs it: with `threads` (and a prefetch to match), or, with None,
        the thread count the worker chooses itself (actors/concurrency.py)."""
        argv = [sys.executable, "-m", "actors", "actors.worker"]
        if threads is None:
            return self.spawn("worker", argv, **env)
        return self.spawn("worker", [*argv, "--threads", str(threads)], DOCKYARD_WORKER_THREADS=str(threads), **env)
