"""The web console through falcon's TestClient: signing in and out, sessions, the same scopes and tenant
isolation as the API, CSRF, the security headers, and untrusted output shown as text.
(tests/e2e/test_console_browser.py drives the same pages in a real browser.)"""

from __future__ import annotations

import re

import pytest

from storage import runs as run_store
from storage.api_keys import create_key, revoke_key
from storage.models import ConsoleSession, RunAttempt
from storage.run_states import RunState, transition
from tests.conftest import key_headers

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def sign_in(client, scopes: str = "admin", tenant: str = "default", *, headers=None) -> dict[str, str]:
    """Sign in with a new key; return the session's cookies and its CSRF token (as "csrf")."""
    _, key = create_key(tenant, scopes, actor="test")
    form = client.simulate_get("/console/sign-in")
    token = CSRF.search(form.text).group(1)
    done = client.simulate_post(
        "/console/sign-in",
        body=f"key={key}&csrf={token}&next=/console/runs",
        headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
        cookies={"dockyard_sign_in": form.cookies["dockyard_sign_in"].value},
    )
    assert done.status_code == 303 and done.headers["Location"].endswith("/console/runs"), done.text
    cookies = {"dockyard_session": done.cookies["dockyard_session"].value}
    page = client.simulate_get("/console/runs", cookies=cookies)
    return {**cookies, "csrf": CSRF.search(page.text).group(1)}


def post(client, path: str, session: dict[str, str], **fields):
    body = "&".join(f"{k}={v}" for k, v in fields.items())
    return client.simulate_post(
        path,
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        cookies={"dockyard_session": session["dockyard_session"]},
    )


def cookies_of(session: dict[str, str]) -> dict[str, str]:
    return {"dockyard_session": session["dockyard_session"]}


def submit(client, headers=None) -> str:
    made = client.simulate_post("/v1/runs", json={"processor": "echo", "payload": {"n": 1}}, headers=headers)
    assert made.status_code == 201, made.text
    return made.json["id"]


def test_pages_need_a_session_and_send_to_the_sign_in_page(client):
    found = client.simulate_get("/console/runs", params={"state": "queued"})
    assert found.status_code == 303
    assert found.headers["Location"].endswith("/console/sign-in?next=%2Fconsole%2Fruns%3Fstate%3Dqueued")
    assert client.simulate_post("/console/runs/x/cancel", body="csrf=x").status_code == 401
    # The API's own key header opens no console page.
    assert client.simulate_get("/console/runs").status_code == 303


def test_signing_in_sets_a_strict_http_only_session_cookie(client):
    _, key = create_key("default", "runs:read", actor="test")
    form = client.simulate_get("/console/sign-in")
    sign_in_cookie = form.cookies["dockyard_sign_in"]
    assert sign_in_cookie.http_only and sign_in_cookie.same_site == "Strict"
    token = CSRF.search(form.text).group(1)
    for proto, secure in (("http", False), ("https", True)):
        done = client.simulate_post(
            "/console/sign-in",
            body=f"key={key}&csrf={token}&next=/console/runs",
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-Proto": proto},
            cookies={"dockyard_sign_in": sign_in_cookie.value},
        )
        assert done.status_code == 303
        cookie = done.cookies["dockyard_session"]
        assert cookie.http_only and cookie.same_site == "Strict" and cookie.path == "/console" and cookie.secure is secure
        assert 0 < cookie.max_age <= 8 * 3600
    assert ConsoleSession.select().count() == 2
    [row] = ConsoleSession.select().limit(1)
    assert row.token_sha256 != cookie.value  # only a digest of the token is kept


@pytest.mark.parametrize(
    ("key", "csrf", "status", "says"),
    [
        ("dky_000000000000_" + "x" * 43, "good", 401, "Not signed in: this API key is not known"),
        ("nonsense", "good", 401, "this is not a Dockyard API key"),
        ("good", "forged", 403, "The sign-in form was stale"),
    ],
)
def test_a_bad_key_or_a_forged_sign_in_form_opens_no_session(client, key, csrf, status, says):
    _, real = create_key("default", "admin", actor="test")
    form = client.simulate_get("/console/sign-in")
    token = CSRF.search(form.text).group(1)
    done = client.simulate_post(
        "/console/sign-in",
        body=f"key={real if key == 'good' else key}&csrf={token if csrf == 'good' else 'forged'}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        cookies={"dockyard_sign_in": form.cookies["dockyard_sign_in"].value},
    )
    assert done.status_code == status and says in done.text
    assert "dockyard_session" not in done.cookies and ConsoleSession.select().count() == 0


def test_after_signing_in_only_a_console_page_is_a_landing(client):
    _, key = create_key("default", "admin", actor="test")
    for asked, landing in (
        ("/console/runs/abc", "/console/runs/abc"),
        ("//evil.example/x", "/console/runs"),
        ("https://evil.example", "/console/runs"),
    ):
        form = client.simulate_get("/console/sign-in", params={"next": asked})
        token = CSRF.search(form.text).group(1)
        done = client.simulate_post(
            "/console/sign-in",
            body=f"key={key}&csrf={token}&next={asked}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            cookies={"dockyard_sign_in": form.cookies["dockyard_sign_in"].value},
        )
        assert done.headers["Location"].endswith(landing) and "evil" not in done.headers["Location"]


def test_every_console_answer_forbids_framing_and_inline_script(client):
    session = sign_in(client)
    for answer in (client.simulate_get("/console/sign-in"), client.simulate_get("/console/runs", cookies=cookies_of(session))):
        policy = answer.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
        assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["Cache-Control"] == "no-store"
        assert "<script>" not in answer.text and " style=" not in answer.text  # nothing inline for the policy to block
    missing = client.simulate_get("/console/runs/nope", cookies=cookies_of(session))
    assert missing.status_code == 404 and missing.headers["X-Frame-Options"] == "DENY"
    assert missing.headers["Content-Type"].startswith("text/html")
    # The API's errors stay problem+json.
    assert client.simulate_get("/v1/runs/nope").headers["Content-Type"] == "application/problem+json"


def test_runs_page_lists_the_tenants_runs_with_filters_and_pages(client):
    mine = [submit(client) for _ in range(3)]
    theirs = submit(client, headers=key_headers("other"))
    session = sign_in(client)
    page = client.simulate_get("/console/runs", cookies=cookies_of(session))
    assert page.status_code == 200 and all(run_id in page.text for run_id in mine) and theirs not in page.text
    assert 'class="state state-queued"' in page.text
    cancelled = client.simulate_post(f"/v1/runs/{mine[0]}/cancel")
    assert cancelled.status_code == 202
    only = client.simulate_get("/console/runs", params={"state": "cancelled"}, cookies=cookies_of(session))
    assert mine[0] in only.text and mine[1] not in only.text
    assert client.simulate_get("/console/runs", params={"state": "bogus"}, cookies=cookies_of(session)).status_code == 422
    high = client.simulate_post("/v1/runs", json={"processor": "echo", "priority": "high"}).json["id"]
    by_priority = client.simulate_get("/console/runs", params={"priority": "high"}, cookies=cookies_of(session))
    assert high in by_priority.text and mine[1] not in by_priority.text
    made_at = run_store.get_run(high).created_at
    since = client.simulate_get("/console/runs", params={"since": f"{made_at:%Y-%m-%dT%H:%M:%S.%f}Z"}, cookies=cookies_of(session))
    assert high in since.text and mine[1] not in since.text
    before = client.simulate_get("/console/runs", params={"until": f"{made_at:%Y-%m-%dT%H:%M:%S.%f}+00:00"}, cookies=cookies_of(session))
    assert high not in before.text and mine[1] in before.text
    for field, value in (("priority", "urgent"), ("since", "yesterday")):
        bad = client.simulate_get("/console/runs", params={field: value}, cookies=cookies_of(session))
        assert bad.status_code == 422 and field in bad.text


def test_another_tenants_run_is_not_found(client):
    theirs = submit(client, headers=key_headers("other"))
    session = sign_in(client)
    assert client.simulate_get(f"/console/runs/{theirs}", cookies=cookies_of(session)).status_code == 404
    assert post(client, f"/console/runs/{theirs}/cancel", session, csrf=session["csrf"]).status_code == 404
    assert run_store.get_run(theirs).state == RunState.QUEUED


def test_a_read_only_key_sees_no_actions_and_a_forged_post_is_forbidden(client):
    run_id = submit(client)
    session = sign_in(client, "runs:read")
    page = client.simulate_get(f"/console/runs/{run_id}", cookies=cookies_of(session))
    assert page.status_code == 200 and "Cancel</button>" not in page.text and "Replay</button>" not in page.text
    forged = post(client, f"/console/runs/{run_id}/cancel", session, csrf=session["csrf"])
    assert forged.status_code == 403 and "lacks the scope &#39;runs:write&#39;" in forged.text  # escaped, as all text
    assert run_store.get_run(run_id).state == RunState.QUEUED


def test_actions_need_the_sessions_csrf_token(client):
    run_id = submit(client)
    session = sign_in(client, "runs:read,runs:write")
    assert "Cancel</button>" in client.simulate_get(f"/console/runs/{run_id}", cookies=cookies_of(session)).text
    for token in ("", "wrong", sign_in(client)["csrf"]):  # none, made up, another session's
        refused = post(client, f"/console/runs/{run_id}/cancel", session, csrf=token)
        assert refused.status_code == 403 and "CSRF" in refused.text
    assert run_store.get_run(run_id).state == RunState.QUEUED
    done = post(client, f"/console/runs/{run_id}/cancel", session, csrf=session["csrf"])
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/console/runs/{run_id}")
    assert run_store.get_run(run_id).state == RunState.CANCELLED


def test_replay_from_the_run_page_makes_a_linked_run(client, broker):
    run_id = submit(client)
    assert client.simulate_post(f"/v1/runs/{run_id}/cancel").status_code == 202  # ended other than succeeded
    session = sign_in(client)
    page = client.simulate_get(f"/console/runs/{run_id}", cookies=cookies_of(session))
    assert "Replay</button>" in page.text and "Cancel</button>" not in page.text
    done = post(client, f"/console/runs/{run_id}/replay", session, csrf=session["csrf"])
    assert done.status_code == 303
    replay_id = done.headers["Location"].rsplit("/", 1)[1]
    assert run_store.get_run(replay_id).replay_of == run_id
    replayed = client.simulate_get(f"/console/runs/{run_id}", cookies=cookies_of(session))
    assert f'href="/console/runs/{replay_id}"' in replayed.text


def test_processor_output_and_payloads_are_shown_as_text(client):
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    made = client.simulate_post("/v1/runs", json={"processor": "echo", "payload": {"html": hostile}})
    run_id = made.json["id"]
    run_store.append_log(run_id, 1, f"{hostile}\n\x1b[31mred\x1b[0m\n")
    session = sign_in(client)
    page = client.simulate_get(f"/console/runs/{run_id}", cookies=cookies_of(session))
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "\u241b[31mred\u241b[0m" in page.text  # ESC shown as ␛
    assert "\x1b" not in page.text


def test_signing_out_or_revoking_the_key_ends_the_session(client):
    session = sign_in(client)
    assert post(client, "/console/sign-out", session, csrf="wrong").status_code == 403
    out = post(client, "/console/sign-out", session, csrf=session["csrf"])
    assert out.status_code == 303 and out.headers["Location"].endswith("/console/sign-in")
    assert client.simulate_get("/console/runs", cookies=cookies_of(session)).status_code == 303
    again = sign_in(client, tenant="acme")
    [key_id] = {row.key_id for row in ConsoleSession.select()}
    revoke_key(key_id, actor="test")
    assert client.simulate_get("/console/runs", cookies=cookies_of(again)).status_code == 303


def test_static_files_are_served_from_the_package(client):
    css = client.simulate_get("/console/static/console.css")
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert client.simulate_get("/console/static/missing.js").status_code == 404
    assert client.simulate_get("/console").headers["Location"].endswith("/console/overview")


def test_a_runs_log_text_is_read_through_the_session_with_the_apis_rules(client):
    run_id = submit(client)
    run_store.append_log(run_id, 1, "hello\n")
    session = sign_in(client, "runs:read")
    page = client.simulate_get(f"/console/runs/{run_id}", cookies=cookies_of(session))
    assert f'data-follow="/console/runs/{run_id}/logs?follow=true"' in page.text  # still queued: the page follows it
    assert f'data-watch="/console/runs/{run_id}/state"' in page.text
    state = client.simulate_get(f"/console/runs/{run_id}/state", cookies=cookies_of(session))
    assert state.status_code == 200 and state.json["state"] == "queued" and state.json["id"] == run_id  # the API's RunView
    assert client.simulate_post(f"/v1/runs/{run_id}/cancel").status_code == 202
    logs = client.simulate_get(f"/console/runs/{run_id}/logs", params={"follow": "true"}, cookies=cookies_of(session))
    assert logs.status_code == 200 and logs.text == "hello\n"  # ended: the whole text at once
    assert "data-follow" not in client.simulate_get(f"/console/runs/{run_id}", cookies=cookies_of(session)).text
    assert client.simulate_get(f"/console/runs/{run_id}/logs").status_code == 303  # no session: sign in first
    theirs = submit(client, headers=key_headers("other"))
    assert client.simulate_get(f"/console/runs/{theirs}/logs", cookies=cookies_of(session)).status_code == 404


class FakeDeadLetters:
    """A dead-letter queue in memory: the run ids of its messages."""

    def __init__(self, name: str, held: list[str]):
        self.name, self.held = name, held

    def count(self) -> int:
        return len(self.held)

    def remove(self, run_ids: set[str]) -> int:
        before = len(self.held)
        self.held[:] = [run_id for run_id in self.held if run_id not in run_ids]
        return before - len(self.held)

    def purge(self) -> int:
        count, self.held[:] = len(self.held), []
        return count


class FakeQueues:
    def __init__(self):
        self.held: list[str] = []

    def dead_letters(self, queue: str) -> FakeDeadLetters:
        return FakeDeadLetters(f"{queue}.XQ", self.held)

    def depths(self, queue: str) -> dict[str, int]:
        return {queue: 7, f"{queue}.DQ": 0, f"{queue}.XQ": len(self.held)}

    def consumers(self, queue: str) -> int:
        return 2


@pytest.fixture
def queues():
    return FakeQueues()


@pytest.fixture
def dlq_client(settings, sqlite_db, dispatcher, queues):
    import falcon.testing

    from tests.storage_cases import make_processor
    from web.app import create_app

    make_processor("echo")
    return falcon.testing.TestClient(create_app(settings, db=sqlite_db, dispatcher=dispatcher, queues=queues), headers=key_headers())


def dead_letter(client, queues: FakeQueues, headers=None, tail: str = "gave up\n") -> str:
    """A run that ended dead_letter after one attempt, with its message in the dead-letter queue."""
    run_id = submit(client, headers)
    transition(run_id, RunState.RUNNING, attempts=1)
    attempt = run_store.start_attempt(run_id, 1, "test-worker")
    RunAttempt.update(log_tail=tail, outcome="failed", exit_code=3).where(RunAttempt.id == attempt.id).execute()
    transition(
        run_id, RunState.DEAD_LETTER, reason="retries_exhausted", exit_code=3, error_reason="retries_exhausted", error_message="exit 3"
    )
    queues.held.append(run_id)
    return run_id


def test_dead_letters_page_shows_the_tenants_dead_letters_and_the_actions_its_key_allows(dlq_client, queues):
    mine = dead_letter(dlq_client, queues, tail="<b>boom</b>\n")
    theirs = dead_letter(dlq_client, queues, headers=key_headers("other"))
    admin = sign_in(dlq_client)
    page = dlq_client.simulate_get("/console/dead-letters", cookies=cookies_of(admin))
    assert mine in page.text and theirs not in page.text and "retries_exhausted" in page.text
    assert "&lt;b&gt;boom&lt;/b&gt;" in page.text and "holds 2 message(s)" in page.text
    assert "Replay all that match" in page.text and "Purge your dead letters" in page.text
    run_page = dlq_client.simulate_get(f"/console/runs/{mine}", cookies=cookies_of(admin))
    assert '<pre class="tail">&lt;b&gt;boom&lt;/b&gt;' in run_page.text  # each attempt's log tail, as text
    reader = sign_in(dlq_client, "runs:read")
    page = dlq_client.simulate_get("/console/dead-letters", cookies=cookies_of(reader))
    assert mine in page.text and "Replay</button>" not in page.text and "Purge" not in page.text and "holds" not in page.text
    bad = dlq_client.simulate_get("/console/dead-letters", params={"since": "yesterday"}, cookies=cookies_of(admin))
    assert bad.status_code == 422 and "since" in bad.text


def test_replaying_one_dead_letter_makes_a_run_and_drops_its_message(dlq_client, queues):
    run_id, other = dead_letter(dlq_client, queues), dead_letter(dlq_client, queues)
    writer = sign_in(dlq_client, "runs:read,runs:write")
    done = post(dlq_client, "/console/dead-letters/replay", writer, csrf=writer["csrf"], run_id=run_id)
    assert done.status_code == 303
    replay_id = done.headers["Location"].rsplit("/", 1)[1]
    assert run_store.get_run(replay_id).replay_of == run_id and queues.held == [other]
    live = submit(dlq_client)
    assert post(dlq_client, "/console/dead-letters/replay", writer, csrf=writer["csrf"], run_id=live).status_code == 409


def test_replaying_all_that_match_asks_first_with_the_count(dlq_client, queues):
    first, second = dead_letter(dlq_client, queues), dead_letter(dlq_client, queues)
    writer = sign_in(dlq_client, "runs:read,runs:write")
    asked = post(dlq_client, "/console/dead-letters/replay", writer, csrf=writer["csrf"], all="1", processor="echo", since="")
    assert asked.status_code == 200 and "Replay 2 dead-lettered run(s) of echo?" in asked.text
    assert 'name="confirm" value="yes"' in asked.text and queues.held == [first, second]  # nothing done yet
    done = post(dlq_client, "/console/dead-letters/replay", writer, csrf=writer["csrf"], all="1", processor="echo", since="", confirm="yes")
    assert done.status_code == 200 and "Replayed 2 run(s)" in done.text and "2 dead letter(s) dropped" in done.text
    assert queues.held == [] and {run.replay_of for run in run_store.list_runs(limit=10)[0]} >= {first, second}


def test_purging_drops_only_the_tenants_dead_letters_for_an_admin_key_after_a_confirmation(dlq_client, queues):
    dead_letter(dlq_client, queues)
    theirs = dead_letter(dlq_client, queues, headers=key_headers("other"))
    writer = sign_in(dlq_client, "runs:read,runs:write")
    refused = post(dlq_client, "/console/dead-letters/purge", writer, csrf=writer["csrf"], confirm="yes")
    assert refused.status_code == 403 and len(queues.held) == 2
    admin = sign_in(dlq_client)
    asked = post(dlq_client, "/console/dead-letters/purge", admin, csrf=admin["csrf"])
    assert "dead letters of your 1 dead-lettered run(s)" in asked.text and len(queues.held) == 2
    done = post(dlq_client, "/console/dead-letters/purge", admin, csrf=admin["csrf"], confirm="yes")
    assert "Deleted 1 dead letter(s)" in done.text and queues.held == [theirs]  # another tenant's message stays


def make_schedule(client, headers=None, **fields) -> str:
    body = {"name": "nightly", "cron": "30 2 * * 1-5", "timezone": "Europe/Paris", "processor": "echo", "payload": {"x": 1}, **fields}
    made = client.simulate_post("/v1/schedules", json=body, headers=headers)
    assert made.status_code == 201, made.text
    return made.json["id"]


def test_schedules_show_cron_in_words_and_as_written_with_their_fire_records(client):
    schedule_id = make_schedule(client)
    theirs = make_schedule(client, headers=key_headers("other"), name="theirs")
    session = sign_in(client, "runs:read")
    listed = client.simulate_get("/console/schedules", cookies=cookies_of(session))
    assert "At 02:30, Monday through Friday" in listed.text and "<code>30 2 * * 1-5</code>" in listed.text
    assert "Europe/Paris" in listed.text and "theirs" not in listed.text
    page = client.simulate_get(f"/console/schedules/{schedule_id}", cookies=cookies_of(session))
    assert page.status_code == 200 and "No fire yet." in page.text
    assert "Pause</button>" not in page.text and "Trigger now</button>" not in page.text  # runs:read only
    assert post(client, f"/console/schedules/{schedule_id}/trigger", session, csrf=session["csrf"]).status_code == 403
    assert client.simulate_get(f"/console/schedules/{theirs}", cookies=cookies_of(session)).status_code == 404


def test_a_schedule_is_paused_resumed_and_triggered_from_its_page(client):
    schedule_id = make_schedule(client)
    session = sign_in(client, "runs:read,schedules:write")
    assert post(client, f"/console/schedules/{schedule_id}/pause", session, csrf=session["csrf"]).status_code == 303
    page = client.simulate_get(f"/console/schedules/{schedule_id}", cookies=cookies_of(session))
    assert 'id="schedule-state">paused' in page.text and "Resume</button>" in page.text
    assert client.simulate_get(f"/v1/schedules/{schedule_id}").json["paused"] is True
    assert post(client, f"/console/schedules/{schedule_id}/resume", session, csrf=session["csrf"]).status_code == 303
    assert client.simulate_get(f"/v1/schedules/{schedule_id}").json["paused"] is False
    triggered = post(client, f"/console/schedules/{schedule_id}/trigger", session, csrf=session["csrf"])
    assert triggered.status_code == 303
    run_id = triggered.headers["Location"].rsplit("/", 1)[1]
    assert run_store.get_run(run_id).schedule_id == schedule_id
    page = client.simulate_get(f"/console/schedules/{schedule_id}", cookies=cookies_of(session))
    assert "triggered by hand" in page.text and f'href="/console/runs/{run_id}"' in page.text
    audit = client.simulate_get("/v1/audit").json["items"]
    assert {"schedule.pause", "schedule.resume"} <= {entry["action"] for entry in audit}  # audited as the API's changes


def test_processors_are_shown_read_only_with_their_pins_and_limits(client):
    session = sign_in(client, "runs:read")
    page = client.simulate_get("/console/processors", cookies=cookies_of(session))
    assert page.status_code == 200 and "<td>echo</td>" in page.text and "@sha256:" in page.text
    assert "<form" not in page.text.split("<main", 1)[1]  # nothing to change here


def test_the_audit_log_is_for_admin_keys_and_filters_by_action(client):
    make_schedule(client)
    reader = sign_in(client, "runs:read")
    assert client.simulate_get("/console/audit", cookies=cookies_of(reader)).status_code == 403
    assert 'href="/console/audit"' not in client.simulate_get("/console/runs", cookies=cookies_of(reader)).text
    admin = sign_in(client)
    page = client.simulate_get("/console/audit", params={"action": "schedule"}, cookies=cookies_of(admin))
    assert page.status_code == 200 and "<td>schedule.create</td>" in page.text and "<td>key.create</td>" not in page.text


def test_the_overview_counts_the_tenants_runs_and_shows_admins_the_whole_system(dlq_client, queues):
    for priority in ("high", "high", "low"):
        assert dlq_client.simulate_post("/v1/runs", json={"processor": "echo", "priority": priority}).status_code == 201
    dead_letter(dlq_client, queues)
    submit(dlq_client, headers=key_headers("other"))
    reader = sign_in(dlq_client, "runs:read")
    page = dlq_client.simulate_get("/console/overview", cookies=cookies_of(reader))
    assert 'id="queued-high">2<' in page.text and 'id="queued-low">1<' in page.text and 'id="queued-normal">0<' in page.text
    assert 'id="last-hour-queued">3<' in page.text and 'id="last-hour-dead_letter">1<' in page.text  # not the other tenant's
    assert 'id="dead-letters">1<' in page.text and "The whole system" not in page.text
    admin = sign_in(dlq_client)
    page = dlq_client.simulate_get("/console/overview", cookies=cookies_of(admin))
    assert "Messages in runs</th><td>7<" in page.text and "Messages in runs.XQ</th><td>1<" in page.text
    assert "Consumers of runs (worker processes)</th><td>2<" in page.text


def test_a_sign_in_posted_without_its_cookie_is_refused(client):
    """Another site can post the form but never send its SameSite=Strict cookie: an empty token is no token."""
    _, key = create_key("default", "admin", actor="test")
    for body in (f"key={key}&csrf=", f"key={key}"):
        done = client.simulate_post("/console/sign-in", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert done.status_code == 403 and "dockyard_session" not in done.cookies
    assert ConsoleSession.select().count() == 0


def test_bad_form_input_is_a_clear_refusal_never_a_crash(client):
    form = client.simulate_get("/console/sign-in")
    cookie = {"dockyard_sign_in": form.cookies["dockyard_sign_in"].value}
    token = CSRF.search(form.text).group(1)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    huge = client.simulate_post("/console/sign-in", body="key=" + "x" * 20_000, headers=headers, cookies=cookie)
    assert huge.status_code == 413
    nul = client.simulate_post("/console/sign-in", body=f"csrf={token}&key=a%00b", headers=headers, cookies=cookie)
    assert nul.status_code == 400 and "NUL" in nul.text
    _, key = create_key("default", "admin", actor="test")
    for landing in ("next=/console/a&next=/console/b", "next=/console/%0d%0aSet-Cookie:x=1"):
        done = client.simulate_post("/console/sign-in", body=f"csrf={token}&key={key}&{landing}", headers=headers, cookies=cookie)
        assert done.status_code == 303 and "\r" not in done.headers["Location"] and "\n" not in done.headers["Location"]
    session = sign_in(client)
    for since in ("0001-01-01T00:00+01:00", "9999-12-31T23:59-01:00"):
        out_of_range = client.simulate_get("/console/runs", params={"since": since}, cookies=cookies_of(session))
        assert out_of_range.status_code == 422 and "since" in out_of_range.text
