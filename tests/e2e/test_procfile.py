"""The Procfile's processes as real processes (gunicorn, dramatiq, scheduler), driven over HTTP."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import docker
import psycopg2
import pytest
import requests

from tests.conftest import api_session, cli_key, required_env, unique, wait_ready, wait_until
from tests.integration.conftest import delete_queues

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_settings(database_url: str, broker_url: str, queue: str) -> dict[str, str]:
    """DOCKYARD_* settings of a stack of its own: its database, its queues, metrics on free ports, two threads."""
    return {
        "DOCKYARD_DATABASE_URL": database_url,
        "DOCKYARD_BROKER_URL": broker_url,
        "DOCKYARD_DEFAULT_QUEUE": queue,
        "DOCKYARD_HOUSEKEEPING_QUEUE": f"{queue}.housekeeping",
        "DOCKYARD_WORKER_METRICS_PORT": str(free_port()),
        "DOCKYARD_SCHEDULER_METRICS_PORT": str(free_port()),
        "DOCKYARD_WORKER_THREADS": "2",
    }


@contextlib.contextmanager
def procfile_stack(directory: pathlib.Path, extra_env: dict[str, str] | None = None):
    """The Procfile's release, then web, worker and scheduler on a SQLite file in `directory` (each logging
    to <name>.log there), the sample processors registered; yields what the tests drive them with."""
    broker_url = required_env("DOCKYARD_BROKER_URL")
    manifest = required_env("TEST_PROCESSORS_MANIFEST")
    port = free_port()
    queue = unique("e2e_runs")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DOCKYARD_", "OTEL_"))},
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        **isolated_settings(f"sqlite:///{directory}/dockyard.db", broker_url, queue),
        "DOCKYARD_WORKER_SHUTDOWN_GRACE_SECONDS": "4",
        **(extra_env or {}),
    }
    commands = procfile()
    assert set(commands) >= {"release", "web", "worker", "scheduler"}
    subprocess.run(["bash", "-c", commands["release"]], env=env, cwd=ROOT, check=True, timeout=60)
    subprocess.run([BIN / "dockyard", "processors", "apply", manifest], env=env, cwd=ROOT, check=True, timeout=60)
    env["DOCKYARD_API_KEY"] = cli_key(env)  # for the CLI below
    http = api_session(env["DOCKYARD_API_KEY"])
    started = {}

    def start(name: str, log_name: str | None = None) -> subprocess.Popen:
        log = open(directory / f"{log_name or name}.log", "wb")
        # Its own process group, as honcho or a PaaS gives each process type.
        started[log_name or name] = subprocess.Popen(
            ["bash", "-c", f"exec {commands[name]}"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return started[log_name or name]

    for name in ("web", "worker", "scheduler"):
        start(name)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base)
        yield {"base": base, "procs": started, "env": env, "logs": directory, "start": start, "http": http, "queue": queue}
    finally:
        for proc in started.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        remove_containers_of(env["DOCKYARD_DATABASE_URL"])
        delete_queues(broker_url, queue)
        delete_queues(broker_url, f"{queue}.housekeeping")


def remove_containers_of(database_url: str) -> None:
    """Remove the containers of this database's runs that a killed worker left on the engine (a run cancelled or
    still running when the stack was stopped), so no test leaves containers behind."""
    if database_url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as db:
            ids = {row[0] for row in db.execute("SELECT id FROM runs")}
    else:
        with contextlib.closing(psycopg2.connect(database_url)) as db, db.cursor() as cursor:
            cursor.execute("SELECT id FROM runs")
            ids = {row[0] for row in cursor.fetchall()}
    client = docker.from_env()
    for container in client.containers.list(all=True, sparse=True, filters={"label": "dockyard.run_id"}):
        if container.attrs["Labels"].get("dockyard.run_id") in ids:
            container.remove(force=True)


@pytest.fixture
def procs(tmp_path):
    with procfile_stack(tmp_path) as stack:
        yield stack


def text_of(url: str) -> str:
    try:
        return requests.get(url, timeout=5).text
    except requests.RequestException:
        return ""


def logs_of(procs, name: str) -> str:
    return (procs["logs"] / f"{name}.log").read_text(errors="replace")[-3000:]


def test_procfile_processes_serve_runs_and_stop_cleanly(procs):
    base, http = procs["base"], procs["http"]
    submitted = {
        "echo": http.post(f"{base}/v1/runs", json={"processor": "echo", "payload": {"via": "http"}}, timeout=10),
        "fail": http.post(f"{base}/v1/runs", json={"processor": "fail", "payload": {"exit_code": 4}}, timeout=10),
    }
    for resp in submitted.values():
        assert resp.status_code == 201, resp.text

    def finished(run_id):
        run = http.get(f"{base}/v1/runs/{run_id}", timeout=10).json()
        return run if run["state"] not in ("queued", "running", "retrying") else None

    echo = wait_until(lambda: finished(submitted["echo"].json()["id"]), timeout=60, what="echo run")
    assert echo["state"] == "succeeded" and echo["result"] == {"via": "http"}, (echo, logs_of(procs, "worker"))
    fail = wait_until(lambda: finished(submitted["fail"].json()["id"]), timeout=60, what="fail run")
    assert fail["state"] == "failed" and fail["exit_code"] == 4

    cli = subprocess.run(
        [BIN / "dockyard", "runs", "--api-url", base, "submit", "echo", "--payload", '{"via": "cli"}', "--wait"],
        env=procs["env"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert "state:      succeeded" in cli.stdout and '"via": "cli"' in cli.stdout, cli.stdout  # piped: a line per change, then the run

    # The scheduler leads (alone, on the SQLite file lock) and both serve their metrics.
    scheduler_metrics = f"http://127.0.0.1:{procs['env']['DOCKYARD_SCHEDULER_METRICS_PORT']}/metrics"
    wait_until(lambda: "dockyard_scheduler_leader 1.0" in text_of(scheduler_metrics), timeout=30, what="the scheduler to lead")
    worker_metrics = requests.get(f"http://127.0.0.1:{procs['env']['DOCKYARD_WORKER_METRICS_PORT']}/metrics", timeout=5)
    assert worker_metrics.status_code == 200 and "dockyard_queue_messages" in worker_metrics.text

    # The worker reported in, and the scheduler counts it.
    (worker,) = http.get(f"{base}/v1/workers", timeout=10).json()["items"]
    assert (worker["state"], worker["threads"]) == ("live", 2) and worker["engine_name"], worker
    wait_until(lambda: 'dockyard_workers{state="live"} 1.0' in text_of(scheduler_metrics), timeout=30, what="the live worker gauge")

    # SIGTERM to each process group, as honcho and a PaaS stop a process type
    # (dramatiq's worker process gets it twice: directly and relayed).
    for proc in procs["procs"].values():
        os.killpg(proc.pid, signal.SIGTERM)
    for name, proc in procs["procs"].items():
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} did not stop within 30 s of SIGTERM:\n{logs_of(procs, name)}")
        assert code == 0, f"{name} exited {code}:\n{logs_of(procs, name)}"
    listed = subprocess.run([BIN / "dockyard", "workers", "list", "--all"], env=procs["env"], capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0 and f"{worker['name']} stopped" in " ".join(listed.stdout.split()), listed.stdout


def get_run(procs, run_id: str) -> dict:
    return procs["http"].get(f"{procs['base']}/v1/runs/{run_id}", timeout=10).json()


def test_a_stopping_worker_finishes_short_runs_and_hands_back_long_ones(procs):
    base, worker = procs["base"], procs["procs"]["worker"]
    short = procs["http"].post(f"{base}/v1/runs", json={"processor": "sleep", "payload": {"seconds": 1}}, timeout=10).json()
    long = procs["http"].post(f"{base}/v1/runs", json={"processor": "sleep", "payload": {"seconds": 8}}, timeout=10).json()
    wait_until(lambda: all(get_run(procs, r["id"])["state"] == "running" for r in (short, long)), timeout=60, what="both runs to start")
    stopped_at = time.monotonic()
    os.killpg(worker.pid, signal.SIGTERM)
    code = worker.wait(timeout=30)
    took = time.monotonic() - stopped_at
    assert code == 0, logs_of(procs, "worker")
    assert took < 4 + 5, f"worker took {took:.1f}s to stop with a 4 s grace period"

    assert get_run(procs, short["id"])["state"] == "succeeded"  # finished within the grace period
    handed_back = get_run(procs, long["id"])
    assert handed_back["state"] == "retrying", handed_back
    [attempt] = procs["http"].get(f"{base}/v1/runs/{long['id']}/attempts", timeout=10).json()["items"]
    assert attempt["outcome"] == "worker_lost"
    assert handed_back["error"]["reason"] == "worker_shutdown" and "grace period is over" in handed_back["error"]["message"]
    assert not docker.from_env().containers.list(all=True, sparse=True, filters={"label": f"dockyard.run_id={long['id']}"})

    procs["start"]("worker", "worker2")  # another worker picks the run up
    done = wait_until(
        lambda: (run := get_run(procs, long["id"]))["state"] not in ("queued", "running", "retrying") and run,
        timeout=60,
        what="the handed-back run to finish",
    )
    assert done["state"] == "succeeded" and done["attempts"] == 2, (done, logs_of(procs, "worker2"))
