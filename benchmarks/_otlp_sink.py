"""A local OTLP/HTTP endpoint for the engine benchmark's ``otel`` variant, run as its own process
so that receiving spans costs the measured process nothing: it answers every POST to
``/v1/traces`` with an empty ``ExportTraceServiceResponse`` and counts the requests.

Run: ``python benchmarks/_otlp_sink.py`` prints ``PORT`` when it listens; a GET to ``/count``
returns the number of POSTs received so far.
"""

from __future__ import annotations

import http.server
import sys


class _Sink(http.server.BaseHTTPRequestHandler):
    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/traces":
            self.send_error(404)
            return
        type(self).received += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")  # an empty ExportTraceServiceResponse
        self.end_headers()

    def do_GET(self) -> None:
        body = str(type(self).received).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def main() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
