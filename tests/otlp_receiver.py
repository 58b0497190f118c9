"""A small OTLP/HTTP trace receiver for tests: it decodes what real processes export
(protobuf, as opentelemetry-exporter-otlp sends; JSON, as the `traced` sample posts)
into plain span records."""

from __future__ import annotations

import gzip
import http.server
import json
import threading
from dataclasses import dataclass, field

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse

KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


@dataclass
class Span:
    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    attributes: dict
    events: list[tuple[str, dict]] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    status: int = 0  # 0 unset, 1 ok, 2 error


def _value(any_value) -> object:
    which = any_value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    return getattr(any_value, which) if which else None


def _attributes(pairs) -> dict:
    return {kv.key: _value(kv.value) for kv in pairs}


def spans_of_protobuf(body: bytes) -> list[Span]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    found = []
    for resource_spans in request.resource_spans:
        service = _attributes(resource_spans.resource.attributes).get("service.name", "")
        for scope_spans in resource_spans.scope_spans:
            for s in scope_spans.spans:
                found.append(
                    Span(
                        service=service,
                        name=s.name,
                        kind=KINDS.get(s.kind, str(s.kind)),
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex() or None,
                        attributes=_attributes(s.attributes),
                        events=[(e.name, _attributes(e.attributes)) for e in s.events],
                        links=[(link.trace_id.hex(), link.span_id.hex()) for link in s.links],
                        status=s.status.code,
                    )
                )
    return found


def _json_value(value: dict) -> object:
    for key, inner in value.items():
        return inner if key != "intValue" else int(inner)
    return None


def spans_of_json(body: bytes) -> list[Span]:
    """OTLP/JSON: ids are hex strings, enums numbers."""
    found = []
    for resource_spans in json.loads(body).get("resourceSpans", []):
        resource = {a["key"]: _json_value(a["value"]) for a in resource_spans.get("resource", {}).get("attributes", [])}
        for scope_spans in resource_spans.get("scopeSpans", []):
            for s in scope_spans.get("spans", []):
                found.append(
                    Span(
                        service=resource.get("service.name", ""),
                        name=s["name"],
                        kind=KINDS.get(s.get("kind", 0), str(s.get("kind"))),
                        trace_id=s["traceId"],
                        span_id=s["spanId"],
                        parent_span_id=s.get("parentSpanId") or None,
                        attributes={a["key"]: _json_value(a["value"]) for a in s.get("attributes", [])},
                    )
                )
    return found


class Receiver:
    """Listens on each of `hosts` (one port for all), collecting the spans POSTed to /v1/traces."""

    def __init__(self, hosts: tuple[str, ...] = ("127.0.0.1",), port: int = 0):
        self.spans: list[Span] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                try:
                    if self.path != "/v1/traces":
                        raise ValueError(f"unexpected path {self.path}")
                    is_json = self.headers.get("Content-Type", "").startswith("application/json")
                    spans = spans_of_json(body) if is_json else spans_of_protobuf(body)
                except Exception as exc:  # recorded for the test to fail on
                    with receiver._lock:
                        receiver.errors.append(f"{self.path}: {exc!r}")
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver._lock:
                    receiver.spans.extend(spans)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format, *args):
                pass

        first = http.server.ThreadingHTTPServer((hosts[0], port), Handler)
        self.port = first.server_address[1]
        self._servers = [first] + [http.server.ThreadingHTTPServer((host, self.port), Handler) for host in hosts[1:]]
        for server in self._servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def endpoint(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}"

    def trace(self, trace_id: str) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
