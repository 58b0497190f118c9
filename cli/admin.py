"""Admin commands on the database: `dockyard migrate`, `keys`, `tenants` and `audit`.

Every change goes through the storage operation that records it in the
audit log, as `cli:<user>@<host>`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from cli.parsing import NOT_FOUND, SCOPES, USAGE, add_json_option, command_group, print_items
from settings import Settings
from storage.errors import InvalidSpec, NotFound

NO_TENANT = " (a tenant is made by its first key)"


def register(sub) -> None:
    migrate = sub.add_parser("migrate", help="apply pending database migrations (DOCKYARD_DATABASE_URL); re-running is a no-op")
    migrate.set_defaults(handler=run_migrations, needs_database=True)

    ksub = command_group(sub, "keys", "API keys of tenants: shown once when made, stored only hashed", needs_database=True)
    kcreate = ksub.add_parser("create", help="make a key for a tenant (the tenant is made if new) and print it once")
    kcreate.add_argument("--tenant", required=True, help="tenant id: lowercase letters, digits, '-', '_'")
    kcreate.add_argument("--scopes", required=True, help=f"comma-separated, from: {', '.join(SCOPES)} (admin: all)")
    kcreate.add_argument("--name", help="what the key is for, shown in 'keys list'")
    kcreate.add_argument("--expires-in-days", type=int, help="the key stops working after this many days (default: never)")
    kcreate.add_argument("--quiet", action="store_true", help="print only the key")
    kcreate.set_defaults(handler=create_key)
    klist = ksub.add_parser("list", help="list keys (never their secrets)")
    klist.add_argument("--tenant", help="only this tenant's keys")
    add_json_option(klist)
    klist.set_defaults(handler=list_keys)
    krevoke = ksub.add_parser("revoke", help="revoke a key (API processes stop accepting it within 5 s)")
    krevoke.add_argument("key_id")
    krevoke.set_defaults(handler=revoke_key)
    krotate = ksub.add_parser("rotate", help="make a new key with the same tenant, scopes and expiry, and revoke the old one")
    krotate.add_argument("key_id")
    krotate.add_argument("--quiet", action="store_true", help="print only the new key")
    krotate.set_defaults(handler=rotate_key)

    tsub = command_group(sub, "tenants", "tenants, their submission rate limits and concurrency quotas", needs_database=True)
    tlist = tsub.add_parser(
        "list", help="tenants with their rate limit (default: DOCKYARD_RATE_LIMIT_*) and quota (default: DOCKYARD_TENANT_MAX_RUNNING)"
    )
    add_json_option(tlist)
    tlist.set_defaults(handler=show_tenants)
    tlimit = tsub.add_parser(
        "set-limit", help="replace a tenant's submission rate limit (an option left out: the default), shared by every API process"
    )
    tlimit.add_argument("tenant")
    tlimit.add_argument("--rate-per-second", type=float, help="submissions per second it refills at; 0: no limit")
    tlimit.add_argument("--burst", type=int, help="most submissions at once after a quiet spell (the bucket's size)")
    tlimit.add_argument("--default", action="store_true", help="drop the tenant's own limit: back to DOCKYARD_RATE_LIMIT_*")
    tlimit.set_defaults(handler=set_limit)
    tquota = tsub.add_parser(
        "set-quota", help="replace how many of a tenant's runs may run at once across all workers; runs beyond it wait queued"
    )
    tquota.add_argument("tenant")
    quota_value = tquota.add_mutually_exclusive_group(required=True)
    quota_value.add_argument("--max-running", type=int, help="runs running at once; 0: no quota")
    quota_value.add_argument("--default", action="store_true", help="drop the tenant's own quota: back to DOCKYARD_TENANT_MAX_RUNNING")
    tquota.set_defaults(handler=set_quota)

    asub = command_group(sub, "audit", "the audit log of key, processor, schedule and tenant changes", needs_database=True)
    alist = asub.add_parser("list", help="records, newest first (from the database)")
    alist.add_argument("--tenant", help="only this tenant's records and the global ones (processors)")
    alist.add_argument("--action", dest="what", help="an action (processor.change) or a family (processor)")
    alist.add_argument("--target", help="only records of this key id, processor name, schedule id or tenant")
    alist.add_argument("--limit", type=int, default=50, help="most records to show (1-500, default 50)")
    add_json_option(alist)
    alist.set_defaults(handler=list_audit)


def refused(exc: InvalidSpec | NotFound, *, flags: bool = False, missing: str = "") -> int:
    """Print why the database refused a command: USAGE for bad input (each field named), NOT_FOUND for a missing thing."""
    if isinstance(exc, InvalidSpec):
        for field, message in exc.errors:
            name = f"--{field.replace('_', '-')}" if flags else field
            print(f"dockyard: {name}: {message}", file=sys.stderr)
        return USAGE
    print(f"dockyard: {exc}{missing}", file=sys.stderr)
    return NOT_FOUND


def run_migrations(args: argparse.Namespace, context) -> int:
    from storage.migrations import migrate

    applied = migrate(context.db)
    print(f"applied migrations: {', '.join(map(str, applied))}" if applied else "database is up to date")
    return 0


def _when(value: dt.datetime | None, never: str = "never") -> str:
    return f"{value:%Y-%m-%d %H:%M:%SZ}" if value else never


def list_keys(args: argparse.Namespace, context) -> int:
    from storage import api_keys
    from storage.models import utcnow

    now = utcnow()
    rows = []
    for key in api_keys.list_keys(args.tenant):
        expired = key.expires_at is not None and key.expires_at <= now
        state = "revoked" if key.revoked_at else "expired" if expired else "active"
        rows.append(
            {
                "id": key.id,
                "tenant_id": key.tenant_id,
                "state": state,
                "expires_at": key.expires_at,
                "scopes": list(key.scopes),
                "name": key.name,
            }
        )
    if args.json:
        print_items(rows)
        return 0
    print(f"{'KEY ID':13} {'TENANT':16} {'STATE':8} {'EXPIRES':20} {'SCOPES':40} NAME")
    for k in rows:
        print(f"{k['id']:13} {k['tenant_id']:16} {k['state']:8} {_when(k['expires_at']):20} {','.join(k['scopes']):40} {k['name'] or ''}")
    return 0


def create_key(args: argparse.Namespace, context) -> int:
    from storage import api_keys, audit
    from storage.models import utcnow

    if args.expires_in_days is not None and args.expires_in_days < 1:
        print("dockyard: --expires-in-days: must be 1 or more", file=sys.stderr)
        return 2
    expires = utcnow() + dt.timedelta(days=args.expires_in_days) if args.expires_in_days else None
    try:
        key, secret = api_keys.create_key(args.tenant, args.scopes, actor=audit.cli_actor(), name=args.name, expires_at=expires)
    except (InvalidSpec, NotFound) as exc:
        return refused(exc)
    return _print_key(key, secret, args.quiet)


def rotate_key(args: argparse.Namespace, context) -> int:
    from storage import api_keys, audit

    try:
        key, secret = api_keys.rotate_key(args.key_id, actor=audit.cli_actor())
    except (InvalidSpec, NotFound) as exc:
        return refused(exc)
    if not args.quiet:
        print(f"revoked {args.key_id}; its replacement:")
    return _print_key(key, secret, args.quiet)


def _print_key(key, secret: str, quiet: bool) -> int:
    if quiet:
        print(secret)
        return 0
    print(f"key id   {key.id}\ntenant   {key.tenant_id}\nscopes   {','.join(key.scopes)}\nexpires  {_when(key.expires_at)}")
    print(f"\n{secret}\n\nThis is the only time the key is shown: store it now (it is kept only as a hash).")
    return 0


def revoke_key(args: argparse.Namespace, context) -> int:
    from storage import api_keys, audit

    try:
        key = api_keys.revoke_key(args.key_id, actor=audit.cli_actor())
    except (InvalidSpec, NotFound) as exc:
        return refused(exc)
    print(f"revoked {key.id} (tenant {key.tenant_id}); API processes refuse it within 5 s")
    return 0


def list_audit(args: argparse.Namespace, context) -> int:
    from storage import audit

    if not 1 <= args.limit <= audit.MAX_PAGE:
        print(f"dockyard: --limit: must be from 1 to {audit.MAX_PAGE}", file=sys.stderr)
        return 2
    records, _ = audit.list_events(args.tenant, action=args.what, target=args.target, limit=args.limit)
    if args.json:
        fields = ("id", "at", "actor", "tenant_id", "action", "target", "detail")
        print_items([{name: getattr(r, name) for name in fields} for r in records])
        return 0
    for r in records:
        detail = json.dumps(r.detail, separators=(",", ":"), default=str)
        print(f"{r.at:%Y-%m-%dT%H:%M:%SZ}  {r.actor:28} {r.tenant_id or '-':16} {r.action:18} {r.target:32} {detail}")
    return 0


def _tenant_row(tenant, settings: Settings) -> dict:
    """A tenant's rate limit and quota in effect: its own, or the settings' defaults."""
    own_limit = tenant.rate_per_second is not None or tenant.rate_burst is not None
    return {
        "id": tenant.id,
        "rate_per_second": tenant.rate_per_second if tenant.rate_per_second is not None else settings.rate_limit_per_second,
        "rate_burst": tenant.rate_burst or settings.rate_limit_burst,
        "max_running": tenant.max_running if tenant.max_running is not None else settings.tenant_max_running,
        "own_limit": own_limit,
        "own_quota": tenant.max_running is not None,
    }


def _limit(row: dict) -> str:
    rate, burst = row["rate_per_second"], row["rate_burst"]
    return ("no limit" if rate <= 0 else f"{rate:g}/s, burst {burst}") + (" (its own)" if row["own_limit"] else "")


def _quota(row: dict) -> str:
    most = row["max_running"]
    return ("no quota" if most == 0 else f"at most {most} running") + (" (its own)" if row["own_quota"] else "")


def show_tenants(args: argparse.Namespace, context) -> int:
    from storage.rate_limits import list_tenants

    rows = [_tenant_row(tenant, context.settings) for tenant in list_tenants()]
    if args.json:
        print_items(rows)
        return 0
    for row in rows:
        print(f"{row['id']:24} {_limit(row):32} {_quota(row)}")
    return 0


def set_quota(args: argparse.Namespace, context) -> int:
    from storage import audit
    from storage.quotas import TENANT_QUOTA_MAX_AGE_SECONDS, set_tenant_quota

    try:
        tenant = set_tenant_quota(args.tenant, None if args.default else args.max_running, actor=audit.cli_actor())
    except (InvalidSpec, NotFound) as exc:
        return refused(exc, flags=True, missing=NO_TENANT)
    print(f"{tenant.id}: {_quota(_tenant_row(tenant, context.settings))}; workers apply it within {TENANT_QUOTA_MAX_AGE_SECONDS:g} s")
    return 0


def set_limit(args: argparse.Namespace, context) -> int:
    from storage import audit
    from storage.rate_limits import set_rate_limit

    if args.default == (args.rate_per_second is not None or args.burst is not None):
        print("dockyard: tenants set-limit: give --rate-per-second and/or --burst, or --default", file=sys.stderr)
        return 2
    try:
        tenant = set_rate_limit(args.tenant, args.rate_per_second, args.burst, actor=audit.cli_actor())
    except (InvalidSpec, NotFound) as exc:
        return refused(exc, flags=True, missing=NO_TENANT)
    print(f"{tenant.id}: {_limit(_tenant_row(tenant, context.settings))}")
    return 0
