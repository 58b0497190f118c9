"""The audit log: every key, processor, schedule and tenant change is recorded with who made it; `admin` reads it."""

from __future__ import annotations

import falcon.testing
import pytest

from cli.main import main
from storage import audit
from storage.api_keys import create_key
from storage.models import AuditEvent
from tests.storage_cases import PIN, make_processor
from web.app import create_app


@pytest.fixture
def api(settings, sqlite_db, dispatcher):
    make_processor("echo")
    app = falcon.testing.TestClient(create_app(settings, db=sqlite_db, dispatcher=dispatcher))
    keys = {tenant: create_key(tenant, "admin", actor="test") for tenant in ("alpha", "beta")}
    return app, {t: (row.id, {"Authorization": f"Bearer {secret}"}) for t, (row, secret) in keys.items()}


def test_changes_through_the_api_are_recorded_with_the_key_that_made_them(api):
    app, keys = api
    key_id, alpha = keys["alpha"]
    fixture_records = AuditEvent.select().count()  # the fixture's processor and keys
    assert app.simulate_put("/v1/processors/report", json={"image": PIN}, headers=alpha).status_code == 201
    assert app.simulate_put("/v1/processors/report", json={"image": PIN}, headers=alpha).status_code == 200  # no change
    assert app.simulate_put("/v1/processors/report", json={"image": PIN, "timeout_seconds": 9}, headers=alpha).status_code == 200
    body = {"name": "nightly", "cron": "0 3 * * *", "processor": "echo", "payload": {"token": "s3cret"}}
    schedule = app.simulate_post("/v1/schedules", json=body, headers=alpha).json["id"]
    app.simulate_patch(f"/v1/schedules/{schedule}", json={"cron": "0 4 * * *", "payload": {"token": "other"}}, headers=alpha)
    app.simulate_post(f"/v1/schedules/{schedule}/pause", headers=alpha)
    app.simulate_post(f"/v1/schedules/{schedule}/pause", headers=alpha)  # paused already: nothing changed
    app.simulate_post(f"/v1/schedules/{schedule}/resume", headers=alpha)
    assert app.simulate_delete(f"/v1/schedules/{schedule}", headers=alpha).status_code == 204

    page = app.simulate_get("/v1/audit", headers=alpha)
    assert page.status_code == 200, page.text
    everything = page.json["items"]
    items = [i for i in everything if i["id"] > fixture_records]
    assert [(i["action"], i["target"]) for i in reversed(everything) if i not in items] == [
        ("processor.add", "echo"),
        ("key.create", key_id),
    ]
    assert [(i["action"], i["target"]) for i in reversed(items)] == [
        ("processor.add", "report"),
        ("processor.change", "report"),
        ("schedule.create", schedule),
        ("schedule.change", schedule),
        ("schedule.pause", schedule),
        ("schedule.resume", schedule),
        ("schedule.delete", schedule),
    ]
    assert {i["actor"] for i in items} == {f"key:{key_id}"}
    by_action = {i["action"]: i for i in items}
    assert by_action["processor.change"]["detail"] == {"timeout_seconds": [300, 9]}
    assert by_action["processor.change"]["tenant_id"] is None  # processors are global
    assert by_action["schedule.create"]["tenant_id"] == "alpha"
    assert by_action["schedule.change"]["detail"] == {"cron": ["0 3 * * *", "0 4 * * *"], "payload": "(changed)"}
    assert "s3cret" not in page.text  # payloads may hold secrets: never copied into the log

    # beta's admin sees the global processor records, none of alpha's schedule records
    beta = app.simulate_get("/v1/audit", headers=keys["beta"][1]).json["items"]
    assert [i["action"] for i in beta if i["id"] > fixture_records] == ["processor.change", "processor.add"]
    # filters and pages
    families = app.simulate_get("/v1/audit", params={"action": "schedule"}, headers=alpha).json["items"]
    assert len(families) == 5
    first = app.simulate_get("/v1/audit", params={"limit": 5}, headers=alpha).json
    rest = app.simulate_get("/v1/audit", params={"limit": 5, "cursor": first["next_cursor"]}, headers=alpha).json
    assert [i["id"] for i in first["items"] + rest["items"]] == [i["id"] for i in everything] and rest["next_cursor"] is None
    for cursor in ("x", "\u00b2", "9" * 30):  # "²".isdigit() is True; 30 digits overflow SQLite's integers
        assert app.simulate_get("/v1/audit", params={"cursor": cursor}, headers=alpha).status_code == 422
    assert app.simulate_get("/v1/audit", params={"limit": 0}, headers=alpha).status_code == 422


def test_a_change_that_fails_leaves_no_record(api):
    app, keys = api
    alpha = keys["alpha"][1]
    body = {"name": "dup", "cron": "0 3 * * *", "processor": "echo"}
    assert app.simulate_post("/v1/schedules", json=body, headers=alpha).status_code == 201
    assert app.simulate_post("/v1/schedules", json=body, headers=alpha).status_code == 409
    assert [e.action for e in AuditEvent.select()][-1:] == ["schedule.create"]
    records = AuditEvent.select().count()
    with pytest.raises(RuntimeError):
        with audit.change("cli:test", "processor.disable", "echo"):
            raise RuntimeError("the change failed")
    assert AuditEvent.select().count() == records


def test_key_and_tenant_commands_are_recorded_and_listed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DOCKYARD_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    assert main(["migrate"]) == 0
    assert main(["keys", "create", "--tenant", "acme", "--scopes", "runs:read", "--name", "ci", "--quiet"]) == 0
    secret = capsys.readouterr().out.strip()
    key_id = secret.split("_")[1]
    assert main(["keys", "rotate", key_id, "--quiet"]) == 0
    new_id = capsys.readouterr().out.strip().split("_")[1]
    assert main(["keys", "revoke", new_id]) == 0
    assert main(["keys", "revoke", new_id]) == 0  # again: nothing changed, nothing recorded
    assert main(["tenants", "set-limit", "acme", "--burst", "5"]) == 0
    assert main(["tenants", "set-quota", "acme", "--max-running", "3"]) == 0
    assert main(["tenants", "set-quota", "acme", "--max-running", "3"]) == 0  # no change: no record
    assert main(["tenants", "set-limit", "acme", "--burst", "5"]) == 0  # no change: no record
    capsys.readouterr()
    assert main(["audit", "list", "--tenant", "acme"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[3:5] for line in reversed(lines)] == [
        ["key.create", key_id],
        ["key.rotate", key_id],
        ["key.revoke", new_id],
        ["tenant.set_limit", "acme"],
        ["tenant.set_quota", "acme"],
    ]
    assert all(line.split()[1].startswith("cli:") and line.split()[2] == "acme" for line in lines)
    assert '"scopes":["runs:read"]' in lines[-1] and secret not in "\n".join(lines)
    assert f'"replaced_by":"{new_id}"' in lines[-2]
    assert lines[0].endswith('{"max_running":[null,3]}') and lines[1].endswith('{"burst":[null,5]}')
    assert main(["audit", "list", "--action", "tenant", "--limit", "1"]) == 0
    assert capsys.readouterr().out.split()[3] == "tenant.set_quota"
    assert main(["audit", "list", "--limit", "0"]) == 2
