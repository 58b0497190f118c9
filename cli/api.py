"""What the user commands (runs, schedules) share: the API's address and key, and how an answer is printed."""

from __future__ import annotations

import argparse
import json
import sys

import requests

from settings import Settings


def add_api_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-url", help="API base URL (default: DOCKYARD_API_URL, else http://127.0.0.1:8000)")
    parser.add_argument("--api-key", help="API key (default: DOCKYARD_API_KEY; prefer the variable: arguments show in ps)")


def api_base(args: argparse.Namespace, settings: Settings) -> str:
    return (args.api_url or settings.api_url).rstrip("/")


def api_session(args: argparse.Namespace, settings: Settings) -> requests.Session:
    """A session that sends the API key, on a new connection per request.

    NOTE: a kept-alive connection the server closed while we slept (runs
    submit --wait) fails the next request outright.
    """
    http = requests.Session()
    http.headers["Connection"] = "close"
    api_key = args.api_key or settings.api_key
    if api_key:
        http.headers["Authorization"] = f"Bearer {api_key}"
    return http


def show(resp: requests.Response) -> int:
    """Print an answer's body (indented JSON when it is JSON); 0 if it was a success."""
    try:
        print(json.dumps(resp.json(), indent=2))
    except ValueError:
        print(resp.text)
    return 0 if resp.ok else 1


def call_api(args: argparse.Namespace, settings: Settings, request, present=show) -> int:
    """Send what `request(http, base)` sends and `present` the answer; 1 if the API cannot be reached."""
    base = api_base(args, settings)
    try:
        resp = request(api_session(args, settings), base)
    except requests.RequestException as exc:
        print(f"dockyard: cannot reach the API at {base}: {exc}", file=sys.stderr)
        return 1
    return present(resp)
