"""A tracker for a slow HTTP backend: hooks only queue, a background thread ships batches.

Every event of every run goes to an HTTP collector as JSON lines. The collector may take seconds
per request; the run does not notice, because the hooks hand events to
:class:`rlm_core.delivery.BackgroundDelivery` and return. Run this file to see it against a
deliberately slow collector on 127.0.0.1::

    python docs/examples/slow_http_backend.py
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rlm_core import hookimpl
from rlm_core.delivery import BackgroundDelivery, DeliveryStats
from rlm_core.events import Event, Iteration, LLMCall, RunInfo, RunResult, ToolCall


class HttpEventShipper:
    """Ships every event to ``url`` in batches of JSON lines, never on the engine thread.

    :param url: the collector's endpoint.
    :param timeout: seconds one request may take before the batch counts as failed.
    :param batch_size: at most this many events per request.
    :param max_queue: events waiting beyond this are dropped, and counted in :attr:`stats`.
    """

    name = "http_events"

    def __init__(
        self, url: str, timeout: float = 10.0, batch_size: int = 100, max_queue: int = 10_000
    ) -> None:
        self.url = url
        self.timeout = timeout
        self._delivery: BackgroundDelivery[dict[str, Any]] = BackgroundDelivery(
            self._ship,
            name="rlm-http-events",
            batch_size=batch_size,
            max_queue=max_queue,
            when_full="drop",  # a backlog must never block the engine thread
        )

    @hookimpl
    def run_start(self, run: RunInfo) -> None:
        self._queue(run)

    @hookimpl
    def iteration(self, run: RunInfo, step: Iteration) -> None:
        self._queue(step)

    @hookimpl
    def llm_call(self, run: RunInfo, call: LLMCall) -> None:
        self._queue(call)

    @hookimpl
    def tool_call(self, run: RunInfo, call: ToolCall) -> None:
        self._queue(call)

    @hookimpl
    def run_end(self, run: RunInfo, result: RunResult) -> None:
        # No flush here: waiting for the backend would put its latency back on the engine
        # thread. The helper flushes (bounded) at process exit; callers can flush() earlier.
        self._queue(result)

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for everything queued so far to be shipped."""
        return self._delivery.flush(timeout)

    @property
    def stats(self) -> DeliveryStats:
        """Events submitted, delivered, failed and dropped: losses are counted, never silent."""
        return self._delivery.stats

    def _queue(self, event: Event) -> None:
        # to_dict() is cheap and makes the item independent of the engine's objects.
        self._delivery.submit(event.to_dict())

    def _ship(self, batch: list[dict[str, Any]]) -> None:
        body = "\n".join(json.dumps(item) for item in batch).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/x-ndjson"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            response.read()


@contextmanager
def slow_collector(delay: float) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A collector on 127.0.0.1 that takes ``delay`` seconds per request: its URL and the
    events it received so far."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(delay)
            received.extend(json.loads(line) for line in body.splitlines())
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the demo prints its own summary."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/events", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def main() -> None:
    """Replay the bundled demo run with the shipper against a collector that takes 0.5 s."""
    import rlm_core
    from rlm_core.testing import DEMO_CASSETTE, DEMO_ONTOLOGY, DEMO_QUESTION

    with slow_collector(delay=0.5) as (url, received):
        shipper = HttpEventShipper(url, batch_size=5)
        started = time.perf_counter()
        rlm_core.run(
            DEMO_QUESTION,
            DEMO_ONTOLOGY,
            model=f"scripted:{DEMO_CASSETTE}",
            trackers=[],
            plugins=[shipper],
        )
        ran = time.perf_counter() - started
        shipped = shipper.flush(timeout=30)
        print(f"run took {ran:.2f} s; collector then needed {time.perf_counter() - started:.2f} s")
        print(f"flushed: {shipped}; received {len(received)} events; {shipper.stats}")


if __name__ == "__main__":
    main()
