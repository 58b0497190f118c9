"""`dockyard workers list`: the worker processes that reported in, read from the database."""

from __future__ import annotations

import argparse

from cli.parsing import add_json_option, command_group, print_items


def register(sub) -> None:
    wsub = command_group(sub, "workers", "the worker processes that report in (from the database)", needs_database=True)
    wlist = wsub.add_parser("list", help="live and lost workers, by name: a worker silent for 3 heartbeats is lost")
    wlist.add_argument("--all", action="store_true", help="also the workers that stopped (kept for a day)")
    add_json_option(wlist)
    wlist.set_defaults(handler=list_workers)


def _ago(seconds: float) -> str:
    return f"{seconds:.0f}s ago" if seconds < 120 else f"{seconds / 60:.0f}m ago" if seconds < 7200 else f"{seconds / 3600:.0f}h ago"


def list_workers(args: argparse.Namespace, context) -> int:
    from storage import workers
    from storage.models import utcnow

    now = utcnow()
    rows = workers.list_workers(include_gone=args.all, now=now)
    if args.json:
        print_items([{**w.__data__, "state": state.value} for w, state in rows])
        return 0
    print(f"{'NAME':28} {'STATE':8} {'BUSY':>9} {'LAST SEEN':10} {'STARTED':20} {'VERSION':8} {'HOST':20} {'BROKER':21} ENGINE")
    for w, state in rows:
        busy = f"{w.busy}/{w.threads}"
        engine = w.engine + (f" ({w.engine_name})" if w.engine_name else "")
        seen = _ago((now - w.last_seen_at).total_seconds())
        started = f"{w.started_at:%Y-%m-%d %H:%M:%SZ}"
        print(f"{w.name:28} {state:8} {busy:>9} {seen:10} {started:20} {w.version:8} {w.host:20} {w.broker_node or '-':21} {engine}")
    live = sum(1 for _, s in rows if s is workers.WorkerState.LIVE)
    print(f"{live} live of {len(rows)} shown")
    return 0
