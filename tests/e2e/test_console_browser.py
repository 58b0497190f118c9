"""The web console in a real browser (Debian's chromium, headless, driven by Selenium) against the Procfile's
processes on Postgres: sign in, watch a run live, cancel and replay from a run's page, and the security cases (a
processor's markup does not run, a read-only key has no actions, another tenant's run is not found, a form
without its CSRF token is refused). A failing test leaves a screenshot and the page's source in
.dockyard/test-artifacts/."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import api_session, cli_key, wait_until
from tests.e2e.test_observability import register_flaky
from tests.e2e.test_procfile import BIN, ROOT, procfile_stack
from tests.integration.conftest import fresh_postgres_database

ARTIFACTS = ROOT / ".dockyard" / "test-artifacts"
# This machine's network is closed: nothing the browser would fetch or update on its own.
CHROMIUM_ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The Procfile's processes on Postgres."""
    directory = tmp_path_factory.mktemp("console")
    with fresh_postgres_database() as url, procfile_stack(directory, {"DOCKYARD_DATABASE_URL": url}) as stack:
        yield stack


@pytest.fixture(scope="module")
def chromium():
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or pytest.fail("chromium is not installed: run `make test`")
    for argument in CHROMIUM_ARGUMENTS:
        options.add_argument(argument)
    driver_path = shutil.which("chromedriver") or pytest.fail("chromedriver is not installed: run `make test`")
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    yield driver
    driver.quit()


@pytest.fixture
def browser(chromium, request):
    """The browser, signed out and on a blank page; on failure, the page's screenshot and source are kept."""
    chromium.delete_all_cookies()
    chromium.get("about:blank")
    yield chromium
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        chromium.save_screenshot(str(ARTIFACTS / f"{request.node.name}.png"))
        (ARTIFACTS / f"{request.node.name}.html").write_text(chromium.page_source)


def sign_in(browser, stack, *, tenant: str = "default", scopes: str = "admin") -> str:
    """Sign in through the form with a new key; return the key."""
    key = cli_key(stack["env"], tenant=tenant, scopes=scopes)
    browser.get(f"{stack['base']}/console/runs")
    assert "/console/sign-in" in browser.current_url  # sent to sign in first
    browser.find_element(By.ID, "key").send_keys(key)
    browser.find_element(By.CSS_SELECTOR, "form.sign-in button").click()
    wait(browser).until(expected_conditions.url_contains("/console/runs"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Runs"
    return key


def wait(browser, seconds: float = 30) -> WebDriverWait:
    # A run's page reloads itself when the run ends: an element read just then may be gone; read it again.
    return WebDriverWait(browser, seconds, poll_frequency=0.2, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))


def press(browser, label: str, within=None) -> None:
    """Press the button labelled `label` (of `within`, by default the page) once the page has loaded, and wait
    until the browser has left the page (the form was sent)."""
    wait(browser).until(lambda b: b.execute_script("return document.readyState") == "complete")
    button = (within or browser).find_element(By.XPATH, f".//button[text()='{label}']")
    wait(browser).until(expected_conditions.element_to_be_clickable(button))
    button.click()
    wait(browser).until(lambda _: gone(button))


def gone(element) -> bool:
    """Whether `element` has left the document (its page was replaced): chromedriver says so with a stale
    reference or, mid-navigation, with a node that "does not belong to the document"."""
    try:
        element.is_enabled()
    except WebDriverException:
        return True
    return False


def submit(stack, body: dict, key: str | None = None) -> str:
    http = api_session(key) if key else stack["http"]
    made = http.post(f"{stack['base']}/v1/runs", json=body, timeout=10)
    assert made.status_code == 201, made.text
    return made.json()["id"]


def state_of(stack, run_id: str) -> str:
    return stack["http"].get(f"{stack['base']}/v1/runs/{run_id}", timeout=10).json()["state"]


def badge(browser) -> str:
    return browser.find_element(By.ID, "run-state").text


def test_a_run_is_watched_live_from_queued_to_succeeded(stack, browser):
    sign_in(browser, stack)
    run_id = submit(stack, {"processor": "sleep", "payload": {"seconds": 5}})
    browser.get(f"{stack['base']}/console/runs/{run_id}")
    assert badge(browser) in ("queued", "running")
    wait(browser).until(lambda b: badge(b) == "running")
    # Its log lines appear while it still runs, without reloading the page.
    wait(browser).until(lambda b: "slept 1 of 5 seconds" in b.find_element(By.ID, "logs").text)
    assert badge(browser) == "running"
    wait(browser).until(lambda b: badge(b) == "succeeded")
    wait(browser).until(lambda b: '"slept_seconds": 5' in b.find_element(By.CSS_SELECTOR, "pre.json").text)  # reloaded: the result
    timeline = browser.find_element(By.CSS_SELECTOR, "ol.timeline").text
    assert "running" in timeline and "succeeded" in timeline
    browser.get(f"{stack['base']}/console/runs?state=succeeded")
    assert run_id in browser.find_element(By.CSS_SELECTOR, "table.runs").text


def test_the_overview_shows_an_admin_the_broker_and_the_workers(stack, browser):
    sign_in(browser, stack)
    browser.get(f"{stack['base']}/console/overview")
    text = browser.find_element(By.TAG_NAME, "main").text
    assert f"Consumers of {stack['queue']} (worker processes) 1" in text  # the worker's process, from RabbitMQ
    assert f"Messages in {stack['queue']}.XQ" in text and "Runs running now" in text


def test_a_running_run_is_cancelled_from_its_page(stack, browser):
    sign_in(browser, stack)
    run_id = submit(stack, {"processor": "sleep", "payload": {"seconds": 60}})
    browser.get(f"{stack['base']}/console/runs/{run_id}")
    wait(browser).until(lambda b: badge(b) == "running")
    press(browser, "Cancel")
    wait(browser).until(lambda b: badge(b) == "cancelled")
    assert state_of(stack, run_id) == "cancelled"
    assert not browser.find_elements(By.XPATH, "//button[text()='Cancel']")


def test_a_failed_run_is_replayed_from_its_page(stack, browser):
    sign_in(browser, stack)
    run_id = submit(stack, {"processor": "fail", "payload": {"exit_code": 4}})
    wait_until(lambda: state_of(stack, run_id) == "failed", timeout=60, what="the run to fail")
    browser.get(f"{stack['base']}/console/runs/{run_id}")
    press(browser, "Replay")
    wait(browser).until(lambda b: f"/console/runs/{run_id}" not in b.current_url)
    replay_id = browser.current_url.rsplit("/", 1)[1]
    assert browser.find_element(By.LINK_TEXT, run_id).get_attribute("href").endswith(f"/console/runs/{run_id}")
    assert stack["http"].get(f"{stack['base']}/v1/runs/{replay_id}", timeout=10).json()["replay_of"] == run_id


def test_a_dead_lettered_run_is_replayed_from_the_dead_letters_page(stack, browser):
    register_flaky(stack)
    run_id = submit(stack, {"processor": "flaky", "payload": {"exit_code": 3}})
    wait_until(lambda: state_of(stack, run_id) == "dead_letter", timeout=90, what="the run to be dead-lettered")
    sign_in(browser, stack)
    browser.get(f"{stack['base']}/console/dead-letters?processor=flaky")
    row = browser.find_element(By.XPATH, f"//tr[td/a[text()='{run_id}']]")
    assert "retries" in row.text or "exit" in row.text  # why it was dead-lettered
    press(browser, "Replay", within=row)
    wait(browser).until(lambda b: "/console/runs/" in b.current_url)
    replay_id = browser.current_url.rsplit("/", 1)[1]
    assert stack["http"].get(f"{stack['base']}/v1/runs/{replay_id}", timeout=10).json()["replay_of"] == run_id
    peeked = subprocess.run([BIN / "dockyard", "dlq", "peek"], env=stack["env"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert peeked.returncode == 0 and run_id not in peeked.stdout  # its dead letter was dropped


def test_a_schedule_is_paused_and_triggered_from_its_page(stack, browser):
    body = {"name": "console-nightly", "cron": "0 3 * * *", "timezone": "UTC", "processor": "echo", "payload": {"from": "schedule"}}
    made = stack["http"].post(f"{stack['base']}/v1/schedules", json=body, timeout=10)
    assert made.status_code == 201, made.text
    schedule_id = made.json()["id"]
    sign_in(browser, stack)
    browser.get(f"{stack['base']}/console/schedules")
    browser.find_element(By.LINK_TEXT, "console-nightly").click()
    wait(browser).until(lambda b: "At 03:00" in b.find_element(By.TAG_NAME, "main").text)
    press(browser, "Pause")
    wait(browser).until(lambda b: b.find_element(By.ID, "schedule-state").text == "paused")
    assert stack["http"].get(f"{stack['base']}/v1/schedules/{schedule_id}", timeout=10).json()["paused"] is True
    press(browser, "Trigger now")
    wait(browser).until(lambda b: "/console/runs/" in b.current_url)
    wait(browser).until(lambda b: badge(b) == "succeeded")
    browser.get(f"{stack['base']}/console/schedules/{schedule_id}")
    assert "triggered by hand" in browser.find_element(By.CSS_SELECTOR, "table.fires").text


def test_a_processors_markup_is_shown_as_text_and_never_runs(stack, browser):
    sign_in(browser, stack)
    hostile = "<script>alert('xss')</script><img src=x onerror=\"alert('img')\"><b>bold</b>"
    run_id = submit(stack, {"processor": "echo", "payload": {"html": hostile}})
    wait_until(lambda: state_of(stack, run_id) == "succeeded", timeout=60, what="the echo run")
    browser.get(f"{stack['base']}/console/runs/{run_id}")
    with pytest.raises(TimeoutException):
        WebDriverWait(browser, 2).until(expected_conditions.alert_is_present())  # no script of the payload's ran
    assert "<script>alert('xss')</script>" in browser.find_element(By.CSS_SELECTOR, "pre.json").text  # shown as text
    assert not browser.find_elements(By.CSS_SELECTOR, "main b, main img, main script")  # and no element made of it


def test_a_read_only_key_has_no_actions_and_sees_only_its_tenant(stack, browser):
    theirs = submit(stack, {"processor": "sleep", "payload": {"seconds": 30}})
    viewer_key = sign_in(browser, stack, tenant="viewer", scopes="runs:read")
    other_tenants_page = f"{stack['base']}/console/runs/{theirs}"
    browser.get(other_tenants_page)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
    writer = cli_key(stack["env"], tenant="viewer", scopes="runs:write")
    mine = submit(stack, {"processor": "sleep", "payload": {"seconds": 30}}, key=writer)
    browser.get(f"{stack['base']}/console/runs/{mine}")
    assert badge(browser) in ("queued", "running")
    assert not browser.find_elements(By.XPATH, "//button[text()='Cancel' or text()='Replay']")
    # A cancel posted anyway, with the session's CSRF token, is refused by scope.
    forge_post(browser, f"/console/runs/{mine}/cancel", with_token=True)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Forbidden" and "runs:write" in browser.page_source
    assert state_of(stack, theirs) != "cancelled" and api_session(viewer_key).get(f"{stack['base']}/v1/runs/{mine}", timeout=10).ok
    for run_id in (theirs, mine):
        stack["http"].post(f"{stack['base']}/v1/runs/{run_id}/cancel", timeout=10)  # not left running


def test_a_form_without_its_csrf_token_is_refused_and_signing_out_ends_the_session(stack, browser):
    sign_in(browser, stack)
    run_id = submit(stack, {"processor": "sleep", "payload": {"seconds": 30}})
    browser.get(f"{stack['base']}/console/runs/{run_id}")
    forge_post(browser, f"/console/runs/{run_id}/cancel", with_token=False)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Forbidden" and "CSRF" in browser.page_source
    assert state_of(stack, run_id) != "cancelled"
    browser.get(f"{stack['base']}/console/runs/{run_id}")
    press(browser, "Sign out")
    wait(browser).until(expected_conditions.url_contains("/console/sign-in"))
    browser.get(f"{stack['base']}/console/runs/{run_id}")
    assert "/console/sign-in" in browser.current_url
    stack["http"].post(f"{stack['base']}/v1/runs/{run_id}/cancel", timeout=10)


def forge_post(browser, path: str, *, with_token: bool) -> None:
    """POST a form the page did not offer (as a crafted request would), with or without the page's CSRF token."""
    browser.execute_script(
        """
        const [path, withToken] = arguments;
        const form = document.createElement("form");
        form.method = "post";
        form.action = path;
        const token = document.querySelector("input[name=csrf]");
        if (withToken && token) form.appendChild(token.cloneNode());
        document.body.appendChild(form);
        form.submit();
        """,
        path,
        with_token,
    )
    wait(browser).until(lambda b: b.find_element(By.TAG_NAME, "h1").text in ("Forbidden", "Not found"))
