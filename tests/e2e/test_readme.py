"""The README's quickstart, as a newcomer types it: its commands run verbatim (in a directory laid out as a
clone after `make run`: `.venv/bin/dockyard`, `.dockyard/admin.key`) against the Procfile's processes, and
do what the README says they do."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from tests.conftest import cli_key, wait_until
from tests.e2e.test_procfile import BIN, ROOT, procfile_stack
from tests.unit.test_docs import section

pytestmark = pytest.mark.e2e


def quickstart_blocks() -> list[list[str]]:
    """The shell blocks of the README's Quickstart section, as lists of commands (continuation lines joined)."""
    quickstart = section((ROOT / "README.md").read_text(), "## Quickstart")
    blocks = []
    for block in re.findall(r"```sh\n(.*?)```", quickstart, re.S):
        blocks.append([line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()])
    return blocks


def run_lines(lines: list[str], cwd, env) -> list[tuple[int, str]]:
    """Run `lines` in one shell, as typed one after another; each line's exit status and output."""
    # Lines that set variables (export, AUTH=...) must run in the shell itself, not a subshell.
    script = "".join(
        f"{line}\necho $? > .status{i}; : > .out{i}\n"
        if re.match(r"^(export )?[A-Z_]+=", line)
        else f"( {line}\n) > .out{i} 2>&1; echo $? > .status{i}\n"
        for i, line in enumerate(lines)
    )
    subprocess.run(["bash", "-c", script], cwd=cwd, env=env, check=True, timeout=300)
    return [(int((cwd / f".status{i}").read_text()), (cwd / f".out{i}").read_text()) for i in range(len(lines))]


def test_the_quickstart_commands_do_what_the_readme_says(tmp_path):
    blocks = quickstart_blocks()
    assert blocks[0] == [
        "git clone <this repository> dockyard && cd dockyard",
        "make run        # leave it running: it prints an admin API key when web, worker and scheduler start",
    ]  # make run itself: tests/e2e/test_make_run.py; its time: bench/quickstart.sh
    cli_lines, http_lines = blocks[1], blocks[2]
    with procfile_stack(tmp_path / "stack") as stack:
        clone = tmp_path / "clone"
        (clone / ".venv/bin").mkdir(parents=True)
        (clone / ".venv/bin/dockyard").symlink_to(BIN / "dockyard")
        (clone / ".dockyard").mkdir()
        env = {k: v for k, v in stack["env"].items() if k != "DOCKYARD_API_KEY"}
        (clone / ".dockyard/admin.key").write_text(cli_key(env) + "\n")
        # The README's API is on port 8000; this stack's port is its own.
        env["DOCKYARD_API_URL"] = stack["base"]

        results = run_lines(cli_lines, clone, env)
        said = dict(zip(cli_lines, results, strict=True))
        statuses = [status for status, _ in results]
        assert statuses == [0, 0, 1, 0, 0, 0], "\n".join(f"{line}\n  -> {status}: {out[-400:]}" for line, (status, out) in said.items())
        submitted_echo, submitted_fail, listed, logs, stats = (out for _, out in results[1:])
        assert "state:      succeeded" in submitted_echo and 'result:     {"hello": "dockyard"}' in submitted_echo
        assert "state:      failed" in submitted_fail and "exit code:  3" in submitted_fail
        assert listed.splitlines()[0].startswith("ID") and len(listed.splitlines()) == 3  # the header and both runs
        assert "fail: exiting with code 3" in logs  # the newest run: the failed one
        assert f"run queue '{stack['queue']}'" in stats and "workers:      live 1" in stats

        # The same terminal: DOCKYARD_API_KEY is still exported.
        port_lines = [cli_lines[0], *(line.replace("http://127.0.0.1:8000", stack["base"]) for line in http_lines)]
        created = run_lines(port_lines[:3], clone, env)
        assert [status for status, _ in created] == [0, 0, 0]
        run = json.loads(created[2][1])
        assert (run["processor"], run["payload"]) == ("echo", {"hello": "dockyard"}), run
        wait_until(lambda: stack["http"].get(f"{stack['base']}/v1/runs/{run['id']}", timeout=10).json()["state"] == "succeeded", timeout=60)
        rest = run_lines([*port_lines[:2], *(line.replace("<id>", run["id"]) for line in port_lines[3:])], clone, env)
        assert [status for status, _ in rest] == [0, 0, 0, 0]
        assert json.loads(rest[2][1])["id"] == run["id"]
        assert f"echo: attempt 1 of run {run['id']}" in rest[3][1]


def test_the_quickstart_names_commands_the_cli_has():
    """Every `dockyard ...` command in the Quickstart parses (`--help` of each sub-command answers)."""
    commands = set()
    for block in quickstart_blocks():
        for line in block:
            commands.update(re.findall(r"\.venv/bin/dockyard ((?:[a-z]+ )?[a-z]+)", line))
    assert commands >= {"runs submit", "runs list", "runs logs", "stats"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    for command in sorted(commands):
        ran = subprocess.run([BIN / "dockyard", *command.split(), "--help"], env=env, capture_output=True, text=True, timeout=30)
        assert ran.returncode == 0, (command, ran.stderr)
