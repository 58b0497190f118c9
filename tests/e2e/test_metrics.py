"""Every series docs/metrics.md lists is exported by the processes it names, with exactly its labels,
after runs of every outcome through the Procfile's processes on Postgres (tests/e2e/conftest.py); nothing else
is exported under dockyard_."""

from __future__ import annotations

import pathlib
import re

import requests
from prometheus_client.parser import text_string_to_metric_families

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| `(dockyard_\w+)` \| (counter|gauge|histogram) \| ([^|]*) \| ([^|]*) \|")


def documented() -> dict[str, tuple[str, frozenset[str], frozenset[str]]]:
    """name -> (type, labels, processes) from docs/metrics.md's table."""
    found = {}
    for line in (ROOT / "docs" / "metrics.md").read_text().splitlines():
        if match := ROW.match(line):
            name, kind, labels, processes = match.groups()
            found[name] = (kind, frozenset(re.findall(r"`(\w+)`", labels)), frozenset(p.strip() for p in processes.split(",")))
    return found


def families(text: str) -> dict[str, tuple[str, set[frozenset[str]]]]:
    """family name (counters with their _total) -> (type, the label sets of its samples, `le` left out)."""
    out = {}
    for family in text_string_to_metric_families(text):
        name = family.name + "_total" if family.type == "counter" else family.name
        label_sets = {frozenset(set(s.labels) - {"le"}) for s in family.samples if not s.name.endswith("_created")}
        out[name] = (family.type, label_sets)
    return out


def test_the_documented_series_are_what_each_process_exports(observed):
    stack = observed
    base = stack["base"]
    worker_url = stack["worker_metrics"]
    scheduler_url = f"http://127.0.0.1:{stack['env']['DOCKYARD_SCHEDULER_METRICS_PORT']}/metrics"
    exported = {
        "web": families(requests.get(f"{base}/metrics", timeout=5).text),
        "worker": families(requests.get(worker_url, timeout=5).text),
        "scheduler": families(requests.get(scheduler_url, timeout=5).text),
    }
    table = documented()
    assert len(table) >= 20, "docs/metrics.md's table was not read"
    problems = []
    for name, (kind, labels, processes) in table.items():
        for process in processes:
            if name not in exported[process]:
                problems.append(f"{process} does not export {name}")
                continue
            got_kind, label_sets = exported[process][name]
            if got_kind != kind:
                problems.append(f"{process} exports {name} as a {got_kind}, documented as a {kind}")
            if not label_sets:
                problems.append(f"{process} exports {name} without a sample")
            if label_sets and label_sets != {labels}:
                problems.append(f"{process} exports {name} with labels {sorted(map(sorted, label_sets))}, documented {sorted(labels)}")
    for process, found in exported.items():
        problems += [
            f"{process} exports {name}, which docs/metrics.md does not list"
            for name in found
            if name.startswith("dockyard_") and name not in table
        ]
    assert not problems, "\n".join(problems)

    # A few values that must be there after those runs.
    web, worker = (requests.get(u, timeout=5).text for u in (f"{base}/metrics", worker_url))
    created = stack["driven"]["created_201"]
    assert f'dockyard_http_request_duration_seconds_count{{method="POST",route="/v1/runs",status="201"}} {created}.0' in web
    assert 'dockyard_http_request_duration_seconds_count{method="POST",route="/v1/runs",status="429"} 1.0' in web
    inserted = re.search(r"^dockyard_group_commit_runs_sum (\S+)$", web, re.MULTILINE)
    assert inserted and float(inserted.group(1)) >= created  # every accepted run went through the group commit
    assert 'route="unmatched"' in web and 'route="/v1/runs/{run_id}",status="404"' in web.replace('method="GET",', "")
    assert 'dockyard_runs_finished_total{processor="flaky",state="dead_letter"} 1.0' in worker
    assert 'dockyard_retries_total{processor="flaky"} 1.0' in worker
    assert 'dockyard_attempts_total{outcome="timed_out",processor="sleep"} 1.0' in worker
