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
