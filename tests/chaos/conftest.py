"""A whole Dockyard as real processes (the Procfile's web, workers, scheduler) on a fresh Postgres
database and its own queue, a client that keeps submitting, and the ledger that counts what was lost.

The services come from `make test` (infra/dev/services.sh), which these tests
also use to restart RabbitMQ and Postgres.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field

import docker
import psycopg2
import pytest
import requests

from tests.conftest import api_session, cli_key, required_env, unique, wait_ready
from tests.e2e.test_procfile import free_port, procfile
from tests.integration.conftest import delete_queues, fresh_postgres_database

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent
SERVICES = ROOT / "infra" / "dev" / "services.sh"
TERMINAL = ("succeeded", "failed", "timed_out", "dead_letter", "cancelled")
SLOWEST_RUN = "SELECT coalesce(max(extract(epoch FROM finished_at - created_at)), 0) FROM runs"
# Recovery, not speed: a run caught in a failure must still end within this.
RECOVERY_BOUND_SECONDS = 60


def services(*args: str) -> None:
    """Stop or start a shared service through the script that started it."""
    subprocess.run([SERVICES, *args], check=True, timeout=180, stdout=subprocess.DEVNULL)


@dataclass
class Submitter:
    """A client submitting runs at a steady pace, each with its own Idempotency-Key, retrying
    (same key) on 503, timeouts and refused connections, as a careful client does."""

    base: str
    bodies: list[dict]
    interval: float
    http: requests.Session
    accepted: dict[str, str] = field(default_factory=dict)  # idempotency key -> run id
    refusals: int = 0
    gave_up: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _submit(self, body: dict) -> None:
        key = uuid.uuid4().hex
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                resp = self.http.post(f"{self.base}/v1/runs", json=body, headers={"Idempotency-Key": key}, timeout=10)
                if resp.status_code in (200, 201):
                    self.accepted[key] = resp.json()["id"]
                    return
                self.refusals += 1
            except requests.RequestException:
                self.refusals += 1
            time.sleep(0.5)
        self.gave_up.append(key)

    def run(self, count: int) -> threading.Thread:
        def loop():
            threads = []
            for i in range(count):
                if self.stop.is_set():
                    break
                t = threading.Thread(target=self._submit, args=(self.bodies[i % len(self.bodies)],), daemon=True)
                t.start()
                threads.append(t)
                time.sleep(self.interval)
            for t in threads:
                t.join()

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        return thread


class Cluster:
    def __init__(self, tmp_path: pathlib.Path, database_url: str, queue: str, extra_env: dict[str, str] | None = None):
        self.tmp_path = tmp_path
        self.database_url = database_url
        self.queue = queue
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.commands = procfile()
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")},
            "PATH": f"{BIN}:{os.environ['PATH']}",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": "2",
            "DOCKYARD_DATABASE_URL": database_url,
            "DOCKYARD_DATABASE_POOL_SIZE": "8",
            "DOCKYARD_BROKER_URL": required_env("DOCKYARD_BROKER_URL"),
            "DOCKYARD_DEFAULT_QUEUE": queue,
            "DOCKYARD_HOUSEKEEPING_QUEUE": f"{queue}.housekeeping",
            "DOCKYARD_WORKER_METRICS_PORT": "0",
            "DOCKYARD_SCHEDULER_METRICS_PORT": "0",
            "DOCKYARD_WORKER_THREADS": "2",
            "DOCKYARD_LEASE_SECONDS": "6",
            "DOCKYARD_WORKER_SHUTDOWN_GRACE_SECONDS": "3",
            "DOCKYARD_INFRASTRUCTURE_RETRIES": "10",
            **(extra_env or {}),
        }
        self._run_command("release")
        subprocess.run(
            [BIN / "dockyard", "processors", "apply", required_env("TEST_PROCESSORS_MANIFEST")],
            env=self.env,
            cwd=ROOT,
            check=True,
            timeout=60,
            stdout=subprocess.DEVNULL,
        )
        self.http = api_session(cli_key(self.env))

    def _run_command(self, name: str) -> None:
        subprocess.run(["bash", "-c", self.commands[name]], env=self.env, cwd=ROOT, check=True, timeout=60, stdout=subprocess.DEVNULL)

    def start(self, kind: str, name: str | None = None, env: dict[str, str] | None = None) -> subprocess.Popen:
        name = name or kind
        env = {**self.env, "DOCKYARD_WORKER_NAME": name, **(env or {})}
        log = open(self.tmp_path / f"{name}.log", "ab")
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {self.commands[kind]}"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs[name] = proc
        return proc

    def start_all(self, workers: tuple[str, ...] = ("w1", "w2")) -> None:
        self.start("web")
        for name in workers:
            self.start("worker", name)
        self.start("scheduler")
        self.wait_ready()

    def wait_ready(self) -> None:
        wait_ready(self.base)

    def signal(self, name: str, sig: signal.Signals) -> None:
        os.killpg(self.procs[name].pid, sig)

    def stop(self, name: str, timeout: float = 30) -> int:
        proc = self.procs[name]
        self.signal(name, signal.SIGTERM)
        return proc.wait(timeout=timeout)

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text(errors="replace")[-4000:]

    def query(self, sql: str, params=()) -> list[tuple]:
        conn = psycopg2.connect(self.database_url)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()

    def running_on(self, worker: str) -> list[str]:
        return [r[0] for r in self.query("SELECT id FROM runs WHERE state = 'running' AND lease_owner = %s", (worker,))]

    def settle(self, submitter: Submitter, timeout: float = 180) -> dict:
        """Wait until every run has ended; print and return the ledger."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            open_runs = self.query(f"SELECT count(*) FROM runs WHERE state NOT IN {TERMINAL}")[0][0]
            if open_runs == 0:
                break
            time.sleep(1)
        accepted = set(submitter.accepted.values())
        rows = dict(self.query("SELECT id, state FROM runs"))
        twice = self.query(f"SELECT run_id FROM run_events WHERE to_state IN {TERMINAL} GROUP BY run_id HAVING count(*) > 1")
        ledger = {
            "accepted": len(accepted),
            "refused_then_retried": submitter.refusals,
            "gave_up": len(submitter.gave_up),
            "lost": len(accepted - set(rows)),
            "ended_twice": len(twice),
            "stuck": sum(1 for state in rows.values() if state not in TERMINAL),
            "states": {s: list(rows.values()).count(s) for s in sorted(set(rows.values()))},
            "slowest_run_seconds": round(
                self.query("SELECT coalesce(max(extract(epoch FROM finished_at - created_at)), 0) FROM runs")[0][0]
            ),
        }
        print(f"\nchaos ledger: {ledger}")
        return ledger

    def leftover_containers(self, client: docker.DockerClient | None = None) -> list:
        """Containers of this database's runs on an engine (the host's own by default)."""
        ids = {r[0] for r in self.query("SELECT id FROM runs")}
        client = client or docker.from_env()
        listed = client.containers.list(all=True, sparse=True, filters={"label": "dockyard.run_id"})
        return [c for c in listed if c.attrs["Labels"]["dockyard.run_id"] in ids]

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        for container in self.leftover_containers():
            container.remove(force=True)


def assert_nothing_lost(ledger: dict) -> None:
    assert ledger["accepted"] > 0
    assert ledger["gave_up"] == 0, ledger
    assert ledger["lost"] == 0, ledger
    assert ledger["ended_twice"] == 0, ledger
    assert ledger["stuck"] == 0, ledger
    assert ledger["slowest_run_seconds"] < RECOVERY_BOUND_SECONDS, ledger


@pytest.fixture
def cluster(tmp_path):
    queue = unique("chaos")
    with fresh_postgres_database() as url:
        cluster = Cluster(tmp_path, url, queue)
        try:
            yield cluster
        finally:
            cluster.close()
            delete_queues(required_env("DOCKYARD_BROKER_URL"), queue)
            delete_queues(required_env("DOCKYARD_BROKER_URL"), f"{queue}.housekeeping")
