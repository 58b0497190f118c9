"""`dockyard processors`: make the registered processors those of a manifest (the allowlist), and list them."""

from __future__ import annotations

import argparse
import json
import sys

from cli.parsing import Progress, add_json_option, command_group, print_items


def register(sub) -> None:
    psub = command_group(sub, "processors", "register and list processors", needs_database=True)
    apply = psub.add_parser(
        "apply",
        help="make the registered processors those of a YAML or JSON manifest: add, change, and disable the ones it no longer lists",
    )
    apply.add_argument("manifest", help="file with a top-level 'processors' list (name, image pinned by digest, ...)")
    apply.add_argument("--dry-run", action="store_true", help="validate and show the diff, write nothing")
    apply.add_argument(
        "--no-prune",
        dest="prune",
        action="store_false",
        help="only add and change the manifest's processors; leave the others as they are (make run applies its samples so)",
    )
    apply.set_defaults(handler=apply_manifest)
    plist = psub.add_parser("list", help="list registered processors")
    add_json_option(plist)
    plist.set_defaults(handler=show_processors)


def show_processors(args: argparse.Namespace, context) -> int:
    from storage.processors import list_processors

    processors = list_processors()
    if args.json:
        print_items([{"name": p.name, "enabled": p.enabled, "image": p.image, "queue": p.queue} for p in processors])
        return 0
    for p in processors:
        state = "enabled" if p.enabled else "disabled"
        print(f"{p.name:20} {state:9} {p.image}")
    return 0


def apply_manifest(args: argparse.Namespace, context) -> int:
    from storage import audit, manifests

    try:
        with open(args.manifest) as fh:
            text = fh.read()
    except OSError as exc:
        print(f"dockyard: cannot read {args.manifest}: {exc}", file=sys.stderr)
        return 2
    try:
        changes = manifests.plan(manifests.read_manifest(text, context.settings), prune=args.prune)
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
        progress = Progress("applied", len(changes))
        manifests.apply(changes, audit.cli_actor(), prune=args.prune, progress=progress)
        progress.done()
    except manifests.ManifestError as exc:
        print(f"dockyard: {args.manifest}: {exc}", file=sys.stderr)
        return 1
    print(summary)
    return 0
