"""The submission rate limit holds across gunicorn workers: two of them, on one Postgres, hammered at once."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import threading
import time

from tests.conftest import api_session, cli_key, required_env, unique, wait_ready
from tests.e2e.test_procfile import BIN, ROOT, free_port, procfile
from tests.integration.conftest import delete_queues, fresh_postgres_database

RATE, BURST, SECONDS, THREADS = 10, 20, 5.0, 8


def test_two_gunicorn_workers_together_admit_no_more_than_the_limit(tmp_path):
    broker_url = required_env("DOCKYARD_BROKER_URL")
    port, queue = free_port(), unique("rate")
    with fresh_postgres_database() as url:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")},
            "PATH": f"{BIN}:{os.environ['PATH']}",
            "PORT": str(port),
            "WEB_CONCURRENCY": "2",
            "DOCKYARD_DATABASE_URL": url,
            "DOCKYARD_BROKER_URL": broker_url,
            "DOCKYARD_DEFAULT_QUEUE": queue,
            "DOCKYARD_RATE_LIMIT_PER_SECOND": str(RATE),
            "DOCKYARD_RATE_LIMIT_BURST": str(BURST),
        }
        commands = procfile()
        subprocess.run(["bash", "-c", commands["release"]], env=env, cwd=ROOT, check=True, timeout=60)
        manifest = required_env("TEST_PROCESSORS_MANIFEST")
        subprocess.run([BIN / "dockyard", "processors", "apply", manifest], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        http = api_session(cli_key(env))
        base = f"http://127.0.0.1:{port}"
        with open(tmp_path / "web.log", "wb") as log:
            web = subprocess.Popen(
                ["bash", "-c", f"exec {commands['web']}"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            wait_ready(base)
            outcomes: collections.Counter = collections.Counter()
            lock = threading.Lock()
            began = time.monotonic()

            def hammer():
                while time.monotonic() - began < SECONDS:
                    status = http.post(f"{base}/v1/runs", json={"processor": "echo"}, timeout=10).status_code
                    with lock:
                        outcomes[status] += 1

            threads = [threading.Thread(target=hammer) for _ in range(THREADS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - began
        finally:
            os.killpg(web.pid, signal.SIGTERM)
            web.wait(timeout=30)
            delete_queues(broker_url, queue)
    allowed = BURST + RATE * elapsed
    print(f"\nrate limit {RATE}/s burst {BURST}, {elapsed:.1f}s, 2 gunicorn workers: {dict(outcomes)}; at most {allowed:.0f} allowed")
    assert set(outcomes) <= {201, 429}, outcomes
    assert outcomes[429] > 0
    assert outcomes[201] <= allowed * 1.10, outcomes
    assert outcomes[201] >= allowed * 0.90, outcomes  # the limit is not stricter than it says
