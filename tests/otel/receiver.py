"""A real OTLP/HTTP receiver for the tests: an ``http.server`` on 127.0.0.1 that decodes each
``ExportTraceServiceRequest`` (opentelemetry-proto) and keeps the spans. No tests here."""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import threading
from collections.abc import Iterator
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.mlflow.helpers import free_port


@dataclasses.dataclass(frozen=True)
class ReceivedSpan:
    """One span as it arrived: ids in hex, times in nanoseconds, attributes as plain values."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    start_ns: int
    end_ns: int
    kind: int
    status_code: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    headers: dict[str, str]


class Receiver:
    """What the server received; ``requests`` counts POSTs (also refused ones)."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self.url = ""
        self.lock = threading.Lock()

    def span_ids(self) -> list[str]:
        with self.lock:
            return [span.span_id for span in self.spans]

    def by_id(self) -> dict[str, ReceivedSpan]:
        with self.lock:
            return {span.span_id: span for span in self.spans}


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in any_value.array_value.values]
    if kind is None:
        return None
    return getattr(any_value, kind)


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _decode(body: bytes, headers: dict[str, str]) -> list[ReceivedSpan]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        kind=span.kind,
                        status_code=span.status.code,
                        attributes=_attributes(span.attributes),
                        resource=resource,
                        headers=headers,
                    )
                )
    return spans


@contextlib.contextmanager
def otlp_receiver(
    port: int | None = None, *, gate: threading.Event | None = None
) -> Iterator[Receiver]:
    """Serve ``/v1/traces`` on 127.0.0.1 (a free port unless given) until the block ends.

    With ``gate``, every request waits for it to be set before it is answered (a slow backend);
    it is set when the block ends.
    """
    receiver = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if gate is not None:
                gate.wait()
            with receiver.lock:
                receiver.requests += 1
            if self.path != "/v1/traces":
                self.send_error(404)
                return
            headers = {name.lower(): value for name, value in self.headers.items()}
            spans = _decode(body, headers)
            with receiver.lock:
                receiver.spans.extend(spans)
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port or free_port()), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="otlp-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        if gate is not None:
            gate.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
