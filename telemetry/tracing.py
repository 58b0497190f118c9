"""OpenTelemetry tracing, configured only by the standard OTEL_* variables.

An exporter runs only when one is asked for: `OTEL_EXPORTER_OTLP_ENDPOINT`
(or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, or `OTEL_TRACES_EXPORTER`
set to `otlp` or `console`. Without one, the ids-only provider below still
gives every run a real trace id (stored on the run, written in its log
lines, handed to its container as TRACEPARENT) and records nothing.

A run's trace context travels as a W3C `traceparent` string: in the run's
row, in its message's options, and in its container's environment.

Cost, measured (docs/performance.md): the SDK spends about 50-75 µs of CPU
to make and end a span and 60-70 µs to encode it for export; a submit makes
three. So OTLP export records spans with telemetry.recording and encodes
them with telemetry.otlp instead. Without an exporter the ids-only provider
below costs a few µs.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

EXPORTERS = ("otlp", "console", "none")
PROTOCOLS = ("http/protobuf",)
_propagator = TraceContextTextMapPropagator()
# Whether spans go anywhere: without an exporter the detail spans (detail_span) are not even made.
_exporting = False


class TracingError(ValueError):
    """An OTEL_* variable asks for something Dockyard cannot do."""


def exporter_name(environ: Mapping[str, str]) -> str:
    """Which exporter the environment asks for: "otlp", "console" or "none" (nothing asked for)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return "none"
    asked = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if asked:
        if asked not in EXPORTERS:
            raise TracingError(f"OTEL_TRACES_EXPORTER: {asked!r} is not supported (use one of {', '.join(EXPORTERS)})")
        return asked
    if environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return "otlp"
    return "none"


def _check_protocol(environ: Mapping[str, str]) -> None:
    for key in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = environ.get(key, "").strip()
        if protocol and protocol not in PROTOCOLS:
            raise TracingError(f"{key}: {protocol!r} is not supported (Dockyard exports over {', '.join(PROTOCOLS)})")
        if protocol:
            return


def tracer_provider(default_service_name: str, environ: Mapping[str, str] | None = None) -> trace.TracerProvider:
    """The tracer provider the environment asks for, named `default_service_name` unless OTEL_SERVICE_NAME
    says otherwise. Raises TracingError for an OTEL_* value it cannot honour.

    `environ` decides whether and where to export; the SDK's parts read the
    other variables (service name, resource attributes, sampler, OTEL_BSP_*,
    OTEL_EXPORTER_OTLP_* details) from the process environment themselves.
    OTLP export records spans with telemetry.recording (a fraction of the
    SDK's cost per span); the console exporter, for debugging, uses the SDK.
    """
    environ = os.environ if environ is None else environ
    exporter = exporter_name(environ)
    if exporter == "none":
        return IdsOnlyTracerProvider()
    resource = Resource.create({} if environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: default_service_name})
    if exporter == "otlp":
        _check_protocol(environ)
        from telemetry.recording import RecordingTracerProvider

        return RecordingTracerProvider(resource)
    provider = TracerProvider(resource=resource)  # the sampler from OTEL_TRACES_SAMPLER(_ARG)
    provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))  # OTEL_BSP_* tune it
    return provider


class IdsOnlyTracer(trace.Tracer):
    """Spans that are only ids: a new span id in its parent's trace (a new trace without one), the parent's
    sampled flag passed on, nothing recorded. What the SDK does with a sampler that drops everything,
    without its machinery: the submit path pays a few µs for a real trace id."""

    def start_span(self, name, context=None, kind=trace.SpanKind.INTERNAL, attributes=None, links=None, start_time=None, **_):
        parent = trace.get_current_span(context).get_span_context()
        if parent.is_valid:
            trace_id, flags = parent.trace_id, parent.trace_flags
        else:
            trace_id, flags = random.getrandbits(128) or 1, trace.TraceFlags(trace.TraceFlags.DEFAULT)
        return trace.NonRecordingSpan(trace.SpanContext(trace_id, random.getrandbits(64) or 1, is_remote=False, trace_flags=flags))

    def start_as_current_span(self, name, context=None, kind=trace.SpanKind.INTERNAL, attributes=None, links=None, **kwargs):
        return trace.use_span(self.start_span(name, context, kind, attributes, links), end_on_exit=True)


class IdsOnlyTracerProvider(trace.TracerProvider):
    """The provider of a process that exports nothing."""

    _tracer = IdsOnlyTracer()

    def get_tracer(self, *args, **kwargs) -> trace.Tracer:
        return self._tracer


def configure_tracing(default_service_name: str) -> trace.TracerProvider:
    """Entry points call this once: the process's tracer provider, from the OTEL_* variables."""
    provider = tracer_provider(default_service_name)
    use_provider(provider, exporting=not isinstance(provider, IdsOnlyTracerProvider))
    return provider


def use_provider(provider: trace.TracerProvider, *, exporting: bool) -> None:
    """Make `provider` the process's; `exporting` says whether its spans go anywhere (tests pass their own)."""
    global _exporting
    trace.set_tracer_provider(provider)
    _exporting = exporting


def exporting() -> bool:
    """True when this process's spans are exported."""
    return _exporting


class leaf_span:
    """`with leaf_span(tracer, name, ...) as span:` a span ended after the block, recording an exception that
    leaves it, but never made current: for work that starts no span of its own, which then costs no context
    switch. (Log lines inside the block carry the enclosing span's id.)"""

    __slots__ = ("span",)

    def __init__(self, tracer_: trace.Tracer, name: str, **kwargs):
        self.span = tracer_.start_span(name, **kwargs)

    def __enter__(self) -> trace.Span:
        return self.span

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is not None and self.span.is_recording():
            self.span.record_exception(exc)
            self.span.set_status(Status(StatusCode.ERROR, f"{kind.__name__}: {exc}"))
        self.span.end()
        return False


class current_span(leaf_span):
    """`with current_span(tracer, name, ...) as span:` the span is current inside the block and ended after it;
    an exception leaving the block is recorded on it as an error. Lighter than the SDK's start_as_current_span,
    which matters on the submit path."""

    __slots__ = ("_token",)

    def __enter__(self) -> trace.Span:
        self._token = otel_context.attach(trace.set_span_in_context(self.span))
        return self.span

    def __exit__(self, kind, exc, tb) -> bool:
        super().__exit__(kind, exc, tb)
        otel_context.detach(self._token)
        return False


class _Present:
    __slots__ = ("span",)

    def __init__(self, span: trace.Span):
        self.span = span

    def __enter__(self) -> trace.Span:
        return self.span

    def __exit__(self, kind, exc, tb) -> bool:
        return False


def submit_span(tracer_: trace.Tracer, attributes: dict, links: list[trace.Link]):
    """The span a new run belongs to: the current span when it records (an API request's, a schedule fire's),
    given the run's attributes and links; otherwise a new `dockyard.submit` span, current inside the block."""
    parent = trace.get_current_span()
    if parent.is_recording():
        parent.set_attributes(attributes)
        for link in links:
            parent.add_link(link.context, link.attributes)
        return _Present(parent)
    return current_span(tracer_, "dockyard.submit", attributes=attributes, links=links)


def detail_span(tracer_: trace.Tracer, name: str, *, context: otel_context.Context | None = None, **kwargs):
    """A span worth making only when spans are exported, around work that starts no span of its own (a
    submit's insert, its publish): a `leaf_span` then; otherwise the span of `context` (by default the
    current one) stands in for it, unchanged and unended."""
    if _exporting:
        return leaf_span(tracer_, name, context=context, **kwargs)
    return _Present(trace.get_current_span(context))


def tracer(name: str) -> trace.Tracer:
    """The tracer of a module (the no-op one until an entry point configures tracing)."""
    return trace.get_tracer(name)


def traceparent(span: trace.Span | None = None) -> str | None:
    """The W3C traceparent (version 00) of `span` (the current one by default), or None if it has no valid context.
    (Written here rather than by the propagator, which costs ten times more on the submit path; tracestate is not carried.)
    """
    context = (trace.get_current_span() if span is None else span).get_span_context()
    if not context.is_valid:
        return None
    # Only the sampled flag: level 1 of the W3C format reserves the other bits (set to 0).
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags & 0x01:02x}"


def context_of(traceparent_value: str | None) -> otel_context.Context | None:
    """The context a stored or received traceparent continues; None (the current one) if absent or malformed."""
    if not traceparent_value:
        return None
    extracted = _propagator.extract({"traceparent": traceparent_value})
    return extracted if trace.get_current_span(extracted).get_span_context().is_valid else None


def link_to(traceparent_value: str | None) -> list[trace.Link]:
    """A link to the span a traceparent names (a replay's link to its original run), or none."""
    found = context_of(traceparent_value)
    return [trace.Link(trace.get_current_span(found).get_span_context())] if found is not None else []


def trace_id_of(traceparent_value: str | None) -> str | None:
    """The 32-hex trace id inside a traceparent, or None."""
    if not traceparent_value:
        return None
    parts = traceparent_value.split("-")
    return parts[1] if len(parts) >= 4 and len(parts[1]) == 32 else None
