"""Tests of the webhook tracker: real scripted runs, a local receiver, rlm-core's fixtures.

``rlm_events`` and ``rlm_plugin_manager`` come with rlm-core (a ``pytest11`` plugin), and so does
the recorded demo run, so these tests need no network, no API key and no LM.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import rlm_core
from rlm_core.events import RunResult
from rlm_core.plugins import PluginManager
from rlm_core.testing import (
    DEMO_CASSETTE,
    DEMO_ONTOLOGY,
    DEMO_QUESTION,
    RecordingPlugin,
    RunBuilder,
    check_plugin,
)

from rlm_webhook_notifier import WebhookNotifier


class Receiver:
    """What the local webhook received; ``delay`` slows every answer down."""

    def __init__(self) -> None:
        self.url = ""
        self.bodies: list[dict[str, object]] = []
        self.headers: list[dict[str, str]] = []
        self.delay = 0.0


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """A webhook on 127.0.0.1 that records the JSON bodies posted to it."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # a configured HTTP proxy must not get these
    received = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(received.delay)
            received.bodies.append(json.loads(body))
            received.headers.append(dict(self.headers))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Keep the test output clean."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    received.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def demo_run(*plugins: object) -> RunResult:
    """Replay the recorded demo run (no LM, no network) with only ``plugins`` as trackers."""
    return rlm_core.run(
        DEMO_QUESTION,
        DEMO_ONTOLOGY,
        model=f"scripted:{DEMO_CASSETTE}",
        trackers=[],
        plugins=plugins,
    )


@pytest.fixture(autouse=True)
def scratch_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs write their files (memory, logs) into the working directory: make it a temporary
    one, with no rlm.toml."""
    monkeypatch.chdir(tmp_path)


def test_a_run_posts_its_summary(receiver: Receiver, rlm_events: RecordingPlugin) -> None:
    notifier = WebhookNotifier(url=receiver.url)
    result = demo_run(notifier)
    assert notifier.flush(timeout=5)
    [body] = receiver.bodies
    assert body["run_id"] == result.run_id == rlm_events.of("run_end")[0].payload.run_id
    assert body["status"] == "converged"
    assert body["question"] == DEMO_QUESTION
    assert body["answer"] == result.answer
    assert body["tokens"] == result.tokens
    assert isinstance(body["text"], str)
    assert result.run_id in body["text"]
    assert receiver.headers[0]["Content-Type"] == "application/json"


def test_only_failures_skips_runs_that_converged(
    receiver: Receiver,
    rlm_events: RecordingPlugin,
    rlm_plugin_manager: Callable[..., PluginManager],
) -> None:
    demo_run()  # rlm_events records the run's payloads
    [end] = rlm_events.of("run_end")
    run, result = end.kwargs["run"], end.kwargs["result"]
    failed = dataclasses.replace(result, converged=False, error="TimeoutError: LM took too long")
    notifier = WebhookNotifier(url=receiver.url, only_failures=True)
    manager = rlm_plugin_manager(notifier)
    manager.hook.run_end(run=run, result=result)
    manager.hook.run_end(run=run, result=failed)
    assert notifier.flush(timeout=5)
    assert [body["status"] for body in receiver.bodies] == ["failed"]
    assert receiver.bodies[0]["error"] == "TimeoutError: LM took too long"


def test_the_judgment_goes_into_the_summary(
    receiver: Receiver, rlm_plugin_manager: Callable[..., PluginManager]
) -> None:
    built = RunBuilder("webhook-judged")
    verdict = built.judgment(success=True, reason="grounded", confidence=0.8)
    run, result = built.run, built.end()
    notifier = WebhookNotifier(url=receiver.url, headers={"Authorization": "Bearer t0ken"})
    manager = rlm_plugin_manager(notifier)
    manager.hook.judgment(run=run, verdict=verdict)
    manager.hook.run_end(run=run, result=result)
    assert notifier.flush(timeout=5)
    assert receiver.bodies[0]["judgment"] == {
        "success": True,
        "confidence": 0.8,
        "reason": "grounded",
    }
    assert receiver.headers[0]["Authorization"] == "Bearer t0ken"


def test_a_slow_webhook_does_not_slow_the_run_down(receiver: Receiver) -> None:
    receiver.delay = 1.0
    notifier = WebhookNotifier(url=receiver.url, timeout=5)
    started = time.perf_counter()
    demo_run(notifier)
    assert time.perf_counter() - started < receiver.delay
    assert notifier.flush(timeout=5)
    assert notifier.stats.delivered == 1


def test_an_unreachable_webhook_is_counted_not_raised(receiver: Receiver) -> None:
    notifier = WebhookNotifier(url="http://127.0.0.1:9/unreachable", timeout=1)
    result = demo_run(notifier)
    assert result.converged
    assert notifier.flush(timeout=5)
    assert notifier.stats.failed == 1


def test_the_tracker_passes_the_conformance_kit(receiver: Receiver) -> None:
    notifier = WebhookNotifier(url=receiver.url)
    check_plugin(notifier).raise_for_failures()
    assert receiver.bodies, "the kit's runs were posted"


@pytest.mark.parametrize("url", [None, "", "ftp://example.org/hook", "hooks.example.org"])
def test_a_missing_or_bad_url_is_a_clear_error(url: str | None) -> None:
    with pytest.raises(ValueError, match=r"\[plugins\.webhook\] url"):
        WebhookNotifier(url=url)
