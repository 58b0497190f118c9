"""Orphan containers: what a worker's own engine holds for runs whose attempt is over.

Each worker sweeps its own engine (actors/presence.py), at start and then
periodically, so every engine is cleaned by a worker bound to it; no sweep
reaches another host's engine.
"""

from __future__ import annotations

import datetime as dt
import logging

from actors.containers import ContainerRunner
from storage import runs as run_store
from storage.models import utcnow
from storage.run_states import RunState

log = logging.getLogger(__name__)

# A container younger than this is never an orphan. A worker claims a run before it creates the
# run's container, so the run's row already names the container's attempt; this is a margin only.
ORPHAN_MIN_AGE_SECONDS = 10
# An empty parent cgroup younger than this may belong to a container being created (actors/usage.py).
LEFTOVER_CGROUP_MIN_AGE_SECONDS = 600


def orphan_reason(attempt_label: str | None, run_view: tuple[str, int, str | None] | None) -> str | None:
    """Why a run's container is an orphan (its attempt is over), or None if an attempt may still own it.

    A container of a run this database does not know is left alone: it may
    belong to another Dockyard sharing the Docker engine.
    """
    if run_view is None:
        return None
    state, attempts, _owner = run_view
    if state != RunState.RUNNING:
        return f"its run is {state}"
    if attempt_label != str(attempts):
        return f"its attempt {attempt_label} is over (the run is on attempt {attempts})"
    return None


def _created(container) -> dt.datetime:
    return dt.datetime.fromtimestamp(container.attrs["Created"], dt.UTC).replace(tzinfo=None)


def remove_orphan_containers(runner: ContainerRunner, min_age_seconds: float = ORPHAN_MIN_AGE_SECONDS) -> int:
    """Remove containers on the runner's engine whose attempt is over (a dead worker's leftovers), and
    the empty parent cgroups such workers left (actors/usage.py); return how many containers went."""
    removed = 0
    now = utcnow()
    for container in runner.run_containers():
        if (now - _created(container)).total_seconds() < min_age_seconds:
            continue
        labels = container.attrs.get("Labels") or {}
        run_id = labels.get("dockyard.run_id", "")
        why = orphan_reason(labels.get("dockyard.attempt"), run_store.lease_view(run_id))
        if why is None:
            continue
        log.info("removing orphan container %s of run %s: %s", container.short_id, run_id, why)
        runner.remove(container)
        removed += 1
    if runner.usage is not None:
        # The parent cgroups of containers whose worker died before it could read and remove them.
        for name in runner.usage.remove_leftovers(max(min_age_seconds, LEFTOVER_CGROUP_MIN_AGE_SECONDS)):
            log.info("removed cgroup %s that a stopped worker left", name)
    return removed
