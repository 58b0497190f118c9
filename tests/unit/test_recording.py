"""Recorded spans (telemetry/recording.py) and their OTLP encoding (telemetry/otlp.py): every field decodes
with opentelemetry-proto as written, sampling follows the SDK's samplers, and spans reach a real OTLP/HTTP
receiver through the SDK's exporter."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import sampling
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from telemetry.otlp import encode_spans
from telemetry.recording import EXPORT_BATCH_SIZE, QUEUE_SIZE, RecordedSpan, RecordingTracerProvider, batch_sizes
from telemetry.tracing import context_of, current_span, tracer_provider
from tests.otlp_receiver import Receiver

TRACE, SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"


class Kept(SpanExporter):
    def __init__(self):
        self.spans = []

    def export(self, spans):
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def provider(sampler=None) -> tuple[RecordingTracerProvider, Kept]:
    kept = Kept()
    return RecordingTracerProvider(Resource.create({"service.name": "svc", "deployment": "test"}), sampler, exporter=kept), kept


def test_every_field_decodes_as_written():
    made, kept = provider(sampling.ALWAYS_ON)
    tracer = made.get_tracer("dockyard.web")
    remote = context_of(f"00-{TRACE}-{SPAN}-01")
    with current_span(tracer, "POST /v1/runs", context=remote, kind=SpanKind.SERVER, attributes={"http.route": "/v1/runs"}) as server:
        server.set_attributes(
            {"n": -3, "big": 2**40, "ratio": 0.25, "ok": True, "off": False, "tags": ["a", "b"], "ids": [1, 2], "u": "ü\u2603"}
        )
        server.add_event("created", {"container": "abc"}, timestamp=1_700_000_000_123_456_789)
        server.add_link(trace.SpanContext(int("1" * 32, 16), int("2" * 16, 16), is_remote=True), {"dockyard.link": "replay_of"})
        with current_span(made.get_tracer("dockyard.storage"), "dockyard.runs.insert"):
            pass
        server.set_status(Status(StatusCode.ERROR, "boom"))
    made.force_flush()
    server_span, insert = sorted(kept.spans, key=lambda s: s.name)

    request = ExportTraceServiceRequest.FromString(encode_spans(kept.spans, made.resource.attributes))
    [resource_spans] = request.resource_spans
    resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
    assert resource["service.name"] == "svc" and resource["deployment"] == "test"
    scopes = {s.scope.name: s.spans for s in resource_spans.scope_spans}
    assert set(scopes) == {"dockyard.web", "dockyard.storage"}
    [decoded] = scopes["dockyard.web"]
    [child] = scopes["dockyard.storage"]

    assert decoded.trace_id.hex() == TRACE and decoded.parent_span_id.hex() == SPAN
    assert decoded.span_id == server_span.context.span_id.to_bytes(8, "big")
    assert decoded.name == "POST /v1/runs" and decoded.kind == 2  # SPAN_KIND_SERVER
    assert (decoded.start_time_unix_nano, decoded.end_time_unix_nano) == (server_span.start_time, server_span.end_time)
    assert decoded.start_time_unix_nano <= decoded.end_time_unix_nano
    values = {kv.key: kv.value for kv in decoded.attributes}
    assert values["http.route"].string_value == "/v1/runs" and values["u"].string_value == "ü\u2603"
    assert values["n"].int_value == -3 and values["big"].int_value == 2**40 and values["ratio"].double_value == 0.25
    assert values["ok"].bool_value is True and values["off"].HasField("bool_value") and values["off"].bool_value is False
    assert [v.string_value for v in values["tags"].array_value.values] == ["a", "b"]
    assert [v.int_value for v in values["ids"].array_value.values] == [1, 2]
    [event] = decoded.events
    assert (event.name, event.time_unix_nano) == ("created", 1_700_000_000_123_456_789)
    assert {kv.key: kv.value.string_value for kv in event.attributes} == {"container": "abc"}
    [link] = decoded.links
    assert (link.trace_id.hex(), link.span_id.hex()) == ("1" * 32, "2" * 16) and link.flags == 0x300
    assert link.attributes[0].key == "dockyard.link"
    assert (decoded.status.code, decoded.status.message) == (2, "boom")  # STATUS_CODE_ERROR
    assert decoded.flags == 0x300  # its parent is known to be remote

    assert child.parent_span_id == decoded.span_id and child.trace_id == decoded.trace_id
    assert child.kind == 1 and child.flags == 0x100 and not child.HasField("status")
    assert insert.parent is server_span.context


def test_exceptions_are_events_and_ended_spans_change_no_more():
    made, kept = provider(sampling.ALWAYS_ON)
    with pytest.raises(KeyError), current_span(made.get_tracer("t"), "work") as span:
        raise KeyError("gone")
    span.set_attribute("late", 1)
    span.add_event("late")
    span.end()  # a second end sends nothing again
    made.force_flush()
    [ended] = kept.spans
    assert ended.status == (StatusCode.ERROR.value, "KeyError: 'gone'")
    [event] = ended.events
    assert event[0] == "exception" and event[2]["exception.type"] == "KeyError" and "Traceback" in event[2]["exception.stacktrace"]
    assert "late" not in ended.attributes and len(ended.events) == 1


def test_sampling_follows_the_sdks_samplers():
    made, _ = provider(sampling.ParentBased(sampling.ALWAYS_OFF))
    tracer = made.get_tracer("t")
    assert not tracer.start_span("root").is_recording()  # the root sampler says no
    sampled = tracer.start_span("s", context=context_of(f"00-{TRACE}-{SPAN}-01"))
    assert isinstance(sampled, RecordedSpan) and sampled.context.trace_flags.sampled  # a sampled caller is followed
    unsampled = tracer.start_span("s", context=context_of(f"00-{TRACE}-{SPAN}-00"))
    assert not unsampled.is_recording() and unsampled.get_span_context().trace_id == int(TRACE, 16)
    child = tracer.start_span("child", context=trace.set_span_in_context(sampled))
    assert child.is_recording() and child.parent is sampled.context  # a local parent decides without the sampler

    none, _ = provider(sampling.TraceIdRatioBased(0.0))
    assert not none.get_tracer("t").start_span("root").is_recording()
    # A sampler that is not parent-based decides every span, whatever the parent says.
    assert not none.get_tracer("t").start_span("s", context=context_of(f"00-{TRACE}-{SPAN}-01")).is_recording()
    off, _ = provider(sampling.ALWAYS_OFF)
    assert not off.get_tracer("t").start_span("s", context=context_of(f"00-{TRACE}-{SPAN}-01")).is_recording()
    assert not off.get_tracer("t").start_span("s", context=trace.set_span_in_context(sampled)).is_recording()
    ratio, _ = provider(sampling.ParentBased(sampling.TraceIdRatioBased(1.0), remote_parent_not_sampled=sampling.ALWAYS_ON))
    assert ratio.get_tracer("t").start_span("root").is_recording()  # the root sampler is asked
    assert ratio.get_tracer("t").start_span("s", context=context_of(f"00-{TRACE}-{SPAN}-00")).is_recording()
    every, _ = provider(sampling.ALWAYS_ON)
    root = every.get_tracer("t").start_span("root", links=[Link(sampled.context, {"why": "x"})])
    assert root.is_recording() and root.parent is None and root.links == [(sampled.context, {"why": "x"})]


def test_spans_reach_an_otlp_receiver_through_the_sdks_exporter(monkeypatch):
    receiver = Receiver()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    made = tracer_provider("dockyard-web", {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint()})
    try:
        assert isinstance(made, RecordingTracerProvider)
        tracer = made.get_tracer("t")
        with current_span(tracer, "outer", kind=SpanKind.PRODUCER) as outer, current_span(tracer, "inner"):
            pass
        assert made.force_flush(5000)
        assert not receiver.errors, receiver.errors
        trace_id = format(outer.get_span_context().trace_id, "032x")
        spans = {s.name: s for s in receiver.trace(trace_id)}
        assert set(spans) == {"outer", "inner"}
        assert spans["inner"].parent_span_id == spans["outer"].span_id and spans["outer"].parent_span_id is None
        assert spans["outer"].kind == "PRODUCER" and spans["outer"].service == "dockyard-web"
    finally:
        made.shutdown()
        receiver.close()


def test_a_span_that_cannot_be_encoded_is_dropped_and_logged_without_costing_the_batch(caplog):
    class Unprintable:
        def __str__(self):
            raise RuntimeError("no text")

    made, kept = provider(sampling.ALWAYS_ON)
    tracer = made.get_tracer("t")
    with current_span(tracer, "odd") as odd:
        odd.set_attribute("value", Unprintable())
    with current_span(tracer, "fine"):
        pass
    made.force_flush()
    request = ExportTraceServiceRequest.FromString(encode_spans(kept.spans, {}))
    assert [span.name for span in request.resource_spans[0].scope_spans[0].spans] == ["fine"]
    assert "span 'odd' could not be encoded for export; dropped" in caplog.text


def test_recurring_attribute_values_encode_with_their_own_types():
    made, kept = provider(sampling.ALWAYS_ON)
    tracer = made.get_tracer("t")
    for value in (1, True, "1", 1, True, 1.0):  # equal as dict keys, not as OTLP values
        with current_span(tracer, "s", attributes={"v": value}):
            pass
    made.force_flush()
    spans = ExportTraceServiceRequest.FromString(encode_spans(kept.spans, {})).resource_spans[0].scope_spans[0].spans
    assert [span.attributes[0].value.WhichOneof("value") for span in spans] == [
        "int_value",
        "bool_value",
        "string_value",
        "int_value",
        "bool_value",
        "double_value",
    ]


def test_export_batches_are_dockyards_size_unless_an_otel_bsp_size_is_set():
    assert batch_sizes({}) == {"max_queue_size": QUEUE_SIZE, "max_export_batch_size": EXPORT_BATCH_SIZE}
    assert EXPORT_BATCH_SIZE <= QUEUE_SIZE
    for variable in ("OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"):
        # One set: the SDK reads both (a queue of 100 with Dockyard's batch of 2048 would be refused).
        assert batch_sizes({variable: "100"}) == {"max_queue_size": None, "max_export_batch_size": None}
