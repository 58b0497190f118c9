"""`dockyard runs`: submit, read, cancel and replay runs over the HTTP API."""

from __future__ import annotations

import argparse
import sys
import time

import requests

from cli.api import add_api_options, call_api, show
from cli.parsing import command_group, json_value
from storage.run_states import TERMINAL
from storage.specs import Priority

TIMEOUT_SECONDS = 30


def register(sub) -> None:
    rsub = command_group(sub, "runs", "submit, read, cancel and replay runs over the HTTP API", options=add_api_options)
    submit = rsub.add_parser("submit", help="submit a run of a processor")
    submit.add_argument("processor")
    submit.add_argument("--payload", type=json_value, default={}, help="the run's payload as JSON (default {})")
    submit.add_argument("--priority", default=Priority.NORMAL, choices=[p.value for p in Priority])
    submit.add_argument("--timeout-seconds", type=int, help="lower the processor's time limit for this run")
    submit.add_argument("--wait", action="store_true", help="wait until the run ends and print it")
    submit.set_defaults(handler=submit_run)
    for action, handler, text in (
        ("get", show_run, "show a run"),
        ("logs", print_logs, "print a run's captured output"),
        ("cancel", post_to_run, "cancel a queued, retrying or running run"),
        ("replay", post_to_run, "run again, as a new run, a run that ended other than succeeded"),
    ):
        command = rsub.add_parser(action, help=text)
        command.add_argument("run_id")
        command.set_defaults(handler=handler)


def submit_run(args: argparse.Namespace, context) -> int:
    def submit(http: requests.Session, base: str) -> requests.Response:
        body = {"processor": args.processor, "payload": args.payload, "priority": args.priority}
        if args.timeout_seconds:
            body["timeout_seconds"] = args.timeout_seconds
        resp = http.post(f"{base}/v1/runs", json=body, timeout=TIMEOUT_SECONDS)
        if resp.status_code != 201 or not args.wait:
            return resp
        run_id = resp.json()["id"]
        while resp.ok and resp.json()["state"] not in TERMINAL:
            time.sleep(0.5)
            resp = http.get(f"{base}/v1/runs/{run_id}", timeout=TIMEOUT_SECONDS)
        return resp

    return call_api(args, context.settings, submit)


def show_run(args: argparse.Namespace, context) -> int:
    return call_api(args, context.settings, lambda http, base: http.get(f"{base}/v1/runs/{args.run_id}", timeout=TIMEOUT_SECONDS))


def post_to_run(args: argparse.Namespace, context) -> int:
    """cancel or replay."""
    return call_api(
        args, context.settings, lambda http, base: http.post(f"{base}/v1/runs/{args.run_id}/{args.action}", timeout=TIMEOUT_SECONDS)
    )


def print_logs(args: argparse.Namespace, context) -> int:
    def present(resp: requests.Response) -> int:
        if not resp.ok:
            return show(resp)
        sys.stdout.write(resp.text)
        return 0

    return call_api(
        args, context.settings, lambda http, base: http.get(f"{base}/v1/runs/{args.run_id}/logs", timeout=TIMEOUT_SECONDS), present
    )
