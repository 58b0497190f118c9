"""OpenTelemetry tracing, configured only by the standard OTEL_* variables.

An exporter runs only when one is asked for: `OTEL_EXPORTER_OTLP_ENDPOINT`
(or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, or `OTEL_TRACES_EXPORTER`
set to `otlp` or `console`. Without one, the SDK still gives every run a
real trace id (stored on the run, written in its log lines, handed to its
container as TRACEPARENT) but samples nothing: no span is recorded.

A run's trace context travels as a W3C `traceparent` string: in the run's
row, in its message's options, and in its container's environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

EXPORTERS = ("otlp", "console", "none")
PROTOCOLS = ("http/protobuf",)
_propagator = TraceContextTextMapPropagator()


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


def _otlp_exporter(environ: Mapping[str, str]):
    for key in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = environ.get(key, "").strip()
        if protocol and protocol not in PROTOCOLS:
            raise TracingError(f"{key}: {protocol!r} is not supported (Dockyard exports over {', '.join(PROTOCOLS)})")
        if protocol:
            break
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout and compression from OTEL_EXPORTER_OTLP_*


def tracer_provider(default_service_name: str, environ: Mapping[str, str] | None = None) -> TracerProvider:
    """The tracer provider the environment asks for, named `default_service_name` unless OTEL_SERVICE_NAME
    says otherwise. Raises TracingError for an OTEL_* value it cannot honour.

    `environ` decides whether and where to export; the SDK reads the other
    variables (service name, resource attributes, sampler, OTEL_BSP_*,
    OTEL_EXPORTER_OTLP_* details) from the process environment itself.
    """
    environ = os.environ if environ is None else environ
    exporter = exporter_name(environ)
    resource = Resource.create({} if environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: default_service_name})
    if exporter == "none":
        # Real ids, nothing recorded; a caller's sampled context is still passed on sampled.
        return TracerProvider(resource=resource, sampler=ParentBased(ALWAYS_OFF))
    provider = TracerProvider(resource=resource)  # the sampler from OTEL_TRACES_SAMPLER(_ARG)
    span_exporter = _otlp_exporter(environ) if exporter == "otlp" else ConsoleSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(span_exporter))  # OTEL_BSP_* tune it
    return provider


def configure_tracing(default_service_name: str) -> TracerProvider:
    """Entry points call this once: the process's tracer provider, from the OTEL_* variables."""
    provider = tracer_provider(default_service_name)
    trace.set_tracer_provider(provider)
    return provider


def tracer(name: str) -> trace.Tracer:
    """The tracer of a module (the no-op one until an entry point configures tracing)."""
    return trace.get_tracer(name)


def traceparent(span: trace.Span | None = None) -> str | None:
    """The W3C traceparent of `span` (the current one by default), or None if it has no valid context."""
    span = trace.get_current_span() if span is None else span
    if not span.get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent")


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
