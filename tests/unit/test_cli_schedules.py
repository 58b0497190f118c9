"""`dockyard schedules ...` against the API served on loopback (SQLite, dramatiq's StubBroker)."""

from __future__ import annotations

import json
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from cli.main import main
from storage.api_keys import create_key
from tests.conftest import published
from tests.storage_cases import make_processor
from web.app import create_app


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def api(new_dispatcher, settings, sqlite_db, broker):
    make_processor("echo")
    server = make_server("127.0.0.1", 0, create_app(settings, db=sqlite_db, dispatcher=new_dispatcher(broker)), handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(autouse=True)
def api_key(sqlite_db, monkeypatch):
    _, key = create_key("default", "runs:read,schedules:write", name="cli", actor="test")
    monkeypatch.setenv("DOCKYARD_API_KEY", key)
    return key


def cli(api, capsys, *args) -> tuple[int, str, str]:
    code = main(["schedules", "--api-url", api, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_create_list_pause_resume_trigger(api, capsys, broker):
    code, out, _ = cli(api, capsys, "create", "nightly", "--cron", "0 2 * * *", "--processor", "echo", "--timezone", "Europe/Berlin")
    assert code == 0, out
    created = json.loads(out)
    assert created["overlap"] == "allow" and created["catchup_window_seconds"] == 300

    code, out, _ = cli(api, capsys, "list")
    assert code == 0
    header, row = out.splitlines()
    assert header.split()[:3] == ["NAME", "CRON", "TIMEZONE"]
    assert row.startswith("nightly") and "Europe/Berlin" in row and "active" in row and row.endswith(created["id"])

    code, out, _ = cli(api, capsys, "pause", "nightly")  # by name
    assert code == 0 and json.loads(out)["paused"] is True
    code, out, _ = cli(api, capsys, "resume", created["id"])  # by id
    assert code == 0 and json.loads(out)["next_fire_at"] is not None

    code, out, _ = cli(api, capsys, "trigger", "nightly")
    assert code == 0
    run = json.loads(out)
    assert run["schedule_id"] == created["id"] and run["state"] == "queued"
    assert len(published(broker)) == 1


def test_bad_input_is_named(api, capsys):
    code, out, _ = cli(api, capsys, "create", "bad", "--cron", "61 * * * *", "--processor", "echo")
    assert code == 2 and "cron" in json.loads(out)["detail"]  # 422: the input was wrong
    with pytest.raises(SystemExit) as exited:
        cli(api, capsys, "create", "bad", "--cron", "* * * * *", "--processor", "echo", "--payload", "{nope")
    assert exited.value.code == 2 and "argument --payload: not JSON" in capsys.readouterr().err
    code, _, err = cli(api, capsys, "pause", "nope")
    assert code == 3 and "no schedule with id or name 'nope'" in err


def test_an_unreachable_api_is_reported(capsys):
    code = main(["schedules", "--api-url", "http://127.0.0.1:9", "list"])
    assert code == 4 and "cannot reach the API" in capsys.readouterr().err
