"""Each API request is a server span, named by its route template (`POST /v1/runs`) when routed and
continuing the caller's W3C `traceparent` header; whatever the request does (a submit's insert and publish)
is a child of it. Probes and scrapes make no span. When spans are not exported, no server span is
made: a caller's traceparent only becomes the context the request's work continues."""

from __future__ import annotations

import falcon
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from telemetry.tracing import context_of, exporting, tracer

UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
tracing = tracer(__name__)


class RequestTracing:
    """Falcon middleware: starts the span when the request arrives, ends it with the route and the status."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.path in UNTRACED_PATHS:
            return
        caller = context_of(req.get_header("traceparent"))
        if not exporting():
            if caller is not None:
                req.context.trace_token = otel_context.attach(caller)
            return
        span = tracing.start_span(
            req.method,
            context=caller,
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": req.method, "url.path": req.path},
        )
        req.context.trace_span = span
        req.context.trace_token = otel_context.attach(trace.set_span_in_context(span))

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, req_succeeded: bool) -> None:
        span = getattr(req.context, "trace_span", None)
        if span is None:
            if (token := getattr(req.context, "trace_token", None)) is not None:
                otel_context.detach(token)
            return
        status = resp.status_code
        if req.uri_template:  # routed: the span is named by its route template
            span.update_name(f"{req.method} {req.uri_template}")
            span.set_attributes({"http.route": req.uri_template, "http.response.status_code": status})
        else:
            span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        otel_context.detach(req.context.trace_token)
