"""Schemathesis against /openapi.json: whatever it sends, no 5xx and no response the document does not describe.

Schemathesis sends valid and invalid requests (both generation modes) to
every operation. Unknown query parameters are ignored by the API, as HTTP
APIs commonly do, so its negative_data_rejection check is not asked for.

The app runs in-process on Postgres (the production database: it refuses
things SQLite takes, such as NUL characters) with dramatiq's StubBroker,
under an admin key, with a processor, a schedule and a run in place so that
reads and writes of existing things are reached too.
"""

from __future__ import annotations

import os

import falcon.testing
import pytest
import schemathesis
from dramatiq.brokers.stub import StubBroker
from hypothesis import HealthCheck, settings

from actors.dispatch import Dispatcher
from settings import Settings
from storage.api_keys import create_key
from storage.database import open_database
from storage.migrations import migrate
from tests.conftest import stub_run_queue
from tests.integration.conftest import fresh_postgres_database
from tests.storage_cases import make_processor
from web.app import create_app
from web.openapi import build_document, secured

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]


class CurrentApp:
    """The WSGI app under test, set by the fixture once its database exists (the schema is made at import)."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


CURRENT = CurrentApp()
schema = schemathesis.openapi.from_dict(secured(build_document()))
schema.app = CURRENT


@pytest.fixture(scope="module")
def fuzzed():
    with fresh_postgres_database() as url:
        db = open_database(url, pool_size=2)
        migrate(db)
        try:
            yield from _serve(db)
        finally:
            db.close_all()


def _serve(db):
    make_processor("echo")
    broker = StubBroker()
    stub_run_queue(broker)
    dispatcher = Dispatcher(broker)
    app = create_app(Settings(worker_name="fuzz", rate_limit_per_second=0), db=db, dispatcher=dispatcher)
    _, key = create_key("default", "admin", actor="test")
    client = falcon.testing.TestClient(app, headers={"Authorization": f"Bearer {key}"})
    client.simulate_post("/v1/schedules", json={"name": "nightly", "cron": "0 3 * * *", "processor": "echo"})
    client.simulate_post("/v1/runs", json={"processor": "echo"})
    assert client.simulate_get("/openapi.json").json == schema.raw_schema  # what is fuzzed is what is served
    CURRENT.app = app
    yield app, {"Authorization": f"Bearer {key}"}
    dispatcher.close()
    broker.close()


@schema.parametrize()
@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "50")), deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_every_response_fits_the_document(case, fuzzed):
    case.call_and_validate(headers=fuzzed[1], checks=CHECKS)
