"""The dashboards and alert rules work on a real Prometheus: after runs of every outcome through the Procfile's
processes (tests/e2e/conftest.py), every panel's query of every dashboard in infra/grafana/dashboards answers
with at least one series, and every alert rule of infra/prometheus/alerts.yml evaluates without error."""

from __future__ import annotations

import json
import pathlib
import re

from tests.conftest import wait_until

ROOT = pathlib.Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "infra" / "grafana" / "dashboards").glob("*.json"))
# What Grafana puts in place of its own variables: windows long enough to hold the whole test's samples.
BUILTINS = {"__rate_interval": "5m", "__interval": "15s", "__range": "5m"}
# The processors dashboard shown for the processor whose runs were retried and dead-lettered.
CHOSEN = {"processor": "flaky"}


def substitute(expr: str, values: dict[str, str]) -> str:
    def one(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"no value for ${name} in {expr}"
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)


def targets(board: dict):
    for panel in board["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                yield inner["title"], target["expr"]


def test_every_panel_query_returns_series(observed):
    prometheus = observed["prometheus"]
    assert len(DASHBOARDS) == 5
    failures, evaluated = [], 0
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        values = dict(BUILTINS)
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                label, metric = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["query"]).group(2, 1)
                offered = prometheus.label_values(label, metric)
                assert CHOSEN[variable["name"]] in offered, f"{path.name}: ${variable['name']} offers {offered}"
                values[variable["name"]] = CHOSEN[variable["name"]]
        for title, expr in targets(board):
            query = substitute(expr, values)
            evaluated += 1
            try:
                if not prometheus.query(query):
                    failures.append(f"{path.name} / {title}: no series for {query}")
            except AssertionError as refused:
                failures.append(f"{path.name} / {title}: {refused}")
    assert not failures, f"{len(failures)} of {evaluated} queries failed:\n" + "\n".join(failures)
    assert evaluated >= 40


def test_every_alert_rule_loads_and_evaluates(observed):
    groups = observed["prometheus"].rule_groups()
    rules = [rule for group in groups for rule in group["rules"]]
    assert {rule["name"] for rule in rules} >= {"DockyardNoWorker", "DockyardQueuedRunTooOld", "DockyardRunErrorRateHigh"}
    # Rules are evaluated every second here; wait for one evaluation of each.
    wait_until(
        lambda: all(r.get("lastEvaluation", "").startswith("2") for g in observed["prometheus"].rule_groups() for r in g["rules"]),
        timeout=30,
        what="the rules' first evaluation",
    )
    rules = [rule for group in observed["prometheus"].rule_groups() for rule in group["rules"]]
    broken = [f"{rule['name']}: {rule.get('lastError')}" for rule in rules if rule["health"] != "ok"]
    assert not broken, broken
    # A healthy stack raises none of them.
    firing = [rule["name"] for rule in rules if rule.get("state") == "firing"]
    assert not firing, firing


def test_the_queued_runs_series_answer_from_the_database(observed):
    prometheus = observed["prometheus"]
    priorities = {s["metric"]["priority"]: float(s["value"][1]) for s in prometheus.query("dockyard_runs_queued")}
    assert priorities == {"low": 0.0, "normal": 0.0, "high": 0.0, "critical": 0.0}
    assert prometheus.value("max(dockyard_oldest_queued_run_seconds)") == 0.0
