"""The `dockyard` command: admin commands talk to the database, user commands to the HTTP API."""

from __future__ import annotations

import argparse
import json
import sys
import time

import requests
import yaml

from settings import Settings, SettingsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dockyard", description="Run jobs as containers: administer Dockyard and submit runs.")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="apply pending database migrations (DOCKYARD_DATABASE_URL); re-running is a no-op")

    processors = sub.add_parser("processors", help="register and list processors")
    psub = processors.add_subparsers(dest="action", required=True)
    apply = psub.add_parser("apply", help="create or replace the processors listed in a YAML or JSON manifest")
    apply.add_argument("manifest", help="file with a top-level 'processors' list (name, image pinned by digest, ...)")
    apply.add_argument("--dry-run", action="store_true", help="validate and show what would change, write nothing")
    psub.add_parser("list", help="list registered processors")

    runs = sub.add_parser("runs", help="submit runs and read them over the HTTP API")
    runs.add_argument("--api-url", help="API base URL (default: DOCKYARD_API_URL, else http://127.0.0.1:8000)")
    rsub = runs.add_subparsers(dest="action", required=True)
    submit = rsub.add_parser("submit", help="submit a run of a processor")
    submit.add_argument("processor")
    submit.add_argument("--payload", default="{}", help="the run's payload as JSON (default {})")
    submit.add_argument("--priority", default="normal", choices=["low", "normal", "high", "critical"])
    submit.add_argument("--timeout-seconds", type=int, help="lower the processor's time limit for this run")
    submit.add_argument("--wait", action="store_true", help="wait until the run ends and print it")
    get = rsub.add_parser("get", help="show a run")
    get.add_argument("run_id")
    logs = rsub.add_parser("logs", help="print a run's captured output")
    logs.add_argument("run_id")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        return 2
    if args.command == "runs":
        return run_command(args, args.api_url or settings.api_url)
    from storage.database import open_database

    db = open_database(settings.database_url, pool_size=2)
    if args.command == "migrate":
        return migrate_command(db)
    return processors_command(args, settings)


def migrate_command(db) -> int:
    from storage.migrations import migrate

    applied = migrate(db)
    print(f"applied migrations: {', '.join(map(str, applied))}" if applied else "database is up to date")
    return 0


def processors_command(args, settings: Settings) -> int:
    from storage.errors import InvalidSpec
    from storage.processors import list_processors, parse_processor_spec, processor_as_dict, put_processor

    if args.action == "list":
        for p in list_processors():
            state = "enabled" if p.enabled else "disabled"
            print(f"{p.name:20} {state:9} {p.image}")
        return 0
    try:
        with open(args.manifest) as fh:
            manifest = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        print(f"dockyard: cannot read {args.manifest}: {exc}", file=sys.stderr)
        return 2
    entries = manifest.get("processors") if isinstance(manifest, dict) else None
    if not isinstance(entries, list):
        print(f"dockyard: {args.manifest}: expected a top-level 'processors' list", file=sys.stderr)
        return 2
    specs, failed = [], False
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        try:
            specs.append(parse_processor_spec(name or "", entry, settings))
        except InvalidSpec as exc:
            failed = True
            for field, message in exc.errors:
                print(f"dockyard: {args.manifest}: processors[{index}] ({name}): {field}: {message}", file=sys.stderr)
    if failed:
        return 2
    known = {p.name: processor_as_dict(p) for p in list_processors()}
    for spec in specs:
        before = known.get(spec["name"])
        verb = "add" if before is None else "change" if _differs(before, spec) else "keep"
        print(f"{verb:7} {spec['name']} {spec['image']}")
        if not args.dry_run and verb != "keep":
            put_processor(spec)
    return 0


def _differs(stored: dict, spec: dict) -> bool:
    flat = {**stored, **stored["resources"]}
    return any(flat.get(key) != value for key, value in spec.items())


def run_command(args, api_url: str) -> int:
    base = api_url.rstrip("/")
    try:
        if args.action == "submit":
            try:
                payload = json.loads(args.payload)
            except ValueError as exc:
                print(f"dockyard: --payload is not JSON: {exc}", file=sys.stderr)
                return 2
            body = {"processor": args.processor, "payload": payload, "priority": args.priority}
            if args.timeout_seconds:
                body["timeout_seconds"] = args.timeout_seconds
            resp = requests.post(f"{base}/v1/runs", json=body, timeout=30)
            if resp.status_code != 201 or not args.wait:
                return _show(resp)
            run_id = resp.json()["id"]
            while resp.ok and resp.json()["state"] in ("queued", "running", "retrying"):
                time.sleep(0.5)
                resp = requests.get(f"{base}/v1/runs/{run_id}", timeout=30)
            return _show(resp)
        if args.action == "get":
            return _show(requests.get(f"{base}/v1/runs/{args.run_id}", timeout=30))
        resp = requests.get(f"{base}/v1/runs/{args.run_id}/logs", timeout=30)
        if not resp.ok:
            return _show(resp)
        sys.stdout.write(resp.text)
        return 0
    except requests.RequestException as exc:
        print(f"dockyard: cannot reach the API at {base}: {exc}", file=sys.stderr)
        return 1


def _show(resp: requests.Response) -> int:
    try:
        print(json.dumps(resp.json(), indent=2))
    except ValueError:
        print(resp.text)
    return 0 if resp.ok else 1


if __name__ == "__main__":
    sys.exit(main())
