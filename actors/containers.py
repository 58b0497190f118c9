"""Run one attempt in its own hardened container and report what happened as a value."""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from dataclasses import dataclass, field

import docker
import docker.errors
import requests.exceptions
from docker.utils.socket import frames_iter
from opentelemetry import trace

from actors.output import OutputCapture
from actors.usage import AttemptUsage

log = logging.getLogger(__name__)

FLUSH_INTERVAL_SECONDS = 0.25
# How long to wait for the output stream to drain after the container exits.
DRAIN_SECONDS = 5


class InfrastructureError(Exception):
    """The engine failed us (unreachable, refused a create...), not the processor."""


@dataclass(frozen=True)
class ContainerSpec:
    image_id: str
    command: list[str] | None
    env: dict[str, str]
    labels: dict[str, str]
    cpus: float
    memory_mb: int
    pids: int
    network: str
    timeout_seconds: float
    payload: bytes
    user: str
    tmpfs_mb: int


@dataclass(frozen=True)
class ContainerResult:
    container_id: str
    exit_code: int | None
    timed_out: bool = False
    oom_killed: bool = False
    # Why the runner killed it early at the caller's request (cancelled, lease lost).
    stopped: str | None = None
    started_at_monotonic: float = 0.0
    # From asking the engine to create the container to its start returning.
    start_seconds: float | None = None
    # What the container used (None where it is not measured: actors/usage.py).
    cpu_seconds: float | None = None
    peak_memory_bytes: int | None = None
    notes: list[str] = field(default_factory=list)


def container_options(spec: ContainerSpec) -> tuple[dict, dict]:
    """create_container() and host-config arguments: the hardening defaults of the processor contract."""
    memory = f"{spec.memory_mb}m"
    create = {
        "image": spec.image_id,
        # Like Kubernetes' `command`: a processor's command replaces the
        # image's entrypoint, so exactly that runs.
        "entrypoint": spec.command,
        "environment": spec.env,
        "labels": spec.labels,
        # NOTE: with detach left False, docker-py also sets StdinOnce: when
        # our attach half-closes stdin, the process sees EOF.
        "stdin_open": True,
        "tty": False,
        "user": spec.user,
    }
    host = {
        "network_mode": spec.network,
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={spec.tmpfs_mb}m,mode=1777"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "pids_limit": spec.pids,
        "mem_limit": memory,
        "memswap_limit": memory,  # memory + swap = memory: no extra swap
        "nano_cpus": int(spec.cpus * 1e9),
    }
    return create, host


class ContainerRunner:
    """Runs attempts on one Docker engine; with `usage`, measures what each container used (actors/usage.py)."""

    def __init__(self, client: docker.DockerClient, usage: AttemptUsage | None = None):
        self.client = client
        self.usage = usage
        # NOTE: over TLS, stdin cannot be half-closed (Python's SSLSocket.shutdown(SHUT_WR)
        # drops the TLS layer, so the output could no longer be read): stdin gets
        # an attach connection of its own, closed once the payload is sent.
        self.stdin_apart = client.api.base_url.startswith("https://")

    def run(self, spec: ContainerSpec, capture: OutputCapture, *, on_created=None, should_stop=None) -> ContainerResult:
        """Create, feed, start and wait for one container; always remove it.

        `should_stop()` is called every FLUSH_INTERVAL_SECONDS while the
        container runs; a non-empty string it returns kills the container
        and is reported as `stopped`. Each step is an event of the current span.
        """
        span = trace.get_current_span()
        create, host = container_options(spec)
        parent = self.usage.new_parent() if self.usage is not None else None
        if parent is not None:
            host["cgroup_parent"] = f"/{parent}"
        asked = time.monotonic()
        try:
            created = self.client.api.create_container(**create, host_config=self.client.api.create_host_config(**host))
            # No inspect round trip: start, wait, kill and remove need only the id.
            container = self.client.containers.prepare_model({"Id": created["Id"]})
        except docker.errors.ImageNotFound as exc:
            raise InfrastructureError(f"image vanished before create: {exc}") from exc
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            raise InfrastructureError(f"docker create failed: {exc}") from exc
        span.add_event("created", {"container.id": container.id})
        try:
            if on_created is not None:
                on_created(container.id)
            result = self._attach_and_wait(container, spec, capture, should_stop or (lambda: None), span, asked)
        except (
            docker.errors.APIError,
            requests.exceptions.RequestException,
            OSError,
        ) as exc:
            raise InfrastructureError(f"docker engine failed during the run: {exc}") from exc
        finally:
            self._remove(container)
            span.add_event("removed")
            # The container is gone: its parent cgroup holds its totals (and is removed after reading).
            used = self.usage.collect(parent) if parent is not None else None
        if used is None:
            return result
        return dataclasses.replace(result, cpu_seconds=used.cpu_seconds, peak_memory_bytes=used.peak_memory_bytes)

    def _attach_and_wait(self, container, spec: ContainerSpec, capture: OutputCapture, should_stop, span, asked: float) -> ContainerResult:
        stdin = None
        if self.stdin_apart:
            stdin = self.client.api.attach_socket(container.id, params={"stdin": 1, "stream": 1})
            sock = self.client.api.attach_socket(container.id, params={"stdout": 1, "stderr": 1, "stream": 1})
        else:
            sock = self.client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        reader = threading.Thread(
            target=_pump,
            args=(sock, capture),
            name=f"logs-{container.id[:12]}",
            daemon=True,
        )
        reader.start()
        try:
            container.start()
            started = time.monotonic()
            span.add_event("started")
            if stdin is None:
                _send_payload(sock, spec.payload)
            else:
                _send_payload(stdin, spec.payload, alone=True)
            exit_code, timed_out, stopped = self._wait(container, spec.timeout_seconds, started, capture, should_stop)
            span.add_event("exited", {"process.exit.code": -1 if exit_code is None else exit_code, "timed_out": timed_out})
            reader.join(DRAIN_SECONDS)
        finally:
            _close(sock)
            if stdin is not None:
                _close(stdin)
        capture.finish()
        # Only a failed exit can be the kernel's OOM kill: a clean exit needs no inspect round trip.
        oom = False
        if exit_code != 0 and not timed_out and not stopped:
            container.reload()
            oom = bool(container.attrs.get("State", {}).get("OOMKilled"))
        return ContainerResult(
            container_id=container.id,
            exit_code=exit_code,
            timed_out=timed_out,
            oom_killed=oom,
            stopped=stopped,
            started_at_monotonic=started,
            start_seconds=started - asked,
        )

    def _wait(
        self, container, timeout_seconds: float, started: float, capture: OutputCapture, should_stop
    ) -> tuple[int | None, bool, str | None]:
        """Wait for exit while flushing logs; kill at the deadline or when told to stop."""
        outcome: dict = {}
        done = threading.Event()

        def wait_for_exit():
            try:
                outcome["status"] = container.wait()
            except Exception as exc:
                outcome["error"] = exc
            finally:
                done.set()

        threading.Thread(target=wait_for_exit, name=f"wait-{container.id[:12]}", daemon=True).start()
        deadline = started + timeout_seconds
        timed_out, stopped = False, None
        while not done.wait(FLUSH_INTERVAL_SECONDS):
            capture.flush()
            if timed_out or stopped:
                continue
            if time.monotonic() >= deadline:
                timed_out = True
                capture.note(f"timed out after {timeout_seconds:g}s; killing the container")
                trace.get_current_span().add_event("killed", {"reason": "timed out"})
                _kill(container)
            elif stopped := should_stop():
                capture.note(f"{stopped}; killing the container")
                trace.get_current_span().add_event("killed", {"reason": stopped})
                _kill(container)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["status"].get("StatusCode"), timed_out, stopped

    def run_containers(self) -> list:
        """Every container on this engine labelled with a run (running or not), as the list call
        gives them (`attrs["Labels"]`, `attrs["Created"]` in epoch seconds)."""
        # NOTE: sparse: a full listing inspects each container, and one removed
        # in between makes the whole call fail.
        return self.client.containers.list(all=True, sparse=True, filters={"label": "dockyard.run_id"})

    def remove(self, container) -> None:
        """Force-remove a container; one already gone is fine."""
        self._remove(container)

    def remove_run_containers(self, run_id: str) -> list[str]:
        """Force-remove every container labelled with this run (a lost worker's leftovers); return their ids."""
        removed = []
        for container in self.client.containers.list(all=True, sparse=True, filters={"label": f"dockyard.run_id={run_id}"}):
            self._remove(container)
            removed.append(container.id)
        return removed

    def _remove(self, container) -> None:
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except (docker.errors.APIError, requests.exceptions.RequestException):
            log.warning(
                "could not remove container %s; orphan cleanup will retry",
                container.id,
                exc_info=True,
            )


def _pump(sock, capture: OutputCapture) -> None:
    try:
        for stream, data in frames_iter(sock, tty=False):
            capture.feed(stream, data)
    except OSError:
        pass  # socket closed under us at the end of the run


def _raw(sock):
    return getattr(sock, "_sock", sock)


def _send_payload(sock, payload: bytes, *, alone: bool = False) -> None:
    """Write the payload to the process's stdin, then end stdin.

    On the attach that also carries the output, half-close (SHUT_WR): closing
    would also stop our reading of the output, and without the FIN the
    process waits on stdin. On a stdin-only attach (`alone`, over TLS) end
    the whole connection: the container was made with StdinOnce (docker-py
    sets it with stdin_open), so the engine closes stdin with it; shutdown,
    not only close, as the attach's HTTP response still holds the socket.
    """
    raw = _raw(sock)
    try:
        raw.sendall(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the process exited without reading its stdin: not our failure
    try:
        raw.shutdown(socket.SHUT_RDWR if alone else socket.SHUT_WR)
    except OSError:
        pass
    if alone:
        _close(sock)


def _close(sock) -> None:
    try:
        sock.close()
    except OSError:
        pass


def _kill(container) -> None:
    try:
        container.kill()
    except docker.errors.APIError as exc:
        # 409: it exited between our deadline and the kill.
        if getattr(exc, "status_code", None) != 409:
            raise
