"""actors/usage.py on a cgroup tree laid out as the kernel does (v1, v2), in a temporary directory."""

from __future__ import annotations

import os
import time

from actors.usage import AttemptUsage


def v1_tree(root, parent: str, *, cpu_ns: int, peak: int) -> None:
    for controller in ("memory", "cpuacct", "pids"):
        os.makedirs(root / controller / parent)
    (root / "cpuacct" / parent / "cpuacct.usage").write_text(f"{cpu_ns}\n")
    (root / "memory" / parent / "memory.max_usage_in_bytes").write_text(f"{peak}\n")


def test_v1_totals_are_read_then_the_parent_removed_in_every_controller(tmp_path, monkeypatch):
    (tmp_path / "memory").mkdir()
    usage = AttemptUsage.for_engine({"CgroupDriver": "cgroupfs", "CgroupVersion": "1"}, root=str(tmp_path))
    parent = usage.new_parent()
    v1_tree(tmp_path, parent, cpu_ns=1_500_000_000, peak=44_851_200)
    removed = []
    monkeypatch.setattr(os, "rmdir", lambda path: removed.append(os.path.relpath(path, tmp_path)))
    got = usage.collect(parent)
    assert (got.cpu_seconds, got.peak_memory_bytes) == (1.5, 44_851_200)
    assert sorted(removed) == sorted(f"{c}/{parent}" for c in ("memory", "cpuacct", "pids"))


def test_v2_totals(tmp_path, monkeypatch):
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    usage = AttemptUsage.for_engine({"CgroupDriver": "cgroupfs", "CgroupVersion": "2"}, root=str(tmp_path))
    assert usage.version == 2
    parent = usage.new_parent()
    (tmp_path / parent).mkdir()
    (tmp_path / parent / "cpu.stat").write_text("usage_usec 250000\nuser_usec 200000\n")
    (tmp_path / parent / "memory.peak").write_text("1048576\n")
    monkeypatch.setattr(os, "rmdir", lambda path: None)
    got = usage.collect(parent)
    assert (got.cpu_seconds, got.peak_memory_bytes) == (0.25, 1048576)


def test_unreadable_totals_are_none_not_an_error(tmp_path, monkeypatch):
    (tmp_path / "memory").mkdir()
    usage = AttemptUsage.for_engine({"CgroupDriver": "cgroupfs", "CgroupVersion": "1"}, root=str(tmp_path))
    monkeypatch.setattr(os, "rmdir", lambda path: None)
    got = usage.collect("dockyard-gone")
    assert (got.cpu_seconds, got.peak_memory_bytes) == (None, None)


def test_not_measured_where_it_cannot_work(tmp_path):
    (tmp_path / "memory").mkdir()
    assert AttemptUsage.for_engine({"CgroupDriver": "systemd", "CgroupVersion": "2"}, root=str(tmp_path)) is None
    assert AttemptUsage.for_engine({"CgroupDriver": "cgroupfs", "CgroupVersion": "1"}, root=str(tmp_path / "elsewhere")) is None
    assert AttemptUsage.for_engine({"CgroupDriver": "cgroupfs", "CgroupVersion": "2"}, root=str(tmp_path)) is None  # v1 here


def test_leftover_parents_are_removed_when_old_and_empty(tmp_path):
    usage = AttemptUsage(str(tmp_path), 1)
    (tmp_path / "memory").mkdir()
    old_empty, old_busy, young = "dockyard-old", "dockyard-busy", "dockyard-young"
    for name in (old_empty, old_busy, young):
        for controller in ("memory", "cpuacct"):
            (tmp_path / controller / name).mkdir(parents=True)
    (tmp_path / "memory" / old_busy / "0123abcd").mkdir()  # a running container's own cgroup
    (tmp_path / "memory" / "docker").mkdir()  # not ours
    an_hour_ago = time.time() - 3600
    for name in (old_empty, old_busy):
        os.utime(tmp_path / "memory" / name, (an_hour_ago, an_hour_ago))
    assert usage.remove_leftovers(600) == [old_empty]
    assert not (tmp_path / "memory" / old_empty).exists() and not (tmp_path / "cpuacct" / old_empty).exists()
    assert (
        (tmp_path / "memory" / old_busy).exists() and (tmp_path / "memory" / young).exists() and (tmp_path / "memory" / "docker").exists()
    )
