"""Logs, traces and their configuration: telemetry/ on its own, and the spans a submit through the API records."""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from settings import Settings, SettingsError
from telemetry import logs
from telemetry.otlp import OtlpExporter
from telemetry.recording import RecordingTracerProvider
from telemetry.tracing import (
    TracingError,
    context_of,
    exporter_name,
    link_to,
    trace_id_of,
    traceparent,
    tracer_provider,
)
from tests.conftest import published
from tests.storage_cases import make_processor
from tests.unit.test_api import submit

TRACE, SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "none"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "none"),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "none"),
    ],
)
def test_an_exporter_runs_only_when_asked_for(environ, expected):
    assert exporter_name(environ) == expected


def test_what_cannot_be_honoured_is_refused_naming_the_variable():
    with pytest.raises(TracingError, match="OTEL_TRACES_EXPORTER: 'zipkin' is not supported"):
        tracer_provider("dockyard-web", {"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(TracingError, match="OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' is not supported"):
        tracer_provider("dockyard-web", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})


def test_with_nothing_set_spans_have_real_ids_but_nothing_is_recorded():
    tracer = tracer_provider("dockyard-web", {}).get_tracer("t")
    span = tracer.start_span("s")
    assert not span.is_recording() and span.get_span_context().is_valid
    assert not span.get_span_context().trace_flags.sampled
    with tracer.start_as_current_span("outer") as outer:
        inner = tracer.start_span("inner")
        assert inner.get_span_context().trace_id == outer.get_span_context().trace_id
        assert inner.get_span_context().span_id != outer.get_span_context().span_id
    # A caller's sampled context is passed on sampled, for the processor's own tracing.
    sampled = tracer.start_span("s", context=context_of(f"00-{TRACE}-{SPAN}-01"))
    assert sampled.get_span_context().trace_id == int(TRACE, 16) and sampled.get_span_context().trace_flags.sampled


def test_an_endpoint_gets_recorded_spans_and_an_otlp_batch_exporter():
    provider = tracer_provider("dockyard-worker", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"})
    assert isinstance(provider, RecordingTracerProvider)
    assert provider.resource.attributes["service.name"] == "dockyard-worker"
    try:
        assert isinstance(provider._processor, BatchSpanProcessor)
        assert isinstance(provider._processor.span_exporter, OtlpExporter)
        assert provider.get_tracer("t").start_span("s").is_recording()
    finally:
        provider.shutdown()


def test_the_console_exporter_is_the_sdks():
    provider = tracer_provider("dockyard-worker", {"OTEL_TRACES_EXPORTER": "console"})
    try:
        [processor] = provider._active_span_processor._span_processors
        assert isinstance(processor.span_exporter, ConsoleSpanExporter)
    finally:
        provider.shutdown()


def test_traceparent_strings_round_trip():
    context = context_of(f"00-{TRACE}-{SPAN}-01")
    assert traceparent(trace.get_current_span(context)) == f"00-{TRACE}-{SPAN}-01"
    assert trace_id_of(f"00-{TRACE}-{SPAN}-01") == TRACE
    [link] = link_to(f"00-{TRACE}-{SPAN}-01")
    assert (link.context.trace_id, link.context.span_id) == (int(TRACE, 16), int(SPAN, 16))
    for bad in (None, "", "garbage", f"00-{'0' * 32}-{SPAN}-01"):
        assert context_of(bad) is None and link_to(bad) == []
    assert trace_id_of(None) is None and trace_id_of("garbage") is None
    assert traceparent(trace.INVALID_SPAN) is None


def line_of(log_format: str, emit) -> str:
    out = io.StringIO()
    logger = logging.getLogger("tests.telemetry")
    handler = logs.handler(log_format, out)
    logger.addHandler(handler)
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
    return out.getvalue()


def test_json_lines_carry_the_context_and_the_current_span(spans):
    def emit(logger):
        with trace.get_tracer("t").start_as_current_span("work") as span, logs.log_context(run_id="r1", attempt=2, tenant=None):
            logger.warning("attempt %d of %s", 2, "r1")
            emit.ids = (format(span.get_span_context().trace_id, "032x"), format(span.get_span_context().span_id, "016x"))

    line = json.loads(line_of("json", emit))
    assert list(line)[:4] == ["time", "level", "logger", "message"]
    assert line["time"].endswith("Z") and line["level"] == "WARNING" and line["logger"] == "tests.telemetry"
    assert line["message"] == "attempt 2 of r1"
    assert (line["run_id"], line["attempt"], "tenant" in line) == ("r1", 2, False)
    assert (line["trace_id"], line["span_id"]) == emit.ids


def test_json_lines_keep_a_traceback_on_one_line():
    def emit(logger):
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")

    text = line_of("json", emit)
    assert text.count("\n") == 1 and "ValueError: boom" in json.loads(text)["exc_info"]


def test_text_lines_append_the_context():
    def emit(logger):
        with logs.log_context(run_id="r1", schedule_id="s1"):
            logger.warning("hello")

    assert line_of("text", emit).rstrip().endswith("WARNING tests.telemetry hello [run_id=r1 schedule_id=s1]")


def test_log_context_refuses_unknown_fields_and_unwinds():
    with pytest.raises(TypeError, match="unknown fields \\['run'\\]"):
        with logs.log_context(run="x"):
            pass
    with logs.log_context(run_id="outer"):
        with logs.log_context(attempt=1):
            assert logs.current_fields() == {"run_id": "outer", "attempt": 1}
        assert logs.current_fields() == {"run_id": "outer"}
    assert logs.current_fields() == {}


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_auto_is_text_at_a_terminal_and_json_elsewhere():
    assert logs.resolve_format("auto", Tty()) == "text"
    assert logs.resolve_format("auto", io.StringIO()) == "json"
    assert logs.resolve_format("text", io.StringIO()) == "text"


def test_a_bad_log_format_is_refused():
    with pytest.raises(SettingsError, match="DOCKYARD_LOG_FORMAT: must be one of auto, json, text"):
        Settings.from_env({"DOCKYARD_LOG_FORMAT": "xml"})


def by_name(spans):
    return {span.name: span for span in spans.get_finished_spans()}


def test_a_submit_is_one_trace_from_the_request_to_the_message(client, broker, spans):
    resp = submit(client, {"processor": "echo"}, headers={"traceparent": f"00-{TRACE}-{SPAN}-01"})
    assert resp.status_code == 201 and resp.json["trace_id"] == TRACE
    found = by_name(spans)
    assert set(found) == {"POST /v1/runs", "dockyard.runs.insert", "runs publish"}  # no submit span under a request's
    server, insert, publish = (found[n] for n in ("POST /v1/runs", "dockyard.runs.insert", "runs publish"))
    assert server.parent.span_id == int(SPAN, 16) and server.kind == trace.SpanKind.SERVER
    assert server.attributes["http.route"] == "/v1/runs" and server.attributes["http.response.status_code"] == 201
    assert insert.parent.span_id == publish.parent.span_id == server.context.span_id
    assert publish.kind == trace.SpanKind.PRODUCER and server.attributes["dockyard.run_id"] == resp.json["id"]
    # The message carries the publish span's context, the row the submit span's.
    [message] = published(broker)
    options = json.loads(message)["options"]
    assert context_of(options["traceparent"]) is not None
    assert trace.get_current_span(context_of(options["traceparent"])).get_span_context().span_id == publish.context.span_id
    assert {span.context.trace_id for span in found.values()} == {int(TRACE, 16)}


def test_a_replay_is_a_new_trace_linked_to_the_original(client, spans):
    original = submit(client, {"processor": "echo"}).json
    client.simulate_post(f"/v1/runs/{original['id']}/cancel")
    original_request = by_name(spans)["POST /v1/runs"]
    spans.clear()
    replay = client.simulate_post(f"/v1/runs/{original['id']}/replay").json
    assert replay["trace_id"] != original["trace_id"]
    [link] = by_name(spans)["POST /v1/runs/{run_id}/replay"].links
    assert (link.context.trace_id, link.context.span_id) == (int(original["trace_id"], 16), original_request.context.span_id)


def test_a_submit_outside_a_recording_span_gets_a_submit_span_of_its_own(dispatcher, sqlite_db, spans):
    make_processor("echo")
    run = dispatcher.submit("echo", tenant_id="default")
    found = by_name(spans)
    submitted = found["dockyard.submit"]
    assert submitted.parent is None and submitted.attributes["dockyard.run_id"] == run.id
    assert found["dockyard.runs.insert"].parent.span_id == found["runs publish"].parent.span_id == submitted.context.span_id
    assert run.traceparent == f"00-{submitted.context.trace_id:032x}-{submitted.context.span_id:016x}-01"


def test_probes_make_no_span(client, spans):
    for path in ("/healthz", "/readyz", "/metrics"):
        client.simulate_get(path)
    assert spans.get_finished_spans() == ()
