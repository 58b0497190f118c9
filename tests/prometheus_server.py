"""A real Prometheus server for tests (Debian's `prometheus` package), scraping processes on loopback with
the repository's own scrape jobs and alert rules (infra/prometheus), only the targets and intervals changed."""

from __future__ import annotations

import contextlib
import datetime as dt
import pathlib
import shutil
import signal
import subprocess
import time

import requests
import yaml

from tests.conftest import wait_until

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIG = ROOT / "infra" / "prometheus"


class Prometheus:
    def __init__(self, base: str, interval_seconds: float):
        self.base = base
        self.interval_seconds = interval_seconds

    def query(self, expr: str) -> list[dict]:
        """An instant query's result vector; raises AssertionError naming the query when Prometheus refuses it."""
        resp = requests.get(f"{self.base}/api/v1/query", params={"query": expr}, timeout=30)
        body = resp.json()
        assert resp.status_code == 200 and body["status"] == "success", f"{expr}: {body.get('error', resp.text)}"
        return body["data"]["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def label_values(self, label: str, match: str) -> list[str]:
        resp = requests.get(f"{self.base}/api/v1/label/{label}/values", params={"match[]": match}, timeout=30)
        resp.raise_for_status()
        return resp.json()["data"]

    def targets(self) -> list[dict]:
        return requests.get(f"{self.base}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]

    def scraped_since(self, moment: dt.datetime, deadline: float = 30) -> None:
        """Wait until every target was scraped twice after `moment`: a rate() over series born before it has two samples."""
        after = moment + dt.timedelta(seconds=self.interval_seconds * 1.5)

        def scraped() -> bool:
            scrapes = [dt.datetime.fromisoformat(t["lastScrape"][:26].rstrip("Z") + "+00:00") for t in self.targets()]
            return bool(scrapes) and min(scrapes) > after

        wait_until(scraped, timeout=deadline, interval=self.interval_seconds / 2, what="prometheus to scrape every target twice")

    def rule_groups(self) -> list[dict]:
        return requests.get(f"{self.base}/api/v1/rules", timeout=10).json()["data"]["groups"]


def scrape_config(targets: dict[str, str], interval: str) -> dict:
    """infra/prometheus/prometheus.yml with each job's target replaced by `targets[job]` (every job must be
    given one: a job added there and not here fails loudly) and the alert rules loaded from the repository."""
    config = yaml.safe_load((CONFIG / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == set(targets), f"prometheus.yml has jobs {sorted(jobs)}; the test gives targets for {sorted(targets)}"
    config["global"] = {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval}
    config["rule_files"] = [str(CONFIG / name) for name in config["rule_files"]]
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    return config


@contextlib.contextmanager
def prometheus_server(directory: pathlib.Path, port: int, targets: dict[str, str], interval: str = "1s", deadline: float = 60):
    """Run Prometheus on 127.0.0.1:`port`, scraping every `interval` (whole seconds: "1s"), until the block
    ends; yield it once it is ready and every target answers."""
    binary = shutil.which("prometheus")
    assert binary, "no prometheus server on PATH: infra/dev/services.sh install (Debian's prometheus package)"
    (directory / "prometheus.yml").write_text(yaml.safe_dump(scrape_config(targets, interval)))
    log = open(directory / "prometheus.log", "wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Prometheus(f"http://127.0.0.1:{port}", float(interval.rstrip("s")))
    try:
        give_up = time.monotonic() + deadline
        while True:
            assert proc.poll() is None, f"prometheus exited {proc.returncode}: {(directory / 'prometheus.log').read_text()[-2000:]}"
            try:
                targets_now = server.targets()
                if targets_now and all(t["health"] == "up" for t in targets_now):
                    break
            except requests.RequestException:
                targets_now = []
            assert time.monotonic() < give_up, f"prometheus targets not all up within {deadline}s: " + ", ".join(
                f"{t['labels']['job']} {t['health']} {t.get('lastError', '')}" for t in targets_now
            )
            time.sleep(0.5)
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
