"""The demo run exported over OTLP/HTTP to a real ``mlflow server`` (SQLite store) on
127.0.0.1, at its ``/v1/traces`` with the ``x-mlflow-experiment-id`` header, and read back with
``MlflowClient.search_traces``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rlm_core.events import LLMCall, RunInfo
from rlm_core.hookspecs import RunLocation
from rlm_core.testing import check_trace
from rlm_plugins.otel import OtelTracker
from tests.mlflow.helpers import client, free_port, mlflow_server
from tests.otel.helpers import demo, expected_name, span_spans

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("in_tmp")]

SERVER_BOUND = 180.0
_SEARCH_TIMEOUT = 30.0  # the server writes spans as they arrive; the test waits, it does not time


def test_the_demo_run_lands_in_an_mlflow_server_as_the_same_trace(in_tmp: Path) -> None:
    with mlflow_server(in_tmp / "server", free_port()) as uri:
        mlflow_client = client(uri)
        experiment_id = mlflow_client.create_experiment("otel-demo")
        # The server's first OTLP request takes it tens of seconds (it loads its tracing
        # stack then): bounds far above that, since this test checks content, not speed.
        tracker = OtelTracker(
            endpoint=uri,
            headers={"x-mlflow-experiment-id": experiment_id},
            timeout=SERVER_BOUND,
            flush_timeout=SERVER_BOUND,
        )
        result, events = demo(tracker)
        assert result.converged
        check_trace(events)
        assert tracker.close()
        assert tracker.counts.delivered == len(span_spans(events))
        info = events[0]
        assert isinstance(info, RunInfo)
        assert tracker.run_location(info) == RunLocation(f"{uri}/v1/traces (trace {info.trace_id})")
        deadline = time.monotonic() + _SEARCH_TIMEOUT
        traces = []
        while time.monotonic() < deadline:
            traces = list(mlflow_client.search_traces(locations=[experiment_id]))
            if traces and len(traces[0].data.spans) == len(span_spans(events)):
                break
            time.sleep(0.2)
    (trace,) = traces
    spans = {span.span_id: span for span in trace.data.spans}
    names = {event.span_id: expected_name(event) for event in span_spans(events)}
    assert {span_id: span.name for span_id, span in spans.items()} == names
    assert {span_id: span.parent_id for span_id, span in spans.items()} == {
        event.span_id: event.parent_span_id for event in span_spans(events)
    }
    calls = [event for event in events if isinstance(event, LLMCall)]
    assert len(calls) == 7
    for call in calls:
        span = spans[call.span_id]
        assert span.get_attribute("gen_ai.usage.input_tokens") == call.prompt_tokens
        assert span.get_attribute("gen_ai.usage.output_tokens") == call.completion_tokens
        assert span.get_attribute("gen_ai.request.model") == call.model
    root = spans[info.span_id]
    assert root.name == "invoke_agent rlm"
    assert root.get_attribute("rlm.question") == info.question
    assert trace.info.trace_id.endswith(info.trace_id)
