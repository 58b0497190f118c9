"""The image's HEALTHCHECK probe (telemetry/healthcheck.py) as a process: which endpoint answers, and why not."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading

from tests.e2e.test_procfile import ROOT, free_port


def probe(**ports: str) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_") and k != "PORT"}, **ports}
    return subprocess.run([sys.executable, "-m", "telemetry.healthcheck"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=30)


def test_nothing_answering_is_not_alive_and_each_endpoint_asked_is_named():
    web, scheduler = free_port(), free_port()
    ran = probe(PORT=str(web), DOCKYARD_WORKER_METRICS_PORT="0", DOCKYARD_SCHEDULER_METRICS_PORT=str(scheduler))
    assert ran.returncode == 1
    assert f"web http://127.0.0.1:{web}/healthz: " in ran.stderr
    assert f"scheduler http://127.0.0.1:{scheduler}/metrics: " in ran.stderr
    assert "worker" not in ran.stderr  # port 0: metrics off, not asked


class Answer(http.server.BaseHTTPRequestHandler):
    status = {"/metrics": 200, "/healthz": 503}

    def do_GET(self):
        self.send_response(self.status.get(self.path, 404))
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_first_endpoint_that_answers_200_is_alive_and_an_error_status_is_not():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = str(server.server_address[1])
    try:
        as_worker = probe(PORT=str(free_port()), DOCKYARD_WORKER_METRICS_PORT=port, DOCKYARD_SCHEDULER_METRICS_PORT="0")
        assert as_worker.returncode == 0, as_worker.stderr
        assert as_worker.stdout.strip() == f"alive: worker answers http://127.0.0.1:{port}/metrics"
        as_web = probe(PORT=port, DOCKYARD_WORKER_METRICS_PORT="0", DOCKYARD_SCHEDULER_METRICS_PORT="0")
        assert as_web.returncode == 1
        assert f"web http://127.0.0.1:{port}/healthz: HTTP 503" in as_web.stderr
    finally:
        server.shutdown()


def test_settings_that_do_not_parse_are_named():
    ran = probe(DOCKYARD_WORKER_METRICS_PORT="nine")
    assert ran.returncode == 1
    assert "DOCKYARD_WORKER_METRICS_PORT: expected int, got 'nine'" in ran.stderr


def test_the_container_command_picks_the_endpoint_asked(monkeypatch):
    """On a shared network (host networking, a pod) another process's port must not vouch for this one."""
    from telemetry.healthcheck import endpoints

    monkeypatch.setenv("PORT", "8100")
    monkeypatch.setenv("DOCKYARD_WORKER_METRICS_PORT", "9101")
    monkeypatch.setenv("DOCKYARD_SCHEDULER_METRICS_PORT", "9102")
    image_cmd = ["/opt/dockyard/bin/python", "/opt/dockyard/bin/gunicorn", "-c", "python:web.gunicorn_config", "web.wsgi:app"]
    assert endpoints(image_cmd) == [("web", "http://127.0.0.1:8100/healthz")]
    assert endpoints(["/sbin/docker-init", "--", "python", "-m", "actors", "actors.worker"]) == [
        ("worker", "http://127.0.0.1:9101/metrics")
    ]
    assert endpoints(["python", "-m", "scheduling"]) == [("scheduler", "http://127.0.0.1:9102/metrics")]
    # Some other command (a shell, an init that hides it): every endpoint is asked.
    assert [what for what, _ in endpoints(["sh"])] == ["web", "worker", "scheduler"]
