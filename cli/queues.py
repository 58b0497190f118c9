"""`dockyard queue` and `dockyard dlq`: the run queue on RabbitMQ and its dead-lettered runs."""

from __future__ import annotations

import argparse
import sys

from cli.parsing import NOT_FOUND, Progress, add_json_option, command_group, print_items, since_time
from storage.errors import NotFound


def register(sub) -> None:
    qsub = command_group(sub, "queue", "the run queue on RabbitMQ")
    declare = qsub.add_parser("declare", help="declare the run queue with these settings' arguments (priorities, length limit)")
    declare.add_argument(
        "--recreate-if-empty",
        action="store_true",
        help="if it exists with other arguments and holds no message, delete and declare it anew",
    )
    declare.set_defaults(handler=declare_queue)

    dsub = command_group(
        sub, "dlq", "dead-lettered runs and their messages in the queue's dead-letter queue (<queue>.XQ)", needs_database=True
    )
    dlist = dsub.add_parser("list", help="list runs that ended dead_letter, newest first (from the database)")
    dlist.add_argument("--processor", help="only this processor's runs")
    dlist.add_argument(
        "--since", type=since_time, help="only runs dead-lettered at or after this time: ago (15m, 1h, 7d) or ISO 8601 (UTC)"
    )
    add_json_option(dlist)
    dlist.set_defaults(handler=list_dead_letters)
    peek = dsub.add_parser("peek", help="show the messages in the dead-letter queue without consuming them")
    peek.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    peek.set_defaults(handler=peek_dead_letters)
    replay = dsub.add_parser(
        "replay",
        help="replay dead-lettered runs (once each; refused, as by the API, if their processor is now disabled or gone) "
        "and drop their dead letters",
    )
    replay.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="runs to replay")
    replay.add_argument("--all", action="store_true", help="every dead-lettered run (with --processor: of that processor)")
    replay.add_argument("--processor", help="with --all: only this processor's runs")
    replay.set_defaults(handler=replay_dead_letters)
    purge = dsub.add_parser("purge", help="delete every message in the dead-letter queue (the runs keep their history)")
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(handler=purge_dead_letters)


def declare_queue(args: argparse.Namespace, context) -> int:
    from actors.queues import QueueMismatch, create_queue_admin, level_queues

    settings = context.settings
    try:
        outcome = create_queue_admin(settings).ensure(settings.default_queue, recreate_if_empty=args.recreate_if_empty)
    except QueueMismatch as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        return 1
    queue = settings.default_queue
    names = f"{', '.join(level_queues(queue))}, their .DQ and {queue}.XQ"
    anew = "" if outcome == "ok" else "; those that were empty with other arguments were deleted and declared anew"
    print(f"run queue {queue!r} declared: {names} ({settings.queue_type}, max length {settings.queue_max_length} each){anew}")
    return 0


def list_dead_letters(args: argparse.Namespace, context) -> int:
    from storage import runs as run_store

    runs = run_store.dead_lettered_runs(processor=args.processor, since=args.since)
    if args.json:
        fields = ("id", "processor", "finished_at", "exit_code", "error_reason", "error_message")
        print_items([{name: getattr(run, name) for name in fields} for run in runs])
        return 0
    for run in runs:
        print(f"{run.id}  {run.processor:16} {run.finished_at:%Y-%m-%dT%H:%M:%SZ}  exit {run.exit_code}  {run.error_message or ''}")
    return 0


def peek_dead_letters(args: argparse.Namespace, context) -> int:
    from actors.queues import create_queue_admin
    from storage import runs as run_store

    for letter in create_queue_admin(context.settings).dead_letters(context.settings.default_queue).peek(args.limit):
        when = f"{letter.dead_lettered_at:%Y-%m-%dT%H:%M:%SZ}" if letter.dead_lettered_at else "?"
        state = "?"
        if letter.run_id:
            try:
                state = run_store.get_run(letter.run_id).state
            except NotFound:
                state = "unknown run"
        print(f"{letter.run_id or '(not a run)'}  dead-lettered {when} ({letter.reason})  run is {state}")
    return 0


def purge_dead_letters(args: argparse.Namespace, context) -> int:
    from actors.queues import create_queue_admin

    dlq = create_queue_admin(context.settings).dead_letters(context.settings.default_queue)
    count = dlq.count()
    if not args.yes:
        answer = input(f"Delete {count} message(s) from {dlq.name}? The runs keep their history. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    print(f"deleted {dlq.purge()} message(s) from {dlq.name}")
    return 0


def replay_dead_letters(args: argparse.Namespace, context) -> int:
    """Replay through the dispatcher, as the API does: a run the API would refuse is refused here too."""
    from dramatiq.common import xq_name

    from actors.dispatch import create_dispatcher
    from actors.queues import QueueAdmin, replay_dead_lettered
    from storage import runs as run_store
    from storage.run_states import RunState

    if args.all == bool(args.run_ids):
        print("dockyard: dlq replay: give run ids or --all", file=sys.stderr)
        return 2
    if args.all:
        originals = run_store.dead_lettered_runs(processor=args.processor, limit=1_000_000)
    else:
        originals = []
        for run_id in args.run_ids:
            try:
                run = run_store.get_run(run_id)
            except NotFound:
                print(f"dockyard: run {run_id} not found", file=sys.stderr)
                return NOT_FOUND
            if run.state != RunState.DEAD_LETTER:
                print(f"dockyard: run {run_id} is {run.state}, not dead_letter", file=sys.stderr)
                return 2
            originals.append(run)
    dispatcher = create_dispatcher(context.settings)
    try:
        progress = Progress("replayed", len(originals))
        report = replay_dead_lettered(dispatcher, QueueAdmin(dispatcher.broker), originals, progress)
        progress.done()
    finally:
        dispatcher.close()
    for original, refusal in report.refused:
        print(f"dockyard: run {original.id} not replayed: {refusal.field}: {refusal.message}", file=sys.stderr)
    for original, replay, created in report.replayed:
        print(f"{original.id} {'replayed as' if created else 'was already replayed as'} {replay.id}")
    queues = ", ".join(sorted({xq_name(original.queue) for original, _, _ in report.replayed})) or "the dead-letter queue"
    print(f"replayed {len(report.replayed)} run(s); removed {report.removed} dead letter(s) from {queues}")
    if report.refused:
        print(f"dockyard: {len(report.refused)} run(s) refused; their dead letters stay", file=sys.stderr)
        return 1
    return 0
