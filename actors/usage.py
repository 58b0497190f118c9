"""What an attempt's container used: CPU seconds and peak memory, read from the kernel's cgroups.

The engine's stats are gone the moment a container exits, and a sample
taken while it runs misses its last moments (a peak is often reached just
before the end). So each container is created under a parent cgroup of its
own (`--cgroup-parent`); the kernel charges the container's usage to the
parent as well and keeps it there after the engine removes the container.
Read after the removal, the parent holds the exact totals; then it is
removed too.

This needs the Docker engine's cgroupfs driver and the engine's cgroup file
system at `root` (a worker on the engine's host). Elsewhere (the systemd
driver, an engine on another host) `AttemptUsage.for_engine` returns None
and attempts record no usage.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float | None
    peak_memory_bytes: int | None


class AttemptUsage:
    """Names a parent cgroup per container, and reads and removes it after the container is gone."""

    def __init__(self, root: str, version: int):
        self.root, self.version = root, version

    @classmethod
    def for_engine(cls, engine_info: dict, root: str = "/sys/fs/cgroup") -> AttemptUsage | None:
        """Usage measurement for this engine (`docker info`), or None where it cannot work."""
        if engine_info.get("CgroupDriver") != "cgroupfs":
            log.info("attempt usage not measured: the engine's cgroup driver is %r, not cgroupfs", engine_info.get("CgroupDriver"))
            return None
        version = 2 if os.path.exists(os.path.join(root, "cgroup.controllers")) else 1
        probe = os.path.join(root, "cgroup.controllers") if version == 2 else os.path.join(root, "memory")
        if str(engine_info.get("CgroupVersion", version)) != str(version) or not os.path.exists(probe):
            log.info("attempt usage not measured: the engine's cgroups are not visible at %s", root)
            return None
        return cls(root, version)

    def new_parent(self) -> str:
        """A parent cgroup name for one container (the engine creates it)."""
        return f"dockyard-{secrets.token_hex(8)}"

    def collect(self, parent: str) -> Usage:
        """The totals of a parent cgroup whose container is gone, then the cgroup removed; None values if unreadable."""
        try:
            return Usage(self._cpu_seconds(parent), self._peak_memory(parent))
        finally:
            self._remove(parent)

    def remove_leftovers(self, min_age_seconds: float, now: float | None = None) -> list[str]:
        """Remove parent cgroups a dead worker left (their container gone, so they are empty) once older than
        `min_age_seconds`; return their names. A parent in use holds its container's cgroup: the kernel refuses to
        remove it, and the age spares one whose container is created but not yet started."""
        now = time.time() if now is None else now
        listing = os.path.join(self.root, "memory") if self.version == 1 else self.root
        try:
            names = [name for name in os.listdir(listing) if name.startswith("dockyard-")]
        except OSError:
            return []
        removed = []
        for name in names:
            path = os.path.join(listing, name)
            try:
                if now - os.stat(path).st_mtime < min_age_seconds or any(entry.is_dir() for entry in os.scandir(path)):
                    continue
            except OSError:
                continue
            self._remove(name)
            if not os.path.exists(path):
                removed.append(name)
        return removed

    def _cpu_seconds(self, parent: str) -> float | None:
        if self.version == 1:
            value = _read(os.path.join(self.root, "cpuacct", parent, "cpuacct.usage"))
            return None if value is None else int(value) / 1e9
        for line in (_read(os.path.join(self.root, parent, "cpu.stat")) or "").splitlines():
            key, _, number = line.partition(" ")
            if key == "usage_usec":
                return int(number) / 1e6
        return None

    def _peak_memory(self, parent: str) -> int | None:
        path = (
            os.path.join(self.root, "memory", parent, "memory.max_usage_in_bytes")
            if self.version == 1
            else os.path.join(self.root, parent, "memory.peak")  # kernel 5.19 and later
        )
        value = _read(path)
        return None if value is None else int(value)

    def _remove(self, parent: str) -> None:
        paths = [os.path.join(self.root, parent)]
        if self.version == 1:
            paths = [os.path.join(self.root, controller, parent) for controller in os.listdir(self.root)]
        for path in paths:
            try:
                os.rmdir(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not remove cgroup %s: %s", path, exc)


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except (FileNotFoundError, PermissionError, ValueError):
        return None
