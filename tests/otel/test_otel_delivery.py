"""Delivery over real OTLP/HTTP to a local receiver: the conformance kit, an endpoint refusing
connections (the run ends within the flush bound, the spans are spooled) and ``rlm replay``
sending them once, with the same ids."""

from __future__ import annotations

import collections
import logging
import threading
from pathlib import Path

import pytest

from rlm_core.cli import main
from rlm_core.events import RunInfo, RunResult
from rlm_core.hookspecs import RunLocation, hookimpl
from rlm_core.runlog import read_log
from rlm_core.testing import check_plugin, check_trace
from rlm_plugins.otel import OtelTracker
from tests.mlflow.helpers import free_port
from tests.mlflow.helpers import replay_file as emit_log
from tests.otel.helpers import NO_MEMORY, demo, hook_view, span_spans
from tests.otel.receiver import otlp_receiver

pytestmark = pytest.mark.usefixtures("in_tmp")


class PublishesAMetric:
    """Publishes one run-level number, as the memory-metrics tracker does."""

    @hookimpl
    def run_metrics(self, run: RunInfo, result: RunResult) -> dict[str, float]:
        return {"answer_chars": float(len(result.answer or ""))}


def test_the_demo_reaches_a_real_receiver_with_the_hooks_ids_and_times() -> None:
    with otlp_receiver() as receiver:
        tracker = OtelTracker(
            endpoint=receiver.url, headers={"x-team": "kg"}, service_name="rlm-tests"
        )
        result, events = demo(tracker)
        assert result.converged
        tracker.close()
    check_trace(events)
    received = receiver.by_id()
    assert len(received) == len(receiver.spans)  # each span once
    view = {
        span_id: (span.parent_span_id, span.start_ns, span.end_ns, span.trace_id)
        for span_id, span in received.items()
    }
    assert view == hook_view(events)
    assert {span.resource["service.name"] for span in received.values()} == {"rlm-tests"}
    assert {span.headers["x-team"] for span in received.values()} == {"kg"}
    info = events[0]
    assert isinstance(info, RunInfo)
    assert tracker.run_location(info) == RunLocation(
        f"{receiver.url}/v1/traces (trace {info.trace_id})"
    )


def test_the_tracker_passes_the_conformance_kit() -> None:
    with otlp_receiver() as receiver:
        tracker = OtelTracker(endpoint=receiver.url, flush_timeout=5.0)
        report = check_plugin(tracker, flush_timeout=5.0, run_end_budget_ms=5000.0)
        report.raise_for_failures()
        tracker.close()
    counts = tracker.counts
    assert counts.submitted == counts.delivered == len(receiver.spans) > 0
    assert (counts.failed, counts.dropped, counts.spooled_runs) == (0, 0, 0)


def test_an_unreachable_endpoint_spools_the_spans_and_replay_sends_them_once(
    in_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens there: connections are refused
    tracker = OtelTracker(endpoint=f"http://127.0.0.1:{port}", timeout=1.0, flush_timeout=3.0)
    with caplog.at_level(logging.WARNING, logger="rlm.otel"):
        result, events = demo(tracker, PublishesAMetric(), config=NO_MEMORY)
    assert result.converged  # the run itself is not failed by its tracker
    spool = in_tmp / "otel-spool" / f"{result.run_id}.jsonl"
    assert spool.is_file()
    assert tracker.counts.failed == len(span_spans(events))
    info = events[0]
    assert isinstance(info, RunInfo)
    assert tracker.run_location(info) == RunLocation(
        f"{spool} ({len(span_spans(events))} span(s) did not reach "
        f"http://127.0.0.1:{port}/v1/traces; send them with: rlm replay {spool} --to otel)",
        delivered=False,
    )
    assert f"rlm replay {spool} --to otel" in caplog.text
    assert read_log(spool).problems == []

    with otlp_receiver(port) as receiver:
        (in_tmp / "rlm.toml").write_text(
            f'[plugins.otel]\nendpoint = "{receiver.url}"\nspool_dir = "replay-spool"\n',
            encoding="utf-8",
        )
        assert main(["replay", str(spool), "--to", "otel"]) == 0
    sent = collections.Counter(receiver.span_ids())
    assert sent == collections.Counter(list(hook_view(events)))  # every span, once
    view = {
        span.span_id: (span.parent_span_id, span.start_ns, span.end_ns, span.trace_id)
        for span in receiver.spans
    }
    assert view == hook_view(events)
    assert not (in_tmp / "replay-spool").exists()
    # the run-level metric published before run_end travelled in the spool too
    (root,) = [span for span in receiver.spans if span.name == "invoke_agent rlm"]
    assert root.attributes["rlm.metric.answer_chars"] == float(len(result.answer or ""))


def test_a_slow_endpoint_fills_the_bounded_queue_and_every_span_still_arrives(
    in_tmp: Path,
) -> None:
    gate = threading.Event()
    with otlp_receiver(gate=gate) as receiver:
        # The first batch (max_queue_size spans) hangs at the endpoint; every later span finds
        # the queue full and is dropped, counted and spooled.
        tracker = OtelTracker(
            endpoint=receiver.url, max_queue_size=4, flush_timeout=0.5, timeout=30.0
        )
        result, events = demo(tracker, config=NO_MEMORY)
        assert result.converged
        spans = hook_view(events)
        counts = tracker.counts
        assert counts.submitted == len(spans)
        assert counts.dropped == len(spans) - 4
        assert counts.pending == 4
        spool = in_tmp / "otel-spool" / f"{result.run_id}.jsonl"
        assert len(read_log(spool).records) == len(spans)  # dropped and unacknowledged alike
        gate.set()  # the backend recovers: the hanging batch is answered
        assert tracker.flush(10.0)
        late = set(receiver.span_ids())
        assert len(late) == 4
        replay_tracker = OtelTracker(endpoint=receiver.url, spool_dir="replay-spool")
        emit_log(spool, replay_tracker)
        assert replay_tracker.close()
    received = collections.Counter(receiver.span_ids())
    assert set(received) == set(spans)
    # the slow batch arrived late and again from the spool (same ids: a backend dedupes them)
    assert {span_id for span_id, count in received.items() if count == 2} == late
    assert all(count == 1 for span_id, count in received.items() if span_id not in late)
