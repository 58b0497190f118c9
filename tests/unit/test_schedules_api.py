"""/v1/schedules over falcon's TestClient, a SQLite database and dramatiq's StubBroker."""

import json

import falcon.testing
import pytest

from tests.conftest import key_headers, published
from tests.storage_cases import make_processor
from web.app import create_app

NIGHTLY = {
    "name": "nightly-report",
    "cron": "0 2 * * *",
    "timezone": "Europe/Berlin",
    "processor": "echo",
    "payload": {"report": "daily"},
    "priority": "high",
    "overlap": "forbid",
    "catchup_window_seconds": 3600,
}


def problem_fields(resp, status):
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    return [e["field"] for e in resp.json.get("errors", [])]


def create(client, **changes):
    return client.simulate_post("/v1/schedules", json={**NIGHTLY, **changes})


def test_create_get_list_and_delete(client):
    resp = create(client)
    assert resp.status_code == 201, resp.text
    schedule = resp.json
    assert resp.headers["location"] == f"/v1/schedules/{schedule['id']}"
    assert {k: schedule[k] for k in NIGHTLY} == NIGHTLY
    assert schedule["paused"] is False and schedule["last_fired_at"] is None
    # 02:00 in Berlin is 00:00 or 01:00 UTC, depending on the season.
    assert schedule["next_fire_at"][11:16] in ("00:00", "01:00")
    got = client.simulate_get(f"/v1/schedules/{schedule['id']}").json
    assert got["recent"] == [] and got["name"] == "nightly-report"
    assert [s["id"] for s in client.simulate_get("/v1/schedules").json["items"]] == [schedule["id"]]
    assert client.simulate_delete(f"/v1/schedules/{schedule['id']}").status_code == 204
    assert problem_fields(client.simulate_get(f"/v1/schedules/{schedule['id']}"), 404) == []


def test_defaults(client):
    resp = client.simulate_post("/v1/schedules", json={"name": "minimal", "cron": "*/5 * * * *", "processor": "echo"})
    assert resp.status_code == 201, resp.text
    assert (resp.json["timezone"], resp.json["overlap"], resp.json["priority"], resp.json["payload"]) == ("UTC", "allow", "normal", {})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "every day"}, "cron"),
        ({"timezone": "Europe/Atlantis"}, "timezone"),
        ({"timezone": "Europe/" + "x" * 300}, "timezone"),  # found by the fuzzer: was a 500 (file name too long)
        ({"timezone": "Europe/" + "é" * 40}, "timezone"),
        ({"processor": "nope"}, "processor"),
        ({"overlap": "sometimes"}, "overlap"),
        ({"priority": "urgent"}, "priority"),
        ({"priority": ["high"]}, "priority"),
        ({"catchup_window_seconds": -1}, "catchup_window_seconds"),
        ({"paused": "no"}, "paused"),
        ({"name": "Bad Name"}, "name"),
        ({"colour": "blue"}, "colour"),
        ({"cron": "0 0 30 2 *"}, "cron"),  # never fires
    ],
)
def test_bad_specs_are_422_naming_the_field(client, settings, changes, field):
    resp = create(client, **changes)
    assert field in problem_fields(resp, 422), resp.json


def test_every_minute_is_the_default_minimum(client):
    assert create(client, cron="* * * * *").status_code == 201


def test_firing_more_often_than_the_minimum_is_refused(new_dispatcher, settings, sqlite_db, broker):
    make_processor("echo")
    strict = settings.replace(schedule_min_interval_seconds=600)
    client = falcon.testing.TestClient(create_app(strict, db=sqlite_db, dispatcher=new_dispatcher(broker)), headers=key_headers())
    resp = client.simulate_post("/v1/schedules", json={**NIGHTLY, "cron": "*/5 * * * *"})
    assert "cron" in problem_fields(resp, 422)
    assert "minimum interval is 600s" in resp.json["detail"]


def test_names_are_unique(client):
    assert create(client).status_code == 201
    assert problem_fields(create(client), 409) == ["name"]


def test_patch_changes_fields_and_keeps_the_rest(client):
    schedule = create(client).json
    resp = client.simulate_patch(f"/v1/schedules/{schedule['id']}", json={"cron": "30 6 * * 1", "timezone": "UTC"})
    assert resp.status_code == 200, resp.text
    assert resp.json["cron"] == "30 6 * * 1" and resp.json["payload"] == {"report": "daily"}
    assert resp.json["next_fire_at"][11:16] == "06:30"
    assert "cron" in problem_fields(client.simulate_patch(f"/v1/schedules/{schedule['id']}", json={"cron": "bad"}), 422)
    assert client.simulate_get(f"/v1/schedules/{schedule['id']}").json["cron"] == "30 6 * * 1"


def test_pause_and_resume(client):
    schedule = create(client).json
    paused = client.simulate_post(f"/v1/schedules/{schedule['id']}/pause").json
    assert paused["paused"] is True and paused["next_fire_at"] is None
    resumed = client.simulate_post(f"/v1/schedules/{schedule['id']}/resume").json
    assert resumed["paused"] is False and resumed["next_fire_at"] is not None


def test_trigger_starts_a_run_now(client, broker):
    schedule = create(client).json
    resp = client.simulate_post(f"/v1/schedules/{schedule['id']}/trigger")
    assert resp.status_code == 201, resp.text
    run = resp.json
    assert run["schedule_id"] == schedule["id"] and run["scheduled_for"] and run["priority"] == "high"
    assert run["payload"] == {"report": "daily"} and run["labels"] == {"schedule": "nightly-report"}
    [message] = published(broker)
    assert json.loads(message)["args"] == [run["id"]]
    after = client.simulate_get(f"/v1/schedules/{schedule['id']}").json
    assert after["last_fired_at"] == run["scheduled_for"]
    assert [(e["kind"], e["run_id"]) for e in after["recent"]] == [("triggered", run["id"])]
    listed = client.simulate_get("/v1/runs", params={"schedule_id": schedule["id"]}).json["items"]
    assert [r["id"] for r in listed] == [run["id"]]


def test_payload_and_body_limits_follow_the_setting(new_dispatcher, settings, sqlite_db, broker):
    make_processor("echo")
    small = settings.replace(max_payload_bytes=1000)
    client = falcon.testing.TestClient(create_app(small, db=sqlite_db, dispatcher=new_dispatcher(broker)), headers=key_headers())
    resp = client.simulate_post("/v1/schedules", json={**NIGHTLY, "payload": "x" * 1000})
    assert problem_fields(resp, 422) == ["payload"] and "larger than 1000 bytes" in resp.json["detail"]
    resp = client.simulate_post("/v1/schedules", json={**NIGHTLY, "payload": "x" * 70_000})
    problem_fields(resp, 413)
    assert "limit is 67536" in resp.json["detail"]  # 2 x 1000 + 64 KiB
    assert client.simulate_post("/v1/schedules", json={**NIGHTLY, "payload": "x" * 990}).status_code == 201
