"""Every /v1 route against every kind of caller: no key, a wrong one, an expired one, a revoked one,
one without the route's scope, and another tenant's. Nothing of one tenant reaches another."""

from __future__ import annotations

import datetime as dt

import falcon.testing
import pytest

from storage.api_keys import create_key, revoke_key
from storage.models import utcnow
from tests.storage_cases import PIN, make_processor
from web.app import create_app

# (method, path with {run} / {schedule}, scope, body, kind): kind "item" acts on tenant A's run or
# schedule (another tenant gets 404), "list" reads a collection (another tenant sees none of A's),
# "create" makes something of the caller's own.
ROUTES = [
    ("POST", "/v1/runs", "runs:write", {"processor": "echo"}, "create"),
    ("GET", "/v1/runs", "runs:read", None, "list"),
    ("GET", "/v1/runs/{run}", "runs:read", None, "item"),
    ("GET", "/v1/runs/{run}/attempts", "runs:read", None, "item"),
    ("GET", "/v1/runs/{run}/events", "runs:read", None, "item"),
    ("GET", "/v1/runs/{run}/logs", "runs:read", None, "item"),
    ("POST", "/v1/runs/{run}/cancel", "runs:write", None, "item"),
    ("POST", "/v1/runs/{run}/replay", "runs:write", None, "item"),
    ("GET", "/v1/processors", "runs:read", None, "global"),
    ("GET", "/v1/processors/echo", "runs:read", None, "global"),
    ("PUT", "/v1/processors/other", "processors:write", {"image": PIN}, "global"),
    ("POST", "/v1/schedules", "schedules:write", {"name": "mine", "cron": "0 * * * *", "processor": "echo"}, "create"),
    ("GET", "/v1/schedules", "runs:read", None, "list"),
    ("GET", "/v1/schedules/{schedule}", "runs:read", None, "item"),
    ("PATCH", "/v1/schedules/{schedule}", "schedules:write", {"cron": "5 * * * *"}, "item"),
    ("DELETE", "/v1/schedules/{schedule}", "schedules:write", None, "item"),
    ("POST", "/v1/schedules/{schedule}/pause", "schedules:write", None, "item"),
    ("POST", "/v1/schedules/{schedule}/resume", "schedules:write", None, "item"),
    ("POST", "/v1/schedules/{schedule}/trigger", "schedules:write", None, "item"),
    ("GET", "/v1/audit", "admin", None, "list"),
    ("GET", "/v1/workers", "admin", None, "global"),
]


@pytest.fixture
def world(settings, sqlite_db, dispatcher):
    """Tenant "alpha" with a run and a schedule; keys of every kind."""
    make_processor("echo")
    app = falcon.testing.TestClient(create_app(settings, db=sqlite_db, dispatcher=dispatcher))
    keys = {
        "alpha": create_key("alpha", "admin", actor="test")[1],
        "beta": create_key("beta", "admin", actor="test")[1],
        # made a day ago, expired a minute ago
        "expired": create_key(
            "alpha", "admin", expires_at=utcnow() - dt.timedelta(minutes=1), now=utcnow() - dt.timedelta(days=1), actor="test"
        )[1],
        "revoked": create_key("alpha", "admin", actor="test")[1],
    }
    revoke_key(keys["revoked"].split("_")[1], actor="test")
    alpha = {"Authorization": f"Bearer {keys['alpha']}"}
    run = app.simulate_post("/v1/runs", json={"processor": "echo"}, headers=alpha).json
    app.simulate_post(f"/v1/runs/{run['id']}/cancel", headers=alpha)  # ended: replayable, and cancel answers 409
    schedule = app.simulate_post(
        "/v1/schedules", json={"name": "alpha-hourly", "cron": "0 * * * *", "processor": "echo"}, headers=alpha
    ).json
    return {"app": app, "keys": keys, "run": run["id"], "schedule": schedule["id"]}


def call(world, route, headers: dict | None):
    method, path, _scope, body, _kind = route
    path = path.format(run=world["run"], schedule=world["schedule"])
    return world["app"].simulate_request(method, path, json=body, headers=headers or {})


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def ids(route) -> str:
    return f"{route[0]} {route[1]}"


@pytest.mark.parametrize("route", ROUTES, ids=ids)
@pytest.mark.parametrize(
    ("caller", "reason"),
    [
        (None, "an API key is required"),
        ("Basic dXNlcjpwYXNz", "an API key is required"),
        ("Bearer not-a-key", "not a Dockyard API key"),
        ("Bearer dky_0123456789ab_" + "A" * 43, "not known"),
        ("expired", "expired at"),
        ("revoked", "was revoked"),
    ],
)
def test_no_valid_key_is_401(world, route, caller, reason):
    if caller in ("expired", "revoked"):
        headers = bearer(world["keys"][caller])
    else:
        headers = {"Authorization": caller} if caller else None
    resp = call(world, route, headers)
    assert resp.status_code == 401, resp.text
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert resp.headers["content-type"] == "application/problem+json"
    assert reason in resp.json["detail"]


@pytest.mark.parametrize("route", ROUTES, ids=ids)
def test_a_key_without_the_routes_scope_is_403(world, route):
    other_scope = "schedules:write" if route[2] == "runs:read" else "runs:read"
    _, key = create_key("alpha", other_scope, actor="test")
    resp = call(world, route, bearer(key))
    assert resp.status_code == 403, resp.text
    assert repr(route[2]) in resp.json["detail"]


@pytest.mark.parametrize("route", ROUTES, ids=ids)
def test_the_routes_scope_or_admin_lets_the_tenant_in(world, route):
    _, key = create_key("alpha", route[2], actor="test")
    resp = call(world, route, bearer(key))
    # alpha's run has already ended, so its cancel is refused for that reason (409), never for the key.
    expected = {409} if route[1].endswith("/cancel") else set(range(200, 300))
    assert resp.status_code in expected, resp.text


@pytest.mark.parametrize("route", ROUTES, ids=ids)
def test_another_tenant_never_sees_or_touches_alphas_things(world, route):
    beta = bearer(world["keys"]["beta"])
    resp = call(world, route, beta)
    if route[4] == "item":
        # Exactly what an id that exists nowhere gets (the detail names the id the caller sent).
        unknown = call({**world, "run": "0" * 32, "schedule": "0" * 32}, route, beta)
        assert resp.status_code == 404, resp.text
        assert resp.text.replace(world["run"], "0" * 32).replace(world["schedule"], "0" * 32) == unknown.text
    else:
        assert resp.status_code in (200, 201), resp.text
        assert world["run"] not in resp.text and world["schedule"] not in resp.text and "alpha" not in resp.text


def test_alphas_things_are_untouched_by_beta(world):
    for route in ROUTES:
        call(world, route, bearer(world["keys"]["beta"]))
    alpha = bearer(world["keys"]["alpha"])
    schedule = world["app"].simulate_get(f"/v1/schedules/{world['schedule']}", headers=alpha).json
    assert schedule["cron"] == "0 * * * *" and schedule["paused"] is False and schedule["recent"] == []
    runs = world["app"].simulate_get("/v1/runs", headers=alpha).json["items"]
    assert [r["id"] for r in runs] == [world["run"]]


def test_health_metrics_and_openapi_need_no_key(world):
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert world["app"].simulate_get(path).status_code == 200, path


def test_an_unknown_v1_path_needs_a_key_before_it_is_404(world):
    assert world["app"].simulate_get("/v1/nothing").status_code == 401
    assert world["app"].simulate_get("/v1/nothing", headers=bearer(world["keys"]["alpha"])).status_code == 404


def test_every_v1_responder_declares_its_scope(world):
    app = world["app"].app
    missing = []
    for route in app._router._roots:
        stack = [route]
        while stack:
            node = stack.pop()
            stack.extend(node.children)
            if node.resource is None or not node.uri_template.startswith("/v1/"):
                continue
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                if hasattr(node.resource, f"on_{method.lower()}") and method not in getattr(node.resource, "scopes", {}):
                    missing.append(f"{method} {node.uri_template}")
    assert not missing
    assert len({(m, p) for m, p, *_ in ROUTES}) == len(ROUTES)
