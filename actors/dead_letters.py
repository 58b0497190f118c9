"""Reading and clearing a run queue's dead-letter queue (`<queue>.XQ`) on RabbitMQ.

Dramatiq's broker has no API for this, so it is done with pika on a
connection of its own. Peeking takes messages without acknowledging them and
closes the channel, so RabbitMQ puts them all back.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

import pika
from dramatiq.common import xq_name


@dataclass(frozen=True)
class DeadLetter:
    run_id: str | None
    message_id: str
    dead_lettered_at: dt.datetime | None
    reason: str | None
    body: dict


def _decode(body: bytes, properties) -> DeadLetter:
    try:
        message = json.loads(body)
    except ValueError:
        message = {}
    args = message.get("args") or [None]
    deaths = (properties.headers or {}).get("x-death") or []
    death = deaths[0] if deaths else {}
    when = death.get("time")
    return DeadLetter(
        run_id=args[0] if isinstance(args[0], str) else None,
        message_id=message.get("message_id", "?"),
        dead_lettered_at=when.replace(tzinfo=None) if isinstance(when, dt.datetime) else None,
        reason=death.get("reason"),
        body=message,
    )


class DeadLetterQueue:
    def __init__(self, connect: Callable[[], pika.BlockingConnection], queue: str):
        self.connect = connect
        self.name = xq_name(queue)

    def _channel(self):
        connection = self.connect()
        return connection, connection.channel()

    def count(self) -> int:
        connection, channel = self._channel()
        try:
            return channel.queue_declare(self.name, passive=True).method.message_count
        finally:
            connection.close()

    def peek(self, limit: int = 100) -> list[DeadLetter]:
        """Up to `limit` dead letters, oldest first, all left in the queue."""
        connection, channel = self._channel()
        try:
            letters = []
            while len(letters) < limit:
                method, properties, body = channel.basic_get(self.name)
                if method is None:
                    break
                letters.append(_decode(body, properties))
            return letters
        finally:
            connection.close()  # nothing acknowledged: RabbitMQ requeues them all

    def remove(self, run_ids: set[str]) -> int:
        """Acknowledge (delete) the dead letters of these runs; leave the others; return how many were removed."""
        connection, channel = self._channel()
        removed = 0
        try:
            count = channel.queue_declare(self.name, passive=True).method.message_count
            for _ in range(count):
                method, properties, body = channel.basic_get(self.name)
                if method is None:
                    break
                if _decode(body, properties).run_id in run_ids:
                    channel.basic_ack(method.delivery_tag)
                    removed += 1
        finally:
            connection.close()  # the unacknowledged rest goes back
        return removed

    def purge(self) -> int:
        """Delete every dead letter; return how many there were."""
        connection, channel = self._channel()
        try:
            return channel.queue_purge(self.name).method.message_count
        finally:
            connection.close()
