"""`make run` (infra/dev/run.sh) started twice, as a new user does: what was registered survives the restart,
and the second start changes no processor (the samples' images are reused, not rebuilt)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

import pytest
import requests

from tests.conftest import api_session, unique, wait_ready
from tests.e2e.test_procfile import ROOT, free_port, remove_containers_of
from tests.integration.conftest import delete_queues


@contextlib.contextmanager
def make_run(state, env: dict[str, str]):
    """infra/dev/run.sh until it serves, then Ctrl-C (SIGINT to its process group), as a user stops it."""
    log = open(state / "run.log", "ab")
    proc = subprocess.Popen(
        [ROOT / "infra" / "dev" / "run.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        try:
            wait_ready(f"http://127.0.0.1:{env['PORT']}", timeout=180)
        except AssertionError:
            pytest.fail(f"make run did not serve:\n{(state / 'run.log').read_text()[-3000:]}")
        yield api_session((state / "admin.key").read_text().strip())
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_a_restart_keeps_what_was_registered_and_changes_nothing(tmp_path):
    queue = unique("make_run")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")},
        "RUN_STATE_DIR": str(tmp_path),
        "KEEP_SERVICES": "1",  # the suite's services stay up
        "PORT": str(port),
        "DOCKYARD_DATABASE_URL": f"sqlite:///{tmp_path}/dockyard.db",
        "DOCKYARD_BROKER_URL": os.environ["DOCKYARD_BROKER_URL"],
        "DOCKYARD_DEFAULT_QUEUE": queue,
        "DOCKYARD_HOUSEKEEPING_QUEUE": f"{queue}.housekeeping",
        "DOCKYARD_WORKER_METRICS_PORT": "0",
        "DOCKYARD_SCHEDULER_METRICS_PORT": "0",
    }
    base = f"http://127.0.0.1:{port}"
    try:
        with make_run(tmp_path, env) as http:
            echo = http.get(f"{base}/v1/processors/echo", timeout=10).json()
            spec = {"image": echo["image"], "command": ["/bin/sh", "-c", "wc -c"], "timeout_seconds": 30}
            assert http.put(f"{base}/v1/processors/wc", json=spec, timeout=10).status_code == 201
            before = http.get(f"{base}/v1/audit", params={"action": "processor", "limit": 500}, timeout=10).json()["items"]
        with make_run(tmp_path, env) as http:
            wc = http.get(f"{base}/v1/processors/wc", timeout=10).json()
            assert wc["enabled"] is True, wc
            run = http.post(f"{base}/v1/runs", json={"processor": "wc", "payload": {"n": 1}}, timeout=10)
            assert run.status_code == 201, run.text
            after = http.get(f"{base}/v1/audit", params={"action": "processor", "limit": 500}, timeout=10).json()["items"]
            assert after == before, [r for r in after if r not in before]  # the second start changed no processor
    finally:
        remove_containers_of(env["DOCKYARD_DATABASE_URL"])
        with contextlib.suppress(requests.RequestException, Exception):
            delete_queues(env["DOCKYARD_BROKER_URL"], queue)
            delete_queues(env["DOCKYARD_BROKER_URL"], f"{queue}.housekeeping")
