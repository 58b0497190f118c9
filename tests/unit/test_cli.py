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
