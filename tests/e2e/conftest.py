"""One observed stack for the e2e tests of metrics, dashboards, alerts and runbooks: the Procfile's processes
on Postgres, a real Prometheus scraping them and RabbitMQ, and runs of every outcome driven through them."""

from __future__ import annotations

import datetime as dt
import subprocess
import urllib.parse

import pytest
import requests

from tests.conftest import api_session, cli_key, required_env, wait_until
from tests.e2e.test_observability import ENDED, ended, register_flaky
from tests.e2e.test_procfile import BIN, ROOT, free_port, procfile_stack
from tests.integration.conftest import fresh_postgres_database
from tests.prometheus_server import prometheus_server


def drive_every_outcome(stack) -> dict[str, int]:
    """Runs that end succeeded, failed, dead_letter (after a retry), timed_out and cancelled; 404s; a 429 from a
    tenant over its rate limit. Returns how many runs were made and ended."""
    http, base, env = stack["http"], stack["base"], stack["env"]
    register_flaky(stack)
    bodies = [
        {"processor": "echo", "payload": {}},
        {"processor": "fail", "payload": {"exit_code": 4}},  # failed
        {"processor": "flaky", "payload": {"exit_code": 3}, "priority": "high"},  # retried, then dead_letter
        {"processor": "sleep", "payload": {"seconds": 5}, "timeout_seconds": 1},  # timed_out
    ]
    runs = [http.post(f"{base}/v1/runs", json=body, timeout=10).json() for body in bodies]
    long = http.post(f"{base}/v1/runs", json={"processor": "sleep", "payload": {"seconds": 30}}, timeout=10).json()
    wait_until(lambda: http.get(f"{base}/v1/runs/{long['id']}", timeout=10).json()["state"] == "running", timeout=60, what="the long run")
    assert http.post(f"{base}/v1/runs/{long['id']}/cancel", timeout=10).status_code == 202

    limited = api_session(cli_key(env, tenant="limited", scopes="runs:read,runs:write"))
    subprocess.run(
        [BIN / "dockyard", "tenants", "set-limit", "limited", "--rate-per-second", "0.01", "--burst", "1"],
        env=env,
        cwd=ROOT,
        check=True,
        timeout=30,
    )
    statuses = [limited.post(f"{base}/v1/runs", json={"processor": "echo"}, timeout=10) for _ in range(2)]
    assert [r.status_code for r in statuses] == [201, 429], [r.text for r in statuses]

    states = {ended(stack, run["id"])["state"] for run in [*runs, long]}
    states.add(ended({**stack, "http": limited}, statuses[0].json()["id"])["state"])
    assert states == {"succeeded", "failed", "dead_letter", "timed_out", "cancelled"} and states <= set(ENDED)
    assert http.get(f"{base}/v1/runs/nope", timeout=10).status_code == 404
    assert http.get(f"{base}/v1/nowhere", timeout=10).status_code == 404
    # The cancel, not the worker, ends the cancelled run: dockyard_runs_cancelled_total counts it.
    return {"finished_by_workers": len(runs) + 1, "created_201": len(runs) + 2}


@pytest.fixture(scope="package")
def observed(tmp_path_factory):
    directory = tmp_path_factory.mktemp("observed")
    rabbitmq = urllib.parse.urlsplit(required_env("TEST_RABBITMQ_PROMETHEUS_URL")).netloc
    with fresh_postgres_database() as url, procfile_stack(directory, {"DOCKYARD_DATABASE_URL": url}) as stack:
        env = stack["env"]
        targets = {
            "dockyard-web": stack["base"].split("//")[1],
            "dockyard-worker": f"127.0.0.1:{env['DOCKYARD_WORKER_METRICS_PORT']}",
            "dockyard-scheduler": f"127.0.0.1:{env['DOCKYARD_SCHEDULER_METRICS_PORT']}",
            "rabbitmq": rabbitmq,
            "rabbitmq-queues": rabbitmq,
        }
        with prometheus_server(directory, free_port(), targets) as prometheus:
            driven = drive_every_outcome(stack)
            driven_at = dt.datetime.now(dt.UTC)
            worker_url = f"http://127.0.0.1:{env['DOCKYARD_WORKER_METRICS_PORT']}/metrics"
            # The cancelled attempt ends on the worker within a second or two of the cancel.
            wait_until(lambda: 'outcome="cancelled"' in requests.get(worker_url, timeout=5).text, timeout=30, what="the cancelled attempt")
            wanted = {
                "sum(dockyard_runs_finished_total)": driven["finished_by_workers"],
                'sum(dockyard_attempts_total{outcome="cancelled"})': 1,
            }
            try:
                wait_until(
                    lambda: all(prometheus.value(q) == n for q, n in wanted.items()),
                    timeout=30,
                    what="Prometheus to scrape every run's end",
                )
            except AssertionError as late:
                seen = prometheus.query("sum by (processor, state) (dockyard_runs_finished_total)")
                raise AssertionError(f"{late}: { ({q: prometheus.value(q) for q in wanted}) }, wanted {wanted}; {seen}") from None
            prometheus.scraped_since(driven_at)
            yield {
                **stack,
                "prometheus": prometheus,
                "driven": driven,
                "worker_metrics": worker_url,
                "directory": directory,
                "database_url": url,
            }


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test (`item.report_call`): a fixture can tell at teardown that its test
    failed (the browser tests save a screenshot then)."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report
