"""Execute one delivery of a run: claim it, check its image, run its container, record the end."""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from dataclasses import dataclass

import docker
import docker.errors
import requests.exceptions

from actors.containers import ContainerRunner, ContainerSpec, InfrastructureError
from actors.images import ImageRefused, resolve_pinned_image
from actors.outcomes import INFRASTRUCTURE_ERROR, Verdict, judge
from actors.output import OutputCapture
from settings import Settings
from storage import run_states
from storage import runs as run_store
from storage.errors import NotFound
from storage.models import Run, utcnow
from storage.processors import get_processor

log = logging.getLogger(__name__)

LEASE_SECONDS = 60


@dataclass
class Executor:
    settings: Settings
    client: docker.DockerClient
    runner: ContainerRunner
    worker_name: str

    def execute(self, run_id: str) -> None:
        """Run one attempt of `run_id` if it is queued; a delivery for any other state is dropped."""
        run = Run.get_or_none(Run.id == run_id)
        if run is None:
            log.warning("run %s does not exist; dropping its message", run_id)
            return
        number = run.attempts + 1
        now = utcnow()
        claimed = run_states.transition(
            run_id,
            run_states.RUNNING,
            attempts=number,
            started_at=now,
            lease_owner=self.worker_name,
            lease_expires_at=now + dt.timedelta(seconds=LEASE_SECONDS),
        )
        if claimed is None:
            log.info("run %s is no longer queued; dropping this delivery", run_id)
            return
        attempt = run_store.start_attempt(run_id, number, self.worker_name)
        capture = OutputCapture(
            lambda text: run_store.append_log(run_id, number, text),
            max_log_bytes=self.settings.max_log_bytes,
            max_result_bytes=self.settings.max_result_bytes,
            tail_bytes=self.settings.log_tail_bytes,
        )
        verdict, container_id, exit_code, result = self._attempt(run, number, attempt.id, capture)
        capture.flush()
        run_store.finish_attempt(
            attempt.id,
            outcome=verdict.attempt_outcome,
            exit_code=exit_code,
            container_id=container_id,
            log_tail=capture.tail,
        )
        run_states.transition(
            run_id,
            verdict.run_state,
            reason=verdict.reason,
            message=verdict.message,
            result=result,
            exit_code=exit_code,
            error_reason=verdict.reason,
            error_message=verdict.message,
            finished_at=utcnow(),
            lease_owner=None,
            lease_expires_at=None,
        )

    def _attempt(self, run: Run, number: int, attempt_id: int, capture: OutputCapture):
        """Return (verdict, container id, exit code, result) for one attempt."""
        try:
            processor = get_processor(run.processor)
        except NotFound as exc:
            capture.note(f"refused: {exc}")
            return Verdict("failed", run_states.FAILED, "processor_missing", str(exc)), None, None, None
        try:
            image = resolve_pinned_image(self.client, processor.image)
        except ImageRefused as exc:
            capture.note(f"refused: {exc}")
            log.error("run %s refused: %s", run.id, exc)
            return (
                Verdict("failed", run_states.FAILED, "image_refused", str(exc)),
                None,
                None,
                None,
            )
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            return self._infrastructure_failure(run, capture, exc), None, None, None

        spec = ContainerSpec(
            image_id=image.id,
            command=processor.command,
            env={
                **(processor.env or {}),
                "DOCKYARD_RUN_ID": run.id,
                "DOCKYARD_ATTEMPT": str(number),
                "DOCKYARD_PROCESSOR": run.processor,
                "TRACEPARENT": f"00-{run.id}-{secrets.token_hex(8)}-01",
            },
            labels={
                "dockyard.run_id": run.id,
                "dockyard.attempt": str(number),
                "dockyard.worker": self.worker_name,
                "dockyard.processor": run.processor,
            },
            cpus=processor.cpus,
            memory_mb=processor.memory_mb,
            pids=processor.pids,
            network=processor.network,
            timeout_seconds=run.timeout_seconds,
            payload=json.dumps(run.payload, separators=(",", ":")).encode() + b"\n",
            user=self.settings.container_user,
            tmpfs_mb=self.settings.container_tmpfs_mb,
        )
        try:
            outcome = self.runner.run(
                spec,
                capture,
                on_created=lambda cid: run_store.set_attempt_container(attempt_id, cid),
            )
        except InfrastructureError as exc:
            return self._infrastructure_failure(run, capture, exc), None, None, None
        except Exception as exc:
            # A bug must not leave the run "running" forever: record it and move on.
            log.exception("run %s: unexpected error in the container runner", run.id)
            return self._infrastructure_failure(run, capture, exc), None, None, None
        verdict = judge(outcome, timeout_seconds=run.timeout_seconds, memory_mb=processor.memory_mb)
        result, problem = capture.result()
        if problem:
            capture.note(problem)
        return verdict, outcome.container_id, outcome.exit_code, result

    def _infrastructure_failure(self, run: Run, capture: OutputCapture, exc: Exception) -> Verdict:
        capture.note(f"infrastructure error: {exc}")
        log.error("run %s: infrastructure error: %s", run.id, exc)
        return Verdict(INFRASTRUCTURE_ERROR, run_states.FAILED, INFRASTRUCTURE_ERROR, str(exc))
