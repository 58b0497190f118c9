"""storage/specs.py: one set of models checks request bodies and describes them in /openapi.json."""

from __future__ import annotations

import pytest

from cli.main import build_parser
from settings import Settings
from storage.errors import InvalidSpec
from storage.run_states import RunState
from storage.specs import Overlap, Priority, ProcessorSpec, RunSubmission, ScheduleSpec, checked
from web.openapi import build_document

PIN = "sha256:" + "a" * 64


def errors(model, body, settings=None) -> dict[str, str]:
    with pytest.raises(InvalidSpec) as caught:
        checked(model, body, settings)
    return dict(caught.value.errors)


def test_every_bad_field_is_named_once_with_its_rule():
    assert errors(RunSubmission, {"processor": "", "priority": "urgent", "timeout_seconds": True, "labels": {"a:b": "c"}, "x": 1}) == {
        "processor": "required: the name of a registered processor",
        "priority": "must be one of low, normal, high, critical",
        "timeout_seconds": "must be a positive integer",
        "labels": "must be an object of at most 32 string values; keys without ':'; keys and values up to 128 characters",
        "x": "unknown field",
    }
    assert errors(RunSubmission, ["not", "an", "object"]) == {"body": "must be a JSON object"}


def test_nested_fields_are_named_with_their_path_and_the_settings_fill_the_message():
    body = {"image": "busybox:latest", "resources": {"cpus": 100, "gpus": 1}, "retry": {"retry_on_exit_codes": [0], "max_attempts": "3"}}
    assert errors(ProcessorSpec, body, Settings(max_timeout_seconds=90)) == {
        "image": "'busybox:latest' is not pinned by digest; use repo@sha256:<64 hex> from a registry, or a local image id sha256:<64 hex>",
        "resources.cpus": "must be a number from 0.01 to 64",
        "resources.gpus": "unknown field",
        "retry.max_attempts": "must be an integer from 1 to 100",
        "retry.retry_on_exit_codes": "must be a list of exit codes from 1 to 255",
    }
    assert errors(ProcessorSpec, {"image": PIN, "timeout_seconds": 1.5}, Settings(max_timeout_seconds=90)) == {
        "timeout_seconds": "must be an integer from 1 to 90"
    }
    assert errors(ProcessorSpec, {"image": PIN, "env": {"TRACEPARENT": "x"}}, Settings()) == {
        "env": "must not set DOCKYARD_* or TRACEPARENT (Dockyard sets them)"
    }


def test_json_types_are_strict_and_enums_read_their_values():
    assert errors(ScheduleSpec, {"name": "n", "cron": "* * * * *", "processor": "p", "paused": "false", "catchup_window_seconds": 1.0}) == {
        "catchup_window_seconds": "must be an integer from 0 to 604800",
        "paused": "must be true or false",
    }
    spec = checked(ScheduleSpec, {"name": "n", "cron": "0 3 * * *", "processor": "p", "priority": "high", "overlap": "forbid"})
    assert spec.stored()["priority"] == "high" and type(spec.stored()["overlap"]) is str


def test_the_openapi_document_is_made_from_the_same_models():
    schemas = build_document()["components"]["schemas"]
    assert set(schemas["RunRequest"]["properties"]) == set(RunSubmission.model_fields)
    assert set(schemas["ProcessorRequest"]["properties"]) == set(ProcessorSpec.model_fields)
    assert set(schemas["ScheduleRequest"]["properties"]) == set(ScheduleSpec.model_fields)
    assert schemas["ScheduleRequest"]["required"] == ["name", "cron", "processor"] and "required" not in schemas["ScheduleChange"]
    assert schemas["Priority"]["enum"] == list(Priority)
    assert schemas["Overlap"]["enum"] == list(Overlap)
    assert schemas["RunState"]["enum"] == list(RunState)


def test_the_cli_offers_the_enums_choices():
    parser = build_parser()
    runs = parser._subparsers._group_actions[0].choices["runs"]
    submit = runs._subparsers._group_actions[0].choices["submit"]
    schedules = parser._subparsers._group_actions[0].choices["schedules"]
    create = schedules._subparsers._group_actions[0].choices["create"]

    def choices(command, flag):
        return next(a.choices for a in command._actions if flag in a.option_strings)

    # values, not members: argparse prints the choices when one is refused
    assert list(choices(submit, "--priority")) == [p.value for p in Priority] == list(choices(create, "--priority"))
    assert list(choices(create, "--overlap")) == [o.value for o in Overlap]


def test_a_field_the_settings_fill_may_be_left_out_but_not_sent_as_null():
    assert errors(ProcessorSpec, {"image": PIN, "timeout_seconds": None, "resources": {"cpus": None}, "queue": None}, Settings()) == {
        "timeout_seconds": "must be an integer from 1 to 3600",
        "resources.cpus": "must be a number from 0.01 to 64",
        "queue": "must be 1-64 characters of letters, digits, '.', '-' or '_'",
    }
    stored = checked(ProcessorSpec, {"image": PIN}, Settings()).stored("echo", Settings())
    assert stored["timeout_seconds"] == Settings().default_timeout_seconds and stored["queue"] == Settings().default_queue


def test_a_processor_answers_with_its_numbers_as_written(client):
    resp = client.simulate_put("/v1/processors/report", json={"image": PIN, "retry": {"backoff_min_seconds": 0.5}})
    assert resp.status_code == 201, resp.text
    retry = client.simulate_get("/v1/processors/report").json["retry"]
    assert retry["backoff_min_seconds"] == 0.5 and retry["backoff_max_seconds"] == 60
    assert '"backoff_max_seconds":60,' in client.simulate_get("/v1/processors/report").text  # 60, not 60.0
