"""The `dockyard` admin commands against a SQLite database."""

import pytest

from cli.main import main


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKYARD_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    return tmp_path


def write(path, text):
    path.write_text(text)
    return str(path)


def test_bad_setting_is_reported_not_raised(monkeypatch, capsys):
    monkeypatch.setenv("DOCKYARD_NOPE", "1")
    assert main(["migrate"]) == 2
    assert "DOCKYARD_NOPE: unknown setting" in capsys.readouterr().err


def test_the_choices_written_out_are_storages_own():
    from cli import parsing, runs
    from storage.api_keys import Scope
    from storage.run_states import TERMINAL, RunState
    from storage.specs import Overlap, Priority

    assert parsing.PRIORITIES == tuple(p.value for p in Priority)
    assert parsing.RUN_STATES == tuple(s.value for s in RunState)
    assert parsing.OVERLAPS == tuple(o.value for o in Overlap)
    assert parsing.SCOPES == tuple(s.value for s in Scope)
    assert runs.TERMINAL == {s.value for s in TERMINAL}


def test_help_loads_neither_storage_nor_the_broker():
    """`dockyard --help` stays quick: building the parser imports no database, broker or HTTP library
    (bench/cli_start.py times it)."""
    import subprocess
    import sys

    heavy = ("peewee", "dramatiq", "pika", "requests", "pydantic", "opentelemetry")
    probe = f"import sys, cli.main; cli.main.build_parser(); print(sorted(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]", loaded


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("dockyard 0.")


def test_admin_lists_print_json_with_json(env, capsys):
    import json

    from storage import workers
    from tests.storage_cases import make_processor

    assert main(["migrate"]) == 0
    assert main(["keys", "create", "--tenant", "acme", "--scopes", "runs:read", "--quiet"]) == 0
    make_processor("echo")
    workers.register_worker(workers.Registration("w1", "h", 1, "unix:///var/run/docker.sock", None, 2, "0.1.0", 10))
    capsys.readouterr()

    def items(*command):
        assert main([*command, "--json"]) == 0
        return json.loads(capsys.readouterr().out)["items"]

    (key,) = items("keys", "list")
    assert (key["tenant_id"], key["state"], key["scopes"], key["expires_at"]) == ("acme", "active", ["runs:read"], None)
    tenant = {t["id"]: t for t in items("tenants", "list")}["acme"]
    assert tenant["own_limit"] is False and tenant["rate_burst"] == 100 and tenant["max_running"] == 0
    assert [a["action"] for a in items("audit", "list")] == ["processor.add", "key.create"]
    assert items("audit", "list")[0]["at"].endswith("Z")
    assert [(p["name"], p["enabled"]) for p in items("processors", "list")] == [("echo", True)]
    (worker,) = items("workers", "list")
    assert (worker["name"], worker["state"], worker["threads"]) == ("w1", "live", 2)
    assert items("dlq", "list") == []


def test_progress_is_shown_only_at_a_terminal():
    import io

    from cli.parsing import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    shown, piped = Terminal(), io.StringIO()
    for stream in (shown, piped):
        progress = Progress("applied", 3, stream=stream)
        for _ in range(3):
            progress()
        progress.done()
    assert shown.getvalue() == "\rapplied 1 of 3\rapplied 2 of 3\rapplied 3 of 3\n"
    assert piped.getvalue() == ""


def test_apply_reports_each_change_written(env, capsys):
    from settings import Settings
    from storage import manifests
    from tests.storage_cases import PIN

    assert main(["migrate"]) == 0
    text = "processors:\n" + "".join(f"  - name: p{i}\n    image: '{PIN}'\n" for i in range(5))
    written = []
    manifests.apply(manifests.plan(manifests.read_manifest(text, Settings())), "cli:test", progress=written.append)
    assert [c.name for c in written] == [f"p{i}" for i in range(5)]
