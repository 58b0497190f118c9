"""Several RabbitMQ URLs: a process connects to the first node that answers, whichever it starts from, and says
which node it is on (the cluster itself, and a node lost under load: tests/chaos/test_cluster.py)."""

from __future__ import annotations

import urllib.parse

from actors.broker import create_broker
from actors.queues import QueueAdmin
from settings import Settings
from tests.conftest import required_env, unique
from tests.integration.conftest import delete_queues


def test_a_dead_node_in_the_list_is_passed_over(monkeypatch):
    live = required_env("DOCKYARD_BROKER_URL")
    parts = urllib.parse.urlsplit(live)
    dead = parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:9").geturl()  # nothing listens on port 9
    queue = unique("nodes")
    for start in (0, 1):  # each process starts from a node of its own: both orders
        monkeypatch.setattr("actors.broker.random.randrange", lambda n, start=start: start)
        broker = create_broker(Settings(broker_url=f"{dead};{live}", default_queue=queue))
        try:
            admin = QueueAdmin(broker)
            assert admin.broker_ready()
            assert admin.broker_node() == f"127.0.0.1:{parts.port}"
            assert admin.ensure(queue) == "ok" and admin.consumers(queue) == 0
        finally:
            broker.close()
    delete_queues(live, queue)
