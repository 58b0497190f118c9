"""`dockyard runs`: list, submit, follow, read, cancel and replay runs over the HTTP API.

Data is printed as aligned text, or with --json as JSON (one document, or one
line per event for what streams). The exit statuses are cli/api.py's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING

from cli.api import add_api_options, call_api, exit_status, refusal
from cli.parsing import FAILED, OK, PRIORITIES, RUN_STATES, add_json_option, command_group, json_value, since_time, utc_time

if TYPE_CHECKING:
    import requests

TIMEOUT_SECONDS = 30
# The states a run ends in (storage.run_states.TERMINAL; tests/unit/test_cli.py checks the copy).
TERMINAL = frozenset({"succeeded", "failed", "timed_out", "dead_letter", "cancelled"})
POLL_SECONDS = 0.5
PAGE = 200  # the API's largest page
JSON_HELP = "print JSON instead of text"


def register(sub) -> None:
    rsub = command_group(sub, "runs", "list, submit, follow, read, cancel and replay runs over the HTTP API", options=add_api_options)

    listing = rsub.add_parser("list", help="runs, newest first: a page, or every one with --all")
    listing.add_argument("--state", choices=RUN_STATES)
    listing.add_argument("--processor")
    listing.add_argument("--schedule", dest="schedule_id", help="runs fired by this schedule (its id)")
    listing.add_argument("--label", action="append", default=[], metavar="KEY:VALUE", help="runs carrying this label (repeatable)")
    listing.add_argument(
        "--since", type=since_time, help="runs created at or after this time: ago (15m, 1h, 7d) or ISO 8601 (UTC without an offset)"
    )
    listing.add_argument("--limit", type=int, default=50, help="runs per page (1-200, default 50)")
    listing.add_argument("--cursor", help="the page after this cursor (printed under the last page)")
    listing.add_argument("--all", action="store_true", help="every page, with progress on stderr")
    listing.add_argument("-q", "--quiet", action="store_true", help="only the runs' ids, one per line (for scripts)")
    add_json_option(listing, help=JSON_HELP)
    listing.set_defaults(handler=list_runs)

    submit = rsub.add_parser("submit", help="submit a run of a processor")
    submit.add_argument("processor")
    submit.add_argument("--payload", type=json_value, default={}, help="the run's payload as JSON (default {})")
    submit.add_argument("--priority", default="normal", choices=PRIORITIES)
    submit.add_argument("--timeout-seconds", type=int, help="lower the processor's time limit for this run")
    submit.add_argument(
        "--wait",
        action="store_true",
        help="follow the run until it ends: a status line on a terminal, a line per change otherwise; exit 0 only if it succeeded",
    )
    add_json_option(submit, help=JSON_HELP)
    submit.set_defaults(handler=submit_run)

    get = rsub.add_parser("get", help="show a run")
    get.add_argument("run_id")
    add_json_option(get, help=JSON_HELP)
    get.set_defaults(handler=show_run)

    logs = rsub.add_parser("logs", help="print a run's captured output")
    logs.add_argument("run_id")
    logs.add_argument("--attempt", type=int, help="only this attempt's output")
    logs.add_argument(
        "--follow", "-f", action="store_true", help="stream the output until the run ends; exit 0 if it succeeded, 1 if it ended otherwise"
    )
    logs.set_defaults(handler=print_logs)

    for action, text in (
        ("cancel", "cancel a queued, retrying or running run"),
        ("replay", "run again, as a new run, a run that ended other than succeeded"),
    ):
        command = rsub.add_parser(action, help=text)
        command.add_argument("run_id")
        add_json_option(command, help=JSON_HELP)
        command.set_defaults(handler=post_to_run)


def _when(timestamp: str | None) -> str:
    return "-" if timestamp is None else timestamp[:19].replace("T", " ")


def _took(run: dict) -> str:
    if not run.get("started_at") or not run.get("finished_at"):
        return "-"
    return f"{(utc_time(run['finished_at']) - utc_time(run['started_at'])).total_seconds():.1f}s"


ROW = "{id:32}  {state:11} {priority:8} {processor:20} {created:19}  {attempts:>8}  {took:>8}"


def _row(run: dict) -> str:
    return ROW.format(
        id=run["id"],
        state=run["state"],
        priority=run["priority"],
        processor=run["processor"],
        created=_when(run["created_at"]),
        attempts=f"{run['attempts']}/{run['max_attempts']}",
        took=_took(run),
    )


def _describe(run: dict) -> str:
    """A run as aligned `field: value` lines."""
    lines = [
        ("id", run["id"]),
        ("processor", run["processor"]),
        ("state", run["state"]),
        ("priority", run["priority"]),
        ("attempts", f"{run['attempts']} of {run['max_attempts']}"),
        ("created", _when(run["created_at"])),
        ("started", _when(run.get("started_at"))),
        ("finished", _when(run.get("finished_at"))),
        ("took", _took(run)),
    ]
    if run.get("exit_code") is not None:
        lines.append(("exit code", str(run["exit_code"])))
    if run.get("error"):
        lines.append(("error", f"{run['error']['reason']}: {run['error']['message']}"))
    if run.get("result") is not None:
        lines.append(("result", json.dumps(run["result"])))
    if run.get("labels"):
        lines.append(("labels", ", ".join(f"{k}:{v}" for k, v in run["labels"].items())))
    return "\n".join(f"{name + ':':11} {value}" for name, value in lines)


def _print_run(run: dict, as_json: bool) -> None:
    print(json.dumps(run, indent=2) if as_json else _describe(run))


def _ended_status(run: dict) -> int:
    """0 if the run succeeded, 1 if it ended otherwise."""
    return OK if run["state"] == "succeeded" else FAILED


def list_runs(args: argparse.Namespace, context) -> int:
    params = {k: v for k, v in (("state", args.state), ("processor", args.processor), ("schedule_id", args.schedule_id)) if v}
    params.update(label=args.label, limit=PAGE if args.all else args.limit)
    if args.since is not None:
        params["since"] = args.since.isoformat() + "Z"
    progress = args.all and sys.stderr.isatty()

    def fetch(http: requests.Session, base: str) -> int:
        items, cursor = [], args.cursor
        while True:
            resp = http.get(f"{base}/v1/runs", params={**params, **({"cursor": cursor} if cursor else {})}, timeout=TIMEOUT_SECONDS)
            if not resp.ok:
                return refusal(resp)
            page = resp.json()
            items += page["items"]
            cursor = page["next_cursor"]
            if progress:
                print(f"\rfetched {len(items)} runs…", end="", file=sys.stderr, flush=True)
            if not args.all or cursor is None:
                break
        if progress:
            print(file=sys.stderr)
        if args.json:
            print(json.dumps({"items": items, "next_cursor": cursor}, indent=2))
            return OK
        if args.quiet:
            print("\n".join(run["id"] for run in items), end="\n" if items else "")
            return OK
        print(
            ROW.format(
                id="ID",
                state="STATE",
                priority="PRIORITY",
                processor="PROCESSOR",
                created="CREATED (UTC)",
                attempts="ATTEMPTS",
                took="TOOK",
            )
        )
        for run in items:
            print(_row(run))
        if cursor and not args.all:
            print(f"more: --cursor {cursor}")
        return OK

    return call_api(args, context.settings, fetch, lambda status: status)


def submit_run(args: argparse.Namespace, context) -> int:
    def submit(http: requests.Session, base: str) -> int:
        body = {"processor": args.processor, "payload": args.payload, "priority": args.priority}
        if args.timeout_seconds:
            body["timeout_seconds"] = args.timeout_seconds
        resp = http.post(f"{base}/v1/runs", json=body, timeout=TIMEOUT_SECONDS)
        if resp.status_code not in (200, 201):
            return refusal(resp)
        run = resp.json()
        if not args.wait:
            _print_run(run, args.json)
            return OK
        run = _follow_state(http, f"{base}/v1/runs/{run['id']}", run, args.json)
        if run is None:
            return FAILED
        if not args.json:
            _print_run(run, False)
        return _ended_status(run)

    return call_api(args, context.settings, submit, lambda status: status)


def _follow_state(http: requests.Session, url: str, run: dict, as_json: bool) -> dict | None:
    """Poll a run until it ends, showing each change: JSON lines with `as_json`, a status line rewritten in place on a
    terminal, a plain line per change otherwise. The ended run, or None if the API stopped answering it."""
    live = sys.stdout.isatty() and not as_json
    started, shown = time.monotonic(), None
    while True:
        state = (run["state"], run["attempts"])
        if as_json and state != shown:
            print(json.dumps(run), flush=True)
        elif live:
            print(f"\rrun {run['id']}: {run['state']} (attempt {run['attempts']}) {time.monotonic() - started:5.1f}s ", end="", flush=True)
        elif state != shown:
            print(f"{time.strftime('%H:%M:%S', time.gmtime())}  run {run['id']}: {run['state']} (attempt {run['attempts']})", flush=True)
        shown = state
        if run["state"] in TERMINAL:
            if live:
                print()
            return run
        time.sleep(POLL_SECONDS)
        resp = http.get(url, timeout=TIMEOUT_SECONDS)
        if not resp.ok:
            if live:
                print()
            refusal(resp)
            return None
        run = resp.json()


def _run_answer(args: argparse.Namespace):
    """How `runs get`, `cancel` and `replay` show the API's answer: the run, or why it was refused."""

    def present(resp: requests.Response) -> int:
        if not resp.ok:
            return refusal(resp)
        _print_run(resp.json(), args.json)
        return OK

    return present


def show_run(args: argparse.Namespace, context) -> int:
    return call_api(
        args, context.settings, lambda http, base: http.get(f"{base}/v1/runs/{args.run_id}", timeout=TIMEOUT_SECONDS), _run_answer(args)
    )


def post_to_run(args: argparse.Namespace, context) -> int:
    """cancel or replay."""
    return call_api(
        args,
        context.settings,
        lambda http, base: http.post(f"{base}/v1/runs/{args.run_id}/{args.action}", timeout=TIMEOUT_SECONDS),
        _run_answer(args),
    )


def print_logs(args: argparse.Namespace, context) -> int:
    def stream(http: requests.Session, base: str) -> int:
        params = {"follow": "true"} if args.follow else {}
        if args.attempt is not None:
            params["attempt"] = args.attempt
        # The follow stream may stay quiet for long between lines: no read timeout.
        with http.get(f"{base}/v1/runs/{args.run_id}/logs", params=params, stream=True, timeout=(TIMEOUT_SECONDS, None)) as resp:
            if not resp.ok:
                return refusal(resp)
            for chunk in resp.iter_content(chunk_size=None):
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
        if not args.follow:
            return OK
        run = http.get(f"{base}/v1/runs/{args.run_id}", timeout=TIMEOUT_SECONDS)
        if not run.ok:
            return exit_status(run)
        ended = run.json()
        if ended["state"] not in TERMINAL:
            print(f"dockyard: the log stream ended while run {args.run_id} is {ended['state']}", file=sys.stderr)
            return FAILED
        print(f"dockyard: run {args.run_id} {ended['state']}", file=sys.stderr)
        return _ended_status(ended)

    return call_api(args, context.settings, stream, lambda status: status)
