"""The HTTP API over falcon's TestClient, a SQLite database and dramatiq's StubBroker."""

import json

import falcon.testing
import pytest

from storage.models import Run
from tests.conftest import key_headers, published
from tests.storage_cases import PIN
from web.app import create_app


def submit(client, body, **kw):
    return client.simulate_post("/v1/runs", body=json.dumps(body) if not isinstance(body, str) else body, **kw)


def assert_problem(resp, status, field=None):
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    problem = resp.json
    assert problem["status"] == status and problem["title"] and "detail" in problem
    if field:
        assert field in [e["field"] for e in problem["errors"]], problem


def test_submit_creates_a_queued_run_and_publishes_its_id(client, broker):
    resp = submit(client, {"processor": "echo", "payload": {"n": 1}, "priority": "critical", "labels": {"team": "data"}})
    assert resp.status_code == 201, resp.text
    run = resp.json
    assert resp.headers["location"] == f"/v1/runs/{run['id']}"
    assert run["state"] == "queued" and run["payload"] == {"n": 1} and run["timeout_seconds"] == 30
    assert run["created_at"].endswith("Z")
    [message] = published(broker)
    decoded = json.loads(message)
    assert decoded["args"] == [run["id"]]
    assert (decoded["queue_name"], decoded["actor_name"]) == ("runs.critical", "execute_run_critical")
    assert client.simulate_get(f"/v1/runs/{run['id']}").json["id"] == run["id"]
    events = client.simulate_get(f"/v1/runs/{run['id']}/events").json["items"]
    assert [e["to_state"] for e in events] == ["queued"]


def test_confirmed_runs_are_marked_published_in_batches(client, dispatcher):
    ids = [submit(client, {"processor": "echo"}).json["id"] for _ in range(3)]
    dispatcher.marks.flush()  # what its thread does every 50 ms
    assert Run.select().where(Run.id.in_(ids) & Run.published_at.is_null(False)).count() == 3
    assert dispatcher.marks.flush() == 0


def test_refused_publish_leaves_no_run_behind(client, broker):
    from dramatiq.errors import ConnectionClosed

    def refuse(message, *, delay=None):
        raise ConnectionClosed(Exception("reject-publish"))

    broker.enqueue = refuse
    resp = submit(client, {"processor": "echo"})
    assert_problem(resp, 503)
    assert resp.headers["retry-after"]
    assert client.simulate_get("/v1/runs").json["items"] == []


def test_unknown_processor_is_404(client):
    assert_problem(submit(client, {"processor": "nope"}), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"processor": "echo", "priority": "urgent"}, "priority"),
        ({"processor": "echo", "priority": {}}, "priority"),  # found by the fuzzer: was a 500
        ({"processor": "echo", "timeout_seconds": 0}, "timeout_seconds"),
        ({"processor": "echo", "timeout_seconds": "10"}, "timeout_seconds"),
        ({"processor": "echo", "timeout_seconds": 31}, "timeout_seconds"),
        ({"processor": "echo", "labels": {"a": 1}}, "labels"),
        ({"processor": "echo", "colour": "red"}, "colour"),
        ({}, "processor"),
        ([1, 2], "body"),
    ],
)
def test_bad_fields_are_422_naming_the_field(client, body, field):
    assert_problem(submit(client, body), 422, field)


def test_oversized_payload_is_413(client, settings):
    big = "x" * (settings.max_payload_bytes + 1)
    assert_problem(submit(client, {"processor": "echo", "payload": big}), 413, "payload")


def test_oversized_body_is_413(client, settings):
    assert_problem(submit(client, "[" + "1," * settings.max_payload_bytes * 2 + "1]"), 413)


@pytest.mark.parametrize("body", ["{not json", "", "   "])
def test_malformed_or_missing_json_is_400(client, body):
    assert_problem(submit(client, body), 400)


def test_non_json_content_type_is_415(client):
    assert_problem(submit(client, "processor=echo", headers={"Content-Type": "text/plain"}), 415)


def test_disabled_processor_is_422(client):
    assert submit(client, {"processor": "echo"}).status_code == 201  # the submit path has now cached "echo"
    client.simulate_put("/v1/processors/echo", json={"image": PIN, "enabled": False})
    assert_problem(submit(client, {"processor": "echo"}), 422, "processor")


def test_list_filters_and_paginates(client):
    ids = [submit(client, {"processor": "echo", "labels": {"i": str(i)}}).json["id"] for i in range(5)]
    first = client.simulate_get("/v1/runs", params={"limit": 2}).json
    second = client.simulate_get("/v1/runs", params={"limit": 2, "cursor": first["next_cursor"]}).json
    assert [r["id"] for r in first["items"] + second["items"]] == list(reversed(ids))[:4]
    by_label = client.simulate_get("/v1/runs", params={"label": "i:3"}).json["items"]
    assert [r["id"] for r in by_label] == [ids[3]]
    assert client.simulate_get("/v1/runs", params={"state": "running"}).json["items"] == []
    assert_problem(client.simulate_get("/v1/runs", params={"state": "sleeping"}), 422, "state")
    assert_problem(client.simulate_get("/v1/runs", params={"limit": 0}), 422, "limit")
    assert_problem(client.simulate_get("/v1/runs", params={"cursor": "garbage!"}), 422, "cursor")


def test_unknown_run_is_404_everywhere(client):
    for path in ("", "/attempts", "/events", "/logs"):
        assert_problem(client.simulate_get(f"/v1/runs/nope{path}"), 404)


def test_logs_are_plain_text(client):
    run_id = submit(client, {"processor": "echo"}).json["id"]
    from storage.runs import append_log

    append_log(run_id, 1, "line one\n")
    append_log(run_id, 1, "line two\n")
    resp = client.simulate_get(f"/v1/runs/{run_id}/logs")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    assert resp.text == "line one\nline two\n"
    assert client.simulate_get(f"/v1/runs/{run_id}/logs", params={"attempt": 2}).text == ""


def test_put_processor_creates_then_replaces(client):
    body = {"image": PIN, "timeout_seconds": 10, "resources": {"memory_mb": 64}}
    created = client.simulate_put("/v1/processors/thing", json=body)
    assert created.status_code == 201 and created.json["resources"]["memory_mb"] == 64
    replaced = client.simulate_put("/v1/processors/thing", json={**body, "timeout_seconds": 20})
    assert replaced.status_code == 200 and replaced.json["timeout_seconds"] == 20
    assert client.simulate_get("/v1/processors/thing").json["timeout_seconds"] == 20
    assert "thing" in [p["name"] for p in client.simulate_get("/v1/processors").json["items"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"image": "127.0.0.1:5000/dockyard/echo:latest"}, "image"),
        ({"image": "busybox"}, "image"),
        ({}, "image"),
        ({"image": PIN, "timeout_seconds": 10**9}, "timeout_seconds"),
        ({"image": PIN, "resources": {"memory_mb": 1}}, "resources.memory_mb"),
        ({"image": PIN, "network": "internet"}, "network"),
        ({"image": PIN, "env": {"DOCKYARD_RUN_ID": "x"}}, "env"),
        ({"image": PIN, "command": "echo hi"}, "command"),
    ],
)
def test_bad_processor_specs_are_422_naming_the_field(client, body, field):
    assert_problem(client.simulate_put("/v1/processors/thing", json=body), 422, field)


def test_health_readiness_and_openapi(client):
    assert client.simulate_get("/healthz").json == {"status": "ok"}
    assert client.simulate_get("/readyz").status_code == 200
    doc = client.simulate_get("/openapi.json").json
    assert doc["openapi"].startswith("3.")
    assert {"/v1/runs", "/v1/runs/{run_id}", "/v1/runs/{run_id}/logs", "/v1/processors/{name}"} <= set(doc["paths"])
    assert client.simulate_get("/metrics").status_code == 200


def test_unknown_path_is_problem_json(client):
    assert_problem(client.simulate_get("/v2/nothing"), 404)


@pytest.mark.parametrize(
    ("retry", "field"),
    [
        ({"max_attempts": 0}, "retry.max_attempts"),
        ({"backoff_min_seconds": "x"}, "retry.backoff_min_seconds"),
        ({"backoff_min_seconds": 10, "backoff_max_seconds": 5}, "retry.backoff_max_seconds"),
        ({"backoff_max_seconds": 10**6}, "retry.backoff_max_seconds"),
        ({"jitter": "yes"}, "retry.jitter"),
        ({"retry_on_exit_codes": [0]}, "retry.retry_on_exit_codes"),
        ({"retry_on_timeout": 1}, "retry.retry_on_timeout"),
        ({"retries": 3}, "retry.retries"),
    ],
)
def test_bad_retry_policies_are_422_naming_the_field(client, retry, field):
    assert_problem(client.simulate_put("/v1/processors/thing", json={"image": PIN, "retry": retry}), 422, field)


def test_host_network_is_refused(client):
    assert_problem(client.simulate_put("/v1/processors/thing", json={"image": PIN, "network": "host"}), 422, "network")


def test_openapi_documents_every_route_and_method(client):
    doc = client.simulate_get("/openapi.json").json
    routed = {}
    for node in client.app._router._roots:
        stack = [node]
        while stack:
            n = stack.pop()
            stack.extend(n.children)
            if n.resource is not None:
                routed[n.uri_template] = {
                    m.lower() for m, h in n.method_map.items() if not getattr(h, "__name__", "").startswith("method_not_allowed")
                }
    routed.pop("/openapi.json")
    for path, methods in routed.items():
        if path == "/console" or path.startswith("/console/"):
            assert path not in doc["paths"]  # pages for people (docs/console.md), not the API's contract
            continue
        assert path in doc["paths"], f"{path} missing from /openapi.json"
        assert methods - {"options"} <= set(doc["paths"][path]), f"{path}: {methods} vs {set(doc['paths'][path])}"


def test_openapi_document_is_valid_openapi(client):
    from openapi_spec_validator import validate

    validate(client.simulate_get("/openapi.json").json)


def test_readyz_says_ready_and_which_broker_node(client):
    # The stub broker has no node; tests/integration/test_broker_nodes.py reads a real one.
    assert client.simulate_get("/readyz").json == {"status": "ready", "broker_node": None}


def test_readyz_names_the_broker_when_it_does_not_answer(new_dispatcher, settings, sqlite_db):
    from actors.broker import create_broker

    # Nothing listens on port 9 of loopback: the connection is refused at once.
    broker = create_broker(settings.replace(broker_url="amqp://guest:guest@127.0.0.1:9/%2F?connection_attempts=1"))
    client = falcon.testing.TestClient(create_app(settings, db=sqlite_db, dispatcher=new_dispatcher(broker)), headers=key_headers())
    resp = client.simulate_get("/readyz")
    assert resp.status_code == 503
    assert resp.json["down"] == ["broker"]
    assert client.simulate_get("/healthz").status_code == 200


def test_idempotency_key_returns_the_same_run_or_409(client, broker):
    body = {"processor": "echo", "payload": {"n": 1}}
    first = submit(client, body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201, first.text
    again = submit(client, body, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 200 and again.json["id"] == first.json["id"]
    assert len(published(broker)) == 1  # published once
    assert_problem(submit(client, {**body, "payload": {"n": 2}}, headers={"Idempotency-Key": "k-1"}), 409, "Idempotency-Key")
    other = submit(client, body, headers={"Idempotency-Key": "k-2"})
    assert other.status_code == 201 and other.json["id"] != first.json["id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
def test_bad_idempotency_key_is_400(client, key):
    assert_problem(submit(client, {"processor": "echo"}, headers={"Idempotency-Key": key}), 400, "Idempotency-Key")


def test_cancel_a_queued_run_then_409(client):
    run_id = submit(client, {"processor": "echo"}).json["id"]
    resp = client.simulate_post(f"/v1/runs/{run_id}/cancel")
    assert resp.status_code == 202 and resp.json["state"] == "cancelled"
    assert resp.json["error"]["reason"] == "cancelled" and resp.json["finished_at"]
    assert_problem(client.simulate_post(f"/v1/runs/{run_id}/cancel"), 409)
    assert_problem(client.simulate_post("/v1/runs/nope/cancel"), 404)


def test_replay_an_ended_run_once(client, broker):
    run_id = submit(client, {"processor": "echo", "payload": {"n": 7}, "priority": "high", "labels": {"a": "b"}}).json["id"]
    assert_problem(client.simulate_post(f"/v1/runs/{run_id}/replay"), 409)  # still queued
    client.simulate_post(f"/v1/runs/{run_id}/cancel")
    replay = client.simulate_post(f"/v1/runs/{run_id}/replay")
    assert replay.status_code == 201, replay.text
    assert replay.json["replay_of"] == run_id and replay.json["state"] == "queued"
    assert (replay.json["payload"], replay.json["priority"], replay.json["labels"]) == ({"n": 7}, "high", {"a": "b"})
    again = client.simulate_post(f"/v1/runs/{run_id}/replay")
    assert again.status_code == 200 and again.json["id"] == replay.json["id"]
    assert len(published(broker)) == 2  # the original and one replay


def test_a_run_of_a_disabled_processor_is_not_replayed(client, broker):
    """Found in review: the replay was accepted, then refused by the worker, using up the run's one replay."""
    run_id = submit(client, {"processor": "echo"}).json["id"]
    client.simulate_post(f"/v1/runs/{run_id}/cancel")
    assert client.simulate_put("/v1/processors/echo", json={"image": PIN, "enabled": False}).status_code == 200
    assert_problem(client.simulate_post(f"/v1/runs/{run_id}/replay"), 422, "processor")
    assert len(published(broker)) == 1  # the original only
    # a run replayed before the processor was disabled still answers with that replay
    client.simulate_put("/v1/processors/echo", json={"image": PIN})
    other = submit(client, {"processor": "echo"}).json["id"]
    client.simulate_post(f"/v1/runs/{other}/cancel")
    first = client.simulate_post(f"/v1/runs/{other}/replay").json["id"]
    client.simulate_put("/v1/processors/echo", json={"image": PIN, "enabled": False})
    again = client.simulate_post(f"/v1/runs/{other}/replay")
    assert again.status_code == 200 and again.json["id"] == first


def test_processor_that_cannot_fit_the_consumer_timeout_is_refused(new_dispatcher, settings, sqlite_db, broker):
    # Settings that `from_env` would refuse, to reach the per-processor check.
    tight = settings.replace(broker_consumer_timeout_seconds=600, max_timeout_seconds=3600)
    client = falcon.testing.TestClient(create_app(tight, db=sqlite_db, dispatcher=new_dispatcher(broker)), headers=key_headers())
    ok = client.simulate_put("/v1/processors/fits", json={"image": PIN, "timeout_seconds": 500, "retry": {"backoff_max_seconds": 60}})
    assert ok.status_code == 201, ok.text
    resp = client.simulate_put("/v1/processors/late", json={"image": PIN, "timeout_seconds": 550, "retry": {"backoff_max_seconds": 60}})
    assert_problem(resp, 422, "timeout_seconds")
    assert "consumer_timeout (600s" in resp.json["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"processor": "ec\\u0000ho"}', "processor"),
        ('{"processor": "\\ud800"}', "processor"),
        ('{"processor": "echo", "labels": {"team": "a\\u0000"}}', "labels.team"),
        ('{"processor": "echo", "labels": {"te\\u0000am": "a"}}', "labels.te\x00am"),
        ('{"processor": "echo", "payload": {"text": "\\udc00"}}', "payload.text"),
    ],
)
def test_text_no_database_can_store_is_422_naming_the_field(client, body, field):
    """Found by fuzzing on Postgres (which refuses NUL in text): these were 500s."""
    assert_problem(submit(client, body), 422, field)


def test_a_payload_may_carry_nul_and_paired_surrogates(client):
    resp = submit(client, '{"processor": "echo", "payload": {"k\\u0000": ["\\u0000", "\\ud83d\\ude00"]}}')
    assert resp.status_code == 201, resp.text
    assert resp.json["payload"] == {"k\x00": ["\x00", "\U0001f600"]}


@pytest.mark.parametrize("path", ["/v1/runs/a%00b", "/v1/runs?processor=a%00", "/v1/processors/x%00", "/v1/audit?target=%00"])
def test_nul_in_the_url_is_400(client, path):
    path, _, query = path.partition("?")
    resp = client.simulate_get(path, query_string=query)
    assert_problem(resp, 400)
    assert "NUL" in resp.json["detail"]


@pytest.mark.parametrize(
    "raw",
    [b'{"processor": "\xed\xa0\x80"}', '{"processor": "ec\\u0000ho"}'.encode("utf-16"), b'{"processor": "\xff"}'],
    ids=["utf-8-encoded-surrogate", "utf-16", "latin-1"],
)
def test_a_body_that_is_not_utf_8_is_400(client, raw):
    """Found in review: json.loads(bytes) took these, and a surrogate sent as raw bytes was a 500."""
    resp = client.simulate_post("/v1/runs", body=raw, headers={"Content-Type": "application/json"})
    assert_problem(resp, 400)
    assert "not UTF-8" in resp.json["detail"]


def test_closing_the_dispatcher_writes_pending_marks_and_stops_their_thread(client, dispatcher):
    run_id = submit(client, {"processor": "echo"}).json["id"]
    thread = dispatcher.marks._thread
    assert thread is not None and thread.is_alive()
    dispatcher.close()
    assert not thread.is_alive()
    assert Run.get_by_id(run_id).published_at is not None


def test_runs_since_must_be_a_time(client):
    bad = client.simulate_get("/v1/runs", params={"since": "yesterday"})
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "since"
    far = client.simulate_get("/v1/runs", params={"since": "0001-01-01T00:00:00+01:00"})  # before year 1 in UTC
    assert far.status_code == 422
    assert client.simulate_get("/v1/runs", params={"since": "2026-01-01"}).status_code == 200
