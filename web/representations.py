"""JSON shapes of the API's resources."""

from __future__ import annotations

import datetime as dt

from storage.models import AuditEvent, Run, RunAttempt, RunEvent, Schedule, ScheduleEvent
from storage.processors import processor_as_dict


def timestamp(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def run_json(run: Run) -> dict:
    error = None
    if run.error_reason:
        error = {"reason": run.error_reason, "message": run.error_message}
    return {
        "id": run.id,
        "processor": run.processor,
        "state": run.state,
        "priority": run.priority,
        "payload": run.payload,
        "labels": run.labels or {},
        "attempts": run.attempts,
        "max_attempts": run.max_attempts,
        "timeout_seconds": run.timeout_seconds,
        "result": run.result,
        "exit_code": run.exit_code,
        "error": error,
        "schedule_id": run.schedule_id,
        "scheduled_for": timestamp(run.scheduled_for),
        "replay_of": run.replay_of,
        "created_at": timestamp(run.created_at),
        "started_at": timestamp(run.started_at),
        "finished_at": timestamp(run.finished_at),
    }


def attempt_json(a: RunAttempt) -> dict:
    return {
        "number": a.number,
        "outcome": a.outcome,
        "exit_code": a.exit_code,
        "worker": a.worker,
        "container_id": a.container_id,
        "log_tail": a.log_tail,
        "started_at": timestamp(a.started_at),
        "finished_at": timestamp(a.finished_at),
    }


def event_json(e: RunEvent) -> dict:
    return {
        "from_state": e.from_state,
        "to_state": e.to_state,
        "reason": e.reason,
        "message": e.message,
        "at": timestamp(e.at),
    }


def processor_json(p) -> dict:
    data = processor_as_dict(p)
    data["created_at"] = timestamp(data["created_at"])
    data["updated_at"] = timestamp(data["updated_at"])
    return data


def schedule_json(s: Schedule, events: list[ScheduleEvent] | None = None) -> dict:
    data = {
        "id": s.id,
        "name": s.name,
        "cron": s.cron,
        "timezone": s.timezone,
        "processor": s.processor,
        "payload": s.payload,
        "priority": s.priority,
        "overlap": s.overlap,
        "catchup_window_seconds": s.catchup_window_seconds,
        "paused": s.paused,
        "next_fire_at": timestamp(s.next_fire_at),
        "last_fired_at": timestamp(s.last_fired_at),
        "created_at": timestamp(s.created_at),
        "updated_at": timestamp(s.updated_at),
    }
    if events is not None:
        data["recent"] = [
            {"scheduled_for": timestamp(e.scheduled_for), "kind": e.kind, "run_id": e.run_id, "message": e.message, "at": timestamp(e.at)}
            for e in events
        ]
    return data


def audit_json(e: AuditEvent) -> dict:
    return {
        "id": e.id,
        "at": timestamp(e.at),
        "actor": e.actor,
        "tenant_id": e.tenant_id,
        "action": e.action,
        "target": e.target,
        "detail": e.detail,
    }
