"""Spans recorded for OTLP export without the SDK's per-span machinery.

The SDK's Span costs about 50-75 µs of CPU to make and end on this hardware
(attribute cleaning under a lock, a span-processor chain, a ReadableSpan copy
at the end); a submit makes three. `RecordedSpan` keeps what OTLP carries in
plain attributes and hands itself, once ended, to the SDK's BatchSpanProcessor
(OTEL_BSP_* honoured, fork-safe), whose exporter encodes it with
telemetry.otlp. Sampling is the SDK's sampler from OTEL_TRACES_SAMPLER(_ARG);
the service name and resource attributes are the SDK's Resource.

What is left out, on purpose: span limits (Dockyard's spans carry a handful
of short attributes), `tracestate`, and span processors other than the one
exporter. The console exporter (OTEL_TRACES_EXPORTER=console) keeps the SDK.
"""

from __future__ import annotations

import atexit
import os
import random
import time
import traceback
from collections.abc import Mapping, Sequence

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode
from opentelemetry.trace.propagation import _SPAN_KEY  # where the API keeps the current span: read directly, it is a parent's cost

from telemetry.otlp import OtlpExporter

_SAMPLED = trace.TraceFlags(trace.TraceFlags.SAMPLED)
_NOT_SAMPLED = trace.TraceFlags(trace.TraceFlags.DEFAULT)


def _decider(sampler: sampling.Sampler) -> tuple[sampling.Sampler, bool | None]:
    """A sampler, with its decision when it always decides the same."""
    return sampler, True if sampler is sampling.ALWAYS_ON else False if sampler is sampling.ALWAYS_OFF else None


class RecordedSpan(trace.Span):
    """A sampled span: what it records is what telemetry.otlp encodes."""

    __slots__ = (
        "_ended",
        "attributes",
        "context",
        "end_time",
        "events",
        "kind",
        "links",
        "name",
        "parent",
        "scope",
        "start_time",
        "status",
        "trace_id",
    )

    def __init__(self, name, context, trace_id, parent, kind, attributes, links, start_time, scope, ended):
        self.name = name
        self.context = context
        self.trace_id = trace_id
        self.parent = parent
        self.kind = kind
        self.start_time = start_time
        self.end_time = None
        self.attributes = dict(attributes) if attributes else {}
        # Events and links are rare: an empty tuple until there is one, so a span is fewer objects to collect.
        self.events: list[tuple[str, int, dict]] | tuple = ()
        self.links = [(link.context, dict(link.attributes or {})) for link in links] if links else ()
        self.status: tuple[int, str | None] = (0, None)
        self.scope = scope
        self._ended = ended

    def get_span_context(self) -> trace.SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self.end_time is None

    def set_attribute(self, key: str, value) -> None:
        if self.end_time is None:
            self.attributes[key] = value

    def set_attributes(self, attributes: Mapping) -> None:
        if self.end_time is None:
            self.attributes.update(attributes)

    def add_event(self, name: str, attributes: Mapping | None = None, timestamp: int | None = None) -> None:
        if self.end_time is None:
            if not self.events:
                self.events = []
            self.events.append((name, timestamp or time.time_ns(), dict(attributes) if attributes else {}))

    def add_link(self, context: trace.SpanContext, attributes: Mapping | None = None) -> None:
        if self.end_time is None and context.is_valid:
            if not self.links:
                self.links = []
            self.links.append((context, dict(attributes or {})))

    def update_name(self, name: str) -> None:
        if self.end_time is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self.end_time is not None:
            return
        if isinstance(status, Status):
            status, description = status.status_code, status.description
        if self.status[0] == StatusCode.OK.value:  # OK is final, as in the SDK
            return
        self.status = (status.value, description if status is StatusCode.ERROR else None)

    def record_exception(
        self, exception: BaseException, attributes: Mapping | None = None, timestamp: int | None = None, escaped: bool = False
    ) -> None:
        recorded = {
            "exception.type": type(exception).__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        recorded.update(attributes or {})
        self.add_event("exception", recorded, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is None:
            self.end_time = end_time or time.time_ns()
            self._ended(self)

    def __repr__(self) -> str:
        return f"RecordedSpan({self.name!r}, trace_id={self.context.trace_id:032x}, span_id={self.context.span_id:016x})"


class RecordingTracer(trace.Tracer):
    def __init__(self, scope: str, sampler: sampling.Sampler, ended):
        self._scope = scope
        self._ended = ended
        # Which sampler decides for a root span, and for each kind of parent (remote?, sampled?), as the SDK's
        # ParentBased chooses (any other sampler decides every span), with the decision when that sampler is
        # ALWAYS_ON or ALWAYS_OFF: then, as with the default parentbased_always_on, no sampler is called.
        if isinstance(sampler, sampling.ParentBased):
            self._root = _decider(sampler._root)
            self._by_parent = {
                (True, True): _decider(sampler._remote_parent_sampled),
                (True, False): _decider(sampler._remote_parent_not_sampled),
                (False, True): _decider(sampler._local_parent_sampled),
                (False, False): _decider(sampler._local_parent_not_sampled),
            }
        else:
            self._root = _decider(sampler)
            self._by_parent = dict.fromkeys([(True, True), (True, False), (False, True), (False, False)], self._root)
        self._local_sampled = self._by_parent[False, True]

    def start_span(
        self,
        name: str,
        context=None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: Mapping | None = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        current = (otel_context.get_current() if context is None else context).get(_SPAN_KEY)
        if type(current) is RecordedSpan:  # the usual parent: a span of this process, sampled since recorded
            parent, trace_id = current.context, current.trace_id
            sampler, sampled = self._local_sampled
        else:
            parent = trace.get_current_span(context).get_span_context()
            if parent.is_valid:
                trace_id = parent.trace_id
                sampler, sampled = self._by_parent[parent.is_remote, parent.trace_flags.sampled]
            else:
                parent, trace_id = None, random.getrandbits(128) or 1
                sampler, sampled = self._root
        if sampled is None:
            sampled = sampler.should_sample(context, trace_id, name, kind, attributes, links).decision.is_sampled()
        if not sampled:
            return trace.NonRecordingSpan(trace.SpanContext(trace_id, random.getrandbits(64) or 1, False, _NOT_SAMPLED))
        span_context = trace.SpanContext(trace_id, random.getrandbits(64) or 1, False, _SAMPLED)
        return RecordedSpan(
            name, span_context, trace_id, parent, kind, attributes, links, start_time or time.time_ns(), self._scope, self._ended
        )

    def start_as_current_span(
        self,
        name: str,
        context=None,
        kind=trace.SpanKind.INTERNAL,
        attributes=None,
        links=None,
        start_time=None,
        record_exception=True,
        set_status_on_exception=True,
        end_on_exit=True,
    ):
        span = self.start_span(name, context, kind, attributes, links, start_time)
        return trace.use_span(
            span, end_on_exit=end_on_exit, record_exception=record_exception, set_status_on_exception=set_status_on_exception
        )


QUEUE_SIZE, EXPORT_BATCH_SIZE = 8192, 2048


def batch_sizes(environ: Mapping[str, str]) -> dict[str, int | None]:
    """The batch processor's queue and export batch sizes: Dockyard's unless OTEL_BSP_MAX_QUEUE_SIZE or
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE is set, then the SDK's reading of both variables (and its defaults).

    Dockyard's are larger than the SDK's 512 of 2048 queued: each export request costs the exporting thread
    about as much CPU as encoding a few hundred spans whatever its size (docs/performance.md), and
    collectors take far larger requests (the OpenTelemetry Collector's own batches are 8192 spans)."""
    if "OTEL_BSP_MAX_QUEUE_SIZE" in environ or "OTEL_BSP_MAX_EXPORT_BATCH_SIZE" in environ:
        return {"max_queue_size": None, "max_export_batch_size": None}
    return {"max_queue_size": QUEUE_SIZE, "max_export_batch_size": EXPORT_BATCH_SIZE}


class RecordingTracerProvider(trace.TracerProvider):
    """The provider of a process that exports over OTLP/HTTP: recorded spans, batched, encoded, sent."""

    def __init__(self, resource: Resource, sampler: sampling.Sampler | None = None, exporter=None):
        self.resource = resource
        self.sampler = sampler or sampling._get_from_env_or_default()  # OTEL_TRACES_SAMPLER(_ARG), as the SDK reads them
        self._processor = BatchSpanProcessor(exporter or OtlpExporter(resource.attributes), **batch_sizes(os.environ))
        self._tracers: dict[str, RecordingTracer] = {}
        atexit.register(self.shutdown)  # send what is still queued, as the SDK's provider does

    def get_tracer(self, instrumenting_module_name: str, *args, **kwargs) -> trace.Tracer:
        tracer = self._tracers.get(instrumenting_module_name)
        if tracer is None:
            tracer = self._tracers[instrumenting_module_name] = RecordingTracer(
                instrumenting_module_name, self.sampler, self._processor.on_end
            )
        return tracer

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._processor.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self._processor.shutdown()
