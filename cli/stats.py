"""`dockyard stats`: one screen of how Dockyard is doing, read from RabbitMQ and the database."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from cli.parsing import PRIORITIES, RUN_STATES, UNREACHABLE, add_json_option

WINDOW = dt.timedelta(hours=1)


def register(sub) -> None:
    stats = sub.add_parser(
        "stats",
        help="queue depth by priority, consumers, dead letters, runs by state (now, and ended in the last hour), the oldest "
        "queued run, workers",
    )
    add_json_option(stats, help="print one JSON document instead of text")
    stats.set_defaults(handler=show_stats, needs_database=True)


def gather(settings) -> dict:
    """What `dockyard stats` shows, as one document."""
    from dramatiq.common import dq_name, xq_name

    from actors.queues import create_queue_admin, level_queues
    from storage import runs as run_store
    from storage import workers
    from storage.models import utcnow

    queue, now = settings.default_queue, utcnow()
    admin = create_queue_admin(settings)
    depths = admin.depths(queue)
    consumers = admin.consumers_by_level(queue)
    waiting = run_store.queued_by_priority()
    levels = {}
    for priority, name in zip(reversed(PRIORITIES), level_queues(queue), strict=True):  # highest first
        count, oldest = waiting.get(priority, (0, None))
        levels[priority] = {
            "queue": name,
            "ready": depths[name],
            "delayed": depths[dq_name(name)],
            "consumers": consumers[name],
            "queued_runs": count,
            "oldest_queued_seconds": round((now - oldest).total_seconds(), 1) if oldest else None,
        }
    live = workers.count_by_state(now)
    return {
        "queue": queue,
        "queue_type": settings.queue_type,
        "levels": levels,
        "dead_letters": {"queue": xq_name(queue), "messages": depths[xq_name(queue)]},
        "runs_now": {state: run_store.count_runs(state) for state in ("queued", "running", "retrying")},
        "ended_last_hour": {state: n for state, n in sorted(run_store.ended_since(now - WINDOW).items())},
        "workers": {state.value: n for state, n in live.items()},
    }


def show_stats(args: argparse.Namespace, context) -> int:
    try:
        stats = gather(context.settings)
    except Exception as exc:  # the broker (or the database) did not answer: say which, and how
        print(f"dockyard: stats: {type(exc).__name__}: {exc}", file=sys.stderr)
        return UNREACHABLE
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(f"run queue {stats['queue']!r} ({stats['queue_type']} queues)")
    print(f"  {'PRIORITY':10} {'READY':>7} {'DELAYED':>8} {'CONSUMERS':>10} {'QUEUED RUNS':>12} {'OLDEST':>9}")
    for priority, level in stats["levels"].items():
        oldest = "-" if level["oldest_queued_seconds"] is None else f"{level['oldest_queued_seconds']:.0f}s"
        print(f"  {priority:10} {level['ready']:>7} {level['delayed']:>8} {level['consumers']:>10} {level['queued_runs']:>12} {oldest:>9}")
    dead = stats["dead_letters"]
    print(f"dead letters: {dead['messages']} in {dead['queue']}")
    print("runs now:     " + ", ".join(f"{state} {n}" for state, n in stats["runs_now"].items()))
    ended = [f"{state} {stats['ended_last_hour'].get(state, 0)}" for state in RUN_STATES if state not in stats["runs_now"]]
    print("last hour:    ended " + ", ".join(ended))
    print("workers:      " + ", ".join(f"{state} {n}" for state, n in stats["workers"].items()))
    return 0
