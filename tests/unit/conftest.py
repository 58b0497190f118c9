"""Fixtures of the API unit tests: falcon's TestClient on SQLite and dramatiq's StubBroker."""

import falcon.testing
import pytest
from dramatiq.brokers.stub import StubBroker

from actors.dispatch import Dispatcher
from tests.conftest import key_headers
from tests.storage_cases import make_processor
from web.app import create_app


@pytest.fixture
def broker():
    broker = StubBroker()
    broker.declare_queue("runs")
    yield broker
    broker.close()


@pytest.fixture
def dispatcher(broker):
    dispatcher = Dispatcher(broker)
    yield dispatcher
    dispatcher.close()


@pytest.fixture
def client(settings, sqlite_db, dispatcher):
    """The API with one registered processor, `echo`, sending an admin key of the tenant "default"."""
    make_processor("echo")
    return falcon.testing.TestClient(create_app(settings, db=sqlite_db, dispatcher=dispatcher), headers=key_headers())
