"""A stand-in trace collector for benchmarks: accepts OTLP/HTTP protobuf exports on a loopback port,
counts the spans, and answers as a collector does.

    python -m bench.otlp_sink PORT        (GET /count answers {"requests": N, "spans": M})
"""

from __future__ import annotations

import http.server
import json
import sys
import threading

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse

ANSWER = ExportTraceServiceResponse().SerializeToString()


def serve(port: int) -> None:
    counts = {"requests": 0, "spans": 0}
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a collector

        def do_POST(self):
            request = ExportTraceServiceRequest()
            request.ParseFromString(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            spans = sum(len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans)
            with lock:
                counts["requests"] += 1
                counts["spans"] += spans
            self._answer(ANSWER, "application/x-protobuf")

        def do_GET(self):
            with lock:
                self._answer(json.dumps(counts).encode(), "application/json")

        def _answer(self, body: bytes, content_type: str):
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
