"""Runbooks (docs/runbooks): one per alert, named by the alert's runbook_url, and every command of their
`sh diagnose` blocks runs without error against a running stack (tests/e2e/conftest.py)."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess

import yaml

from tests.conftest import required_env

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "docs" / "runbooks"
DIAGNOSE = re.compile(r"^```sh diagnose\n(.*?)^```", re.S | re.M)
# Pages for failures no alert of ours names.
WITHOUT_ALERT = {"postgres-down.md", "allowlist-refusal.md"}


def alerts() -> list[dict]:
    config = yaml.safe_load((ROOT / "infra" / "prometheus" / "alerts.yml").read_text())
    return [rule for group in config["groups"] for rule in group["rules"] if "alert" in rule]


def pages() -> list[pathlib.Path]:
    return sorted(p for p in RUNBOOKS.glob("*.md") if p.name != "README.md")


def test_every_alert_has_its_runbook_and_every_runbook_a_reason():
    urls = {}
    for rule in alerts():
        url = rule["annotations"].get("runbook_url")
        assert url == f"docs/runbooks/{rule['alert']}.md", f"{rule['alert']}: runbook_url {url!r}"
        assert (ROOT / url).is_file(), f"{rule['alert']}: {url} does not exist"
        urls[pathlib.Path(url).name] = rule["alert"]
    names = {p.name for p in pages()}
    assert names == set(urls) | WITHOUT_ALERT, f"runbooks no alert names: {names - set(urls) - WITHOUT_ALERT}"
    index = (RUNBOOKS / "README.md").read_text()
    assert not [n for n in names if f"({n})" not in index], "docs/runbooks/README.md does not link every page"
    for page in pages():
        text = page.read_text()
        assert DIAGNOSE.search(text), f"{page.name} has no `sh diagnose` block"
        for heading in ("**What it means.**", "## Confirm", "## Fix"):
            assert heading in text, f"{page.name} has no {heading}"


def shims(directory: pathlib.Path) -> pathlib.Path:
    """rabbitmqctl and rabbitmq-diagnostics as an operator runs them on the broker's node: here, the test node."""
    node = os.environ.get("TEST_RABBITMQ_NODE", "dockyard@localhost")
    directory.mkdir(exist_ok=True)
    for tool in ("rabbitmqctl", "rabbitmq-diagnostics"):
        path = directory / tool
        path.write_text(f'#!/bin/sh\nexec env HOME=/root RABBITMQ_NODENAME={node} /usr/lib/rabbitmq/bin/{tool} -n {node} "$@"\n')
        path.chmod(0o755)
    return directory


def test_every_diagnosis_command_runs_against_the_stack(observed, tmp_path):
    required_env("TEST_RABBITMQ_NODE")
    env = {
        **observed["env"],
        "DOCKYARD_API_URL": observed["base"],
        "PROMETHEUS_URL": observed["prometheus"].base,
        "PATH": f"{shims(tmp_path / 'bin')}:{observed['env']['PATH']}",
    }
    failures, ran = [], 0
    for page in pages():
        for block in DIAGNOSE.findall(page.read_text()):
            for command in [line for line in block.splitlines() if line.strip()]:
                done = subprocess.run(["bash", "-o", "pipefail", "-c", command], env=env, capture_output=True, text=True, timeout=90)
                ran += 1
                if done.returncode != 0:
                    failures.append(f"{page.name}: `{command}` exited {done.returncode}: {done.stderr.strip()[-500:]}")
                elif not done.stdout.strip():
                    failures.append(f"{page.name}: `{command}` printed nothing")
    assert ran >= 30
    assert not failures, "\n".join(failures)
