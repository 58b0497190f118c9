"""The `dockyard` command: admin commands talk to the database, user commands to the HTTP API."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time

import requests

from settings import Settings, SettingsError
from storage.api_keys import SCOPES as KEY_SCOPES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dockyard", description="Run jobs as containers: administer Dockyard and submit runs.")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="apply pending database migrations (DOCKYARD_DATABASE_URL); re-running is a no-op")

    processors = sub.add_parser("processors", help="register and list processors")
    psub = processors.add_subparsers(dest="action", required=True)
    apply = psub.add_parser(
        "apply",
        help="make the registered processors those of a YAML or JSON manifest: add, change, and disable the ones it no longer lists",
    )
    apply.add_argument("manifest", help="file with a top-level 'processors' list (name, image pinned by digest, ...)")
    apply.add_argument("--dry-run", action="store_true", help="validate and show the diff, write nothing")
    psub.add_parser("list", help="list registered processors")

    keys = sub.add_parser("keys", help="API keys of tenants: shown once when made, stored only hashed")
    ksub = keys.add_subparsers(dest="action", required=True)
    kcreate = ksub.add_parser("create", help="make a key for a tenant (the tenant is made if new) and print it once")
    kcreate.add_argument("--tenant", required=True, help="tenant id: lowercase letters, digits, '-', '_'")
    kcreate.add_argument("--scopes", required=True, help=f"comma-separated, from: {', '.join(KEY_SCOPES)} (admin: all)")
    kcreate.add_argument("--name", help="what the key is for, shown in 'keys list'")
    kcreate.add_argument("--expires-in-days", type=int, help="the key stops working after this many days (default: never)")
    kcreate.add_argument("--quiet", action="store_true", help="print only the key")
    klist = ksub.add_parser("list", help="list keys (never their secrets)")
    klist.add_argument("--tenant", help="only this tenant's keys")
    ksub.add_parser("revoke", help="revoke a key (API processes stop accepting it within 5 s)").add_argument("key_id")
    krotate = ksub.add_parser("rotate", help="make a new key with the same tenant, scopes and expiry, and revoke the old one")
    krotate.add_argument("key_id")
    krotate.add_argument("--quiet", action="store_true", help="print only the new key")

    tenants = sub.add_parser("tenants", help="tenants, their submission rate limits and concurrency quotas")
    tsub = tenants.add_subparsers(dest="action", required=True)
    tsub.add_parser(
        "list", help="tenants with their rate limit (default: DOCKYARD_RATE_LIMIT_*) and quota (default: DOCKYARD_TENANT_MAX_RUNNING)"
    )
    tlimit = tsub.add_parser(
        "set-limit", help="replace a tenant's submission rate limit (an option left out: the default), shared by every API process"
    )
    tlimit.add_argument("tenant")
    tlimit.add_argument("--rate-per-second", type=float, help="submissions per second it refills at; 0: no limit")
    tlimit.add_argument("--burst", type=int, help="most submissions at once after a quiet spell (the bucket's size)")
    tlimit.add_argument("--default", action="store_true", help="drop the tenant's own limit: back to DOCKYARD_RATE_LIMIT_*")
    tquota = tsub.add_parser(
        "set-quota", help="replace how many of a tenant's runs may run at once across all workers; runs beyond it wait queued"
    )
    tquota.add_argument("tenant")
    quota_value = tquota.add_mutually_exclusive_group(required=True)
    quota_value.add_argument("--max-running", type=int, help="runs running at once; 0: no quota")
    quota_value.add_argument("--default", action="store_true", help="drop the tenant's own quota: back to DOCKYARD_TENANT_MAX_RUNNING")

    audit = sub.add_parser("audit", help="the audit log of key, processor, schedule and tenant changes")
    asub = audit.add_subparsers(dest="action", required=True)
    alist = asub.add_parser("list", help="records, newest first (from the database)")
    alist.add_argument("--tenant", help="only this tenant's records and the global ones (processors)")
    alist.add_argument("--action", dest="what", help="an action (processor.change) or a family (processor)")
    alist.add_argument("--target", help="only records of this key id, processor name, schedule id or tenant")
    alist.add_argument("--limit", type=int, default=50, help="most records to show (1-500, default 50)")

    runs = sub.add_parser("runs", help="submit, read, cancel and replay runs over the HTTP API")
    runs.add_argument("--api-url", help="API base URL (default: DOCKYARD_API_URL, else http://127.0.0.1:8000)")
    runs.add_argument("--api-key", help="API key (default: DOCKYARD_API_KEY; prefer the variable: arguments show in ps)")
    rsub = runs.add_subparsers(dest="action", required=True)
    submit = rsub.add_parser("submit", help="submit a run of a processor")
    submit.add_argument("processor")
    submit.add_argument("--payload", type=_json_value, default={}, help="the run's payload as JSON (default {})")
    submit.add_argument("--priority", default="normal", choices=["low", "normal", "high", "critical"])
    submit.add_argument("--timeout-seconds", type=int, help="lower the processor's time limit for this run")
    submit.add_argument("--wait", action="store_true", help="wait until the run ends and print it")
    get = rsub.add_parser("get", help="show a run")
    get.add_argument("run_id")
    logs = rsub.add_parser("logs", help="print a run's captured output")
    logs.add_argument("run_id")
    cancel = rsub.add_parser("cancel", help="cancel a queued, retrying or running run")
    cancel.add_argument("run_id")
    replay = rsub.add_parser("replay", help="run again, as a new run, a run that ended other than succeeded")
    replay.add_argument("run_id")

    schedules = sub.add_parser("schedules", help="list, create, pause, resume and trigger cron schedules over the HTTP API")
    schedules.add_argument("--api-url", help="API base URL (default: DOCKYARD_API_URL, else http://127.0.0.1:8000)")
    schedules.add_argument("--api-key", help="API key (default: DOCKYARD_API_KEY; prefer the variable: arguments show in ps)")
    ssub = schedules.add_subparsers(dest="action", required=True)
    ssub.add_parser("list", help="list schedules with their next and last fire times (UTC)")
    create = ssub.add_parser("create", help="create a schedule")
    create.add_argument("name", help="unique name: lowercase letters, digits, '.', '-', '_'")
    create.add_argument("--cron", required=True, help="five fields: minute hour day-of-month month day-of-week, e.g. '0 2 * * *'")
    create.add_argument("--processor", required=True, help="the registered processor each fire runs")
    create.add_argument("--timezone", default="UTC", help="IANA time zone the cron is read in (default UTC)")
    create.add_argument("--payload", type=_json_value, default={}, help="each run's payload as JSON (default {})")
    create.add_argument("--priority", default="normal", choices=["low", "normal", "high", "critical"])
    create.add_argument(
        "--overlap",
        default="allow",
        choices=["allow", "forbid", "replace"],
        help="while a run of this schedule has not ended: fire anyway, skip the fire, or cancel it and fire (default allow)",
    )
    create.add_argument(
        "--catchup-window-seconds",
        type=int,
        default=300,
        help="fires missed while no scheduler led are run once if this recent (default 300)",
    )
    create.add_argument("--paused", action="store_true", help="create it paused")
    for action, text in (
        ("pause", "stop firing a schedule"),
        ("resume", "fire a paused schedule again from now"),
        ("trigger", "start a run of a schedule now"),
    ):
        ssub.add_parser(action, help=text).add_argument("schedule", help="schedule id or name")

    queue = sub.add_parser("queue", help="the run queue on RabbitMQ")
    qsub = queue.add_subparsers(dest="action", required=True)
    declare = qsub.add_parser("declare", help="declare the run queue with these settings' arguments (priorities, length limit)")
    declare.add_argument(
        "--recreate-if-empty",
        action="store_true",
        help="if it exists with other arguments and holds no message, delete and declare it anew",
    )

    dlq = sub.add_parser("dlq", help="dead-lettered runs and their messages in the queue's dead-letter queue (<queue>.XQ)")
    dsub = dlq.add_subparsers(dest="action", required=True)
    dlist = dsub.add_parser("list", help="list runs that ended dead_letter, newest first (from the database)")
    dlist.add_argument("--processor", help="only this processor's runs")
    dlist.add_argument("--since", type=_timestamp, help="only runs dead-lettered at or after this UTC time (ISO 8601)")
    peek = dsub.add_parser("peek", help="show the messages in the dead-letter queue without consuming them")
    peek.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    dreplay = dsub.add_parser("replay", help="replay dead-lettered runs (once each) and drop their dead letters")
    dreplay.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="runs to replay")
    dreplay.add_argument("--all", action="store_true", help="every dead-lettered run (with --processor: of that processor)")
    dreplay.add_argument("--processor", help="with --all: only this processor's runs")
    purge = dsub.add_parser("purge", help="delete every message in the dead-letter queue (the runs keep their history)")
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return parser


def _json_value(value: str):
    try:
        return json.loads(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None


def _timestamp(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        return 2
    if args.command in ("runs", "schedules"):
        http = requests.Session()
        # A new connection per request: a kept-alive one the server closed while
        # we slept (runs submit --wait) fails the next request outright.
        http.headers["Connection"] = "close"
        api_key = args.api_key or settings.api_key
        if api_key:
            http.headers["Authorization"] = f"Bearer {api_key}"
        command = run_command if args.command == "runs" else schedules_command
        return command(args, http, args.api_url or settings.api_url)
    from storage.database import open_database

    db = open_database(settings.database_url, pool_size=2)
    if args.command == "migrate":
        return migrate_command(db)
    if args.command == "dlq":
        return dlq_command(args, settings)
    if args.command == "queue":
        return queue_command(args, settings)
    if args.command == "keys":
        return keys_command(args)
    if args.command == "tenants":
        return tenants_command(args, settings)
    if args.command == "audit":
        return audit_command(args)
    return processors_command(args, settings)


def migrate_command(db) -> int:
    from storage.migrations import migrate

    applied = migrate(db)
    print(f"applied migrations: {', '.join(map(str, applied))}" if applied else "database is up to date")
    return 0


def processors_command(args, settings: Settings) -> int:
    from storage import audit, manifests
    from storage.processors import list_processors

    if args.action == "list":
        for p in list_processors():
            state = "enabled" if p.enabled else "disabled"
            print(f"{p.name:20} {state:9} {p.image}")
        return 0
    try:
        with open(args.manifest) as fh:
            text = fh.read()
    except OSError as exc:
        print(f"dockyard: cannot read {args.manifest}: {exc}", file=sys.stderr)
        return 2
    try:
        changes = manifests.plan(manifests.read_manifest(text, settings))
    except manifests.ManifestError as exc:
        for line, message in exc.problems:
            print(f"dockyard: {args.manifest}{f':{line}' if line else ''}: {message}", file=sys.stderr)
        return 2
    for change in changes:
        print(f"{change.verb:8} {change.name:20} {change.image if change.verb != manifests.KEEP else ''}".rstrip())
        if change.verb == manifests.CHANGE:
            for name, (before, after) in change.differences.items():
                print(f"           {name}: {json.dumps(before)} -> {json.dumps(after)}")
    counts = {verb: sum(c.verb == verb for c in changes) for verb in (manifests.ADD, manifests.CHANGE, manifests.DISABLE, manifests.KEEP)}
    summary = f"{counts['add']} added, {counts['change']} changed, {counts['disable']} disabled, {counts['keep']} unchanged"
    if args.dry_run:
        print(f"{summary} (dry run: nothing written)")
        return 0
    try:
        manifests.apply(changes, audit.cli_actor())
    except manifests.ManifestError as exc:
        print(f"dockyard: {args.manifest}: {exc}", file=sys.stderr)
        return 1
    print(summary)
    return 0


def queue_command(args, settings: Settings) -> int:
    from actors.dispatch import QueueMismatch, create_dispatcher

    try:
        outcome = create_dispatcher(settings).ensure_queue(settings.default_queue, recreate_if_empty=args.recreate_if_empty)
    except QueueMismatch as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        return 1
    verb = "declared" if outcome == "ok" else "was empty with other arguments; deleted and declared anew:"
    print(f"queue {settings.default_queue!r} {verb} (max length {settings.queue_max_length})")
    return 0


def dlq_command(args, settings: Settings) -> int:
    from actors.dispatch import create_dispatcher
    from storage import runs as run_store
    from storage.errors import NotFound

    dispatcher = create_dispatcher(settings)
    dlq = dispatcher.dead_letters(settings.default_queue)
    if args.action == "list":
        for run in run_store.dead_lettered_runs(processor=args.processor, since=args.since):
            print(f"{run.id}  {run.processor:16} {run.finished_at:%Y-%m-%dT%H:%M:%SZ}  exit {run.exit_code}  {run.error_message or ''}")
        return 0
    if args.action == "peek":
        for letter in dlq.peek(args.limit):
            when = f"{letter.dead_lettered_at:%Y-%m-%dT%H:%M:%SZ}" if letter.dead_lettered_at else "?"
            state = "?"
            if letter.run_id:
                try:
                    state = run_store.get_run(letter.run_id).state
                except NotFound:
                    state = "unknown run"
            print(f"{letter.run_id or '(not a run)'}  dead-lettered {when} ({letter.reason})  run is {state}")
        return 0
    if args.action == "purge":
        count = dlq.count()
        if not args.yes:
            answer = input(f"Delete {count} message(s) from {dlq.name}? The runs keep their history. [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing deleted")
                return 1
        print(f"deleted {dlq.purge()} message(s) from {dlq.name}")
        return 0
    # replay
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
                return 2
            if run.state != "dead_letter":
                print(f"dockyard: run {run_id} is {run.state}, not dead_letter", file=sys.stderr)
                return 2
            originals.append(run)
    for original in originals:
        replay, created = dispatcher.replay(original)
        print(f"{original.id} {'replayed as' if created else 'was already replayed as'} {replay.id}")
    dispatcher.marks.flush()
    removed = dlq.remove({r.id for r in originals})
    print(f"replayed {len(originals)} run(s); removed {removed} dead letter(s) from {dlq.name}")
    return 0


def run_command(args, http: requests.Session, api_url: str) -> int:
    base = api_url.rstrip("/")
    try:
        if args.action == "submit":
            body = {"processor": args.processor, "payload": args.payload, "priority": args.priority}
            if args.timeout_seconds:
                body["timeout_seconds"] = args.timeout_seconds
            resp = http.post(f"{base}/v1/runs", json=body, timeout=30)
            if resp.status_code != 201 or not args.wait:
                return _show(resp)
            run_id = resp.json()["id"]
            while resp.ok and resp.json()["state"] in ("queued", "running", "retrying"):
                time.sleep(0.5)
                resp = http.get(f"{base}/v1/runs/{run_id}", timeout=30)
            return _show(resp)
        if args.action == "get":
            return _show(http.get(f"{base}/v1/runs/{args.run_id}", timeout=30))
        if args.action in ("cancel", "replay"):
            return _show(http.post(f"{base}/v1/runs/{args.run_id}/{args.action}", timeout=30))
        resp = http.get(f"{base}/v1/runs/{args.run_id}/logs", timeout=30)
        if not resp.ok:
            return _show(resp)
        sys.stdout.write(resp.text)
        return 0
    except requests.RequestException as exc:
        print(f"dockyard: cannot reach the API at {base}: {exc}", file=sys.stderr)
        return 1


def schedules_command(args, http: requests.Session, api_url: str) -> int:
    base = f"{api_url.rstrip('/')}/v1/schedules"
    try:
        if args.action == "list":
            resp = http.get(base, timeout=30)
            if not resp.ok:
                return _show(resp)
            print(f"{'NAME':24} {'CRON':16} {'TIMEZONE':16} {'OVERLAP':8} {'STATE':7} {'NEXT FIRE':21} {'LAST FIRE':21} ID")
            for s in resp.json()["items"]:
                state = "paused" if s["paused"] else "active"
                print(
                    f"{s['name']:24} {s['cron']:16} {s['timezone']:16} {s['overlap']:8} {state:7} "
                    f"{_short(s['next_fire_at']):21} {_short(s['last_fired_at']):21} {s['id']}"
                )
            return 0
        if args.action == "create":
            body = {
                "name": args.name,
                "cron": args.cron,
                "processor": args.processor,
                "timezone": args.timezone,
                "payload": args.payload,
                "priority": args.priority,
                "overlap": args.overlap,
                "catchup_window_seconds": args.catchup_window_seconds,
                "paused": args.paused,
            }
            return _show(http.post(base, json=body, timeout=30))
        schedule_id = _schedule_id(http, base, args.schedule)
        if schedule_id is None:
            print(f"dockyard: no schedule with id or name {args.schedule!r}", file=sys.stderr)
            return 1
        return _show(http.post(f"{base}/{schedule_id}/{args.action}", timeout=30))
    except requests.RequestException as exc:
        print(f"dockyard: cannot reach the API at {api_url}: {exc}", file=sys.stderr)
        return 1


def _schedule_id(http: requests.Session, base: str, ref: str) -> str | None:
    """A schedule's id from its id or its name."""
    resp = http.get(base, timeout=30)
    resp.raise_for_status()
    for s in resp.json()["items"]:
        if ref in (s["id"], s["name"]):
            return s["id"]
    return None


def _short(timestamp: str | None) -> str:
    return "-" if timestamp is None else timestamp[:19].replace("T", " ") + "Z"


def _iso(when: dt.datetime | None) -> str | None:
    return f"{when:%Y-%m-%dT%H:%M:%SZ}" if when else None


def keys_command(args) -> int:
    from storage import api_keys, audit
    from storage.errors import InvalidSpec, NotFound
    from storage.models import utcnow

    try:
        if args.action == "list":
            print(f"{'KEY ID':13} {'TENANT':16} {'STATE':8} {'EXPIRES':20} {'SCOPES':40} NAME")
            now = utcnow()
            for key in api_keys.list_keys(args.tenant):
                expired = key.expires_at is not None and key.expires_at <= now
                state = "revoked" if key.revoked_at else "expired" if expired else "active"
                expires = f"{key.expires_at:%Y-%m-%d %H:%M:%SZ}" if key.expires_at else "never"
                print(f"{key.id:13} {key.tenant_id:16} {state:8} {expires:20} {','.join(key.scopes):40} {key.name or ''}")
            return 0
        if args.action == "revoke":
            tenant = api_keys.get_key(args.key_id).tenant_id
            with audit.change(audit.cli_actor(), "key.revoke", args.key_id, tenant_id=tenant) as entry:
                entry.skip = api_keys.get_key(args.key_id).revoked_at is not None  # revoked already
                key = api_keys.revoke_key(args.key_id)
            print(f"revoked {key.id} (tenant {key.tenant_id}); API processes refuse it within 5 s")
            return 0
        if args.action == "rotate":
            tenant = api_keys.get_key(args.key_id).tenant_id
            with audit.change(audit.cli_actor(), "key.rotate", args.key_id, tenant_id=tenant) as entry:
                key, secret = api_keys.rotate_key(args.key_id)
                entry.detail = {"replaced_by": key.id}
            if not args.quiet:
                print(f"revoked {args.key_id}; its replacement:")
        else:
            if args.expires_in_days is not None and args.expires_in_days < 1:
                print("dockyard: --expires-in-days: must be 1 or more", file=sys.stderr)
                return 2
            expires = utcnow() + dt.timedelta(days=args.expires_in_days) if args.expires_in_days else None
            with audit.change(audit.cli_actor(), "key.create", "", tenant_id=args.tenant) as entry:
                key, secret = api_keys.create_key(args.tenant, args.scopes, name=args.name, expires_at=expires)
                entry.target = key.id
                entry.detail = {"scopes": key.scopes, "name": key.name, "expires_at": _iso(key.expires_at)}
    except (InvalidSpec, NotFound) as exc:
        return _refused(exc)
    if args.quiet:
        print(secret)
        return 0
    expires = f"{key.expires_at:%Y-%m-%d %H:%M:%SZ}" if key.expires_at else "never"
    print(f"key id   {key.id}\ntenant   {key.tenant_id}\nscopes   {','.join(key.scopes)}\nexpires  {expires}")
    print(f"\n{secret}\n\nThis is the only time the key is shown: store it now (it is kept only as a hash).")
    return 0


def audit_command(args) -> int:
    from storage import audit

    if not 1 <= args.limit <= audit.MAX_PAGE:
        print(f"dockyard: --limit: must be from 1 to {audit.MAX_PAGE}", file=sys.stderr)
        return 2
    records, _ = audit.list_events(args.tenant, action=args.what, target=args.target, limit=args.limit)
    for r in records:
        detail = json.dumps(r.detail, separators=(",", ":"), default=str)
        print(f"{r.at:%Y-%m-%dT%H:%M:%SZ}  {r.actor:28} {r.tenant_id or '-':16} {r.action:18} {r.target:32} {detail}")
    return 0


def tenants_command(args, settings: Settings) -> int:
    from storage import audit
    from storage.errors import InvalidSpec, NotFound
    from storage.models import Tenant
    from storage.quotas import TENANT_QUOTA_MAX_AGE_SECONDS, set_tenant_quota
    from storage.rate_limits import list_tenants, set_rate_limit

    def limit(t) -> str:
        rate = t.rate_per_second if t.rate_per_second is not None else settings.rate_limit_per_second
        burst = t.rate_burst or settings.rate_limit_burst
        own = "" if t.rate_per_second is None and t.rate_burst is None else " (its own)"
        return ("no limit" if rate <= 0 else f"{rate:g}/s, burst {burst}") + own

    def quota(t) -> str:
        most = t.max_running if t.max_running is not None else settings.tenant_max_running
        own = "" if t.max_running is None else " (its own)"
        return ("no quota" if most == 0 else f"at most {most} running") + own

    if args.action == "list":
        for tenant in list_tenants():
            print(f"{tenant.id:24} {limit(tenant):32} {quota(tenant)}")
        return 0
    if args.action == "set-quota":
        try:
            with audit.change(audit.cli_actor(), "tenant.set_quota", args.tenant, tenant_id=args.tenant) as entry:
                before = Tenant.get_or_none(Tenant.id == args.tenant)
                tenant = set_tenant_quota(args.tenant, None if args.default else args.max_running)
                entry.detail = {"max_running": [before.max_running, tenant.max_running]}
                entry.skip = before.max_running == tenant.max_running
        except (InvalidSpec, NotFound) as exc:
            return _refused(exc, flags=True, missing=" (a tenant is made by its first key)")
        print(f"{tenant.id}: {quota(tenant)}; workers apply it within {TENANT_QUOTA_MAX_AGE_SECONDS:g} s")
        return 0
    if args.default == (args.rate_per_second is not None or args.burst is not None):
        print("dockyard: tenants set-limit: give --rate-per-second and/or --burst, or --default", file=sys.stderr)
        return 2
    try:
        with audit.change(audit.cli_actor(), "tenant.set_limit", args.tenant, tenant_id=args.tenant) as entry:
            before = Tenant.get_or_none(Tenant.id == args.tenant)
            tenant = set_rate_limit(args.tenant, args.rate_per_second, args.burst)
            entry.detail = audit.differences(
                {"rate_per_second": before.rate_per_second, "burst": before.rate_burst} if before else {},
                {"rate_per_second": tenant.rate_per_second, "burst": tenant.rate_burst},
            )
            entry.skip = not entry.detail
    except (InvalidSpec, NotFound) as exc:
        return _refused(exc, flags=True, missing=" (a tenant is made by its first key)")
    print(f"{tenant.id}: {limit(tenant)}")
    return 0


def _refused(exc, *, flags: bool = False, missing: str = "") -> int:
    """Print why the database refused a command: 2 for bad input (each field named), 1 for a missing thing."""
    from storage.errors import InvalidSpec

    if isinstance(exc, InvalidSpec):
        for field, message in exc.errors:
            name = f"--{field.replace('_', '-')}" if flags else field
            print(f"dockyard: {name}: {message}", file=sys.stderr)
        return 2
    print(f"dockyard: {exc}{missing}", file=sys.stderr)
    return 1


def _show(resp: requests.Response) -> int:
    try:
        print(json.dumps(resp.json(), indent=2))
    except ValueError:
        print(resp.text)
    return 0 if resp.ok else 1


if __name__ == "__main__":
    sys.exit(main())
