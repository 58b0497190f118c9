"""The `dockyard` admin commands against a SQLite database."""

import pytest

from cli.main import main
from storage.processors import get_processor
from tests.storage_cases import PIN


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKYARD_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    return tmp_path


def write(path, text):
    path.write_text(text)
    return str(path)


def test_migrate_then_apply_then_dry_run(env, capsys):
    assert main(["migrate"]) == 0
    assert main(["migrate"]) == 0
    assert "up to date" in capsys.readouterr().out
    manifest = write(env / "m.yaml", f"processors:\n  - name: echo\n    image: '{PIN}'\n    timeout_seconds: 20\n")
    assert main(["processors", "apply", manifest]) == 0
    assert "add     echo" in capsys.readouterr().out
    assert get_processor("echo").timeout_seconds == 20
    changed = write(env / "m2.yaml", f"processors:\n  - name: echo\n    image: '{PIN}'\n    timeout_seconds: 25\n")
    assert main(["processors", "apply", changed, "--dry-run"]) == 0
    assert "change  echo" in capsys.readouterr().out
    assert get_processor("echo").timeout_seconds == 20
    assert main(["processors", "apply", manifest]) == 0
    assert "keep    echo" in capsys.readouterr().out


def test_unpinned_image_is_rejected_naming_the_entry(env, capsys):
    assert main(["migrate"]) == 0
    manifest = write(env / "m.yaml", f"processors:\n  - name: ok\n    image: '{PIN}'\n  - name: bad\n    image: busybox:latest\n")
    assert main(["processors", "apply", manifest]) == 2
    err = capsys.readouterr().err
    assert "processors[1] (bad): image:" in err and "not pinned by digest" in err
    with pytest.raises(Exception, match="not found"):
        get_processor("ok")  # nothing is applied when any entry is invalid


def test_bad_setting_is_reported_not_raised(monkeypatch, capsys):
    monkeypatch.setenv("DOCKYARD_NOPE", "1")
    assert main(["migrate"]) == 2
    assert "DOCKYARD_NOPE: unknown setting" in capsys.readouterr().err
