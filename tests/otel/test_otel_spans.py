"""The tracker's spans, checked with the SDK's InMemorySpanExporter against real scripted runs:
ids, parents and times as the hooks emitted them, GenAI attributes per span kind, content only
when opted in, nested runs and runs inside an application's span."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, StatusCode

from rlm_core import hookimpl
from rlm_core.events import Iteration, LLMCall, RunInfo, RunResult, ToolCall
from rlm_core.testing import RunBuilder, check_trace
from rlm_plugins.otel import current_traceparent
from tests.otel.helpers import (
    MARKER,
    NO_MEMORY,
    by_name,
    demo,
    exported_view,
    hook_view,
    memory_tracker,
)

pytestmark = pytest.mark.usefixtures("in_tmp")


@pytest.fixture(autouse=True)
def _no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in (
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "TRACEPARENT",
    ):
        monkeypatch.delenv(variable, raising=False)


def test_every_hook_span_is_exported_once_with_its_ids_parents_and_times() -> None:
    tracker, exporter = memory_tracker()
    result, events = demo(tracker)
    assert result.converged
    check_trace(events)
    spans = exporter.get_finished_spans()
    assert len(spans) == len({f"{span.context.span_id:016x}" for span in spans})  # type: ignore[union-attr]
    assert exported_view(spans) == hook_view(events)
    assert tracker.counts.delivered == len(spans) == len(events) - 1
    assert (tracker.counts.failed, tracker.counts.dropped, tracker.counts.pending) == (0, 0, 0)
    names = sorted(span.name for span in spans)
    assert names == sorted(
        [
            "invoke_agent rlm",
            "setup",
            "retrieve_memory",
            *(f"iteration {index}" for index in range(4)),
            *(f"chat {event.model}" for event in events if isinstance(event, LLMCall)),
            *(f"execute_tool {event.name}" for event in events if isinstance(event, ToolCall)),
            "judgment",
            "extract_memory",
        ]
    )
    assert {span.resource.attributes["service.name"] for span in spans} == {"rlm"}
    assert {span.instrumentation_scope.name for span in spans} == {"rlm_core"}  # type: ignore[union-attr]


def test_lm_call_spans_carry_the_genai_attributes() -> None:
    tracker, exporter = memory_tracker()
    _, events = demo(tracker)
    calls = {event.span_id: event for event in events if isinstance(event, LLMCall)}
    spans = [span for span in exporter.get_finished_spans() if span.name.startswith("chat ")]
    assert len(spans) == len(calls) == 7
    for span in spans:
        call = calls[f"{span.context.span_id:016x}"]  # type: ignore[union-attr]
        assert span.name == f"chat {call.model}"
        assert span.kind is SpanKind.CLIENT
        attributes = dict(span.attributes or {})
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.request.model"] == call.model
        assert attributes["gen_ai.provider.name"] == call.provider
        assert attributes["gen_ai.response.model"] == call.response_model
        assert attributes["gen_ai.usage.input_tokens"] == call.prompt_tokens
        assert attributes["gen_ai.usage.output_tokens"] == call.completion_tokens
        assert attributes["gen_ai.response.finish_reasons"] == (call.finish_reason,)
        assert (attributes["rlm.llm.role"], attributes["rlm.llm.depth"]) == (call.role, call.depth)
        assert span.status.status_code is StatusCode.OK
    assert sorted(dict(s.attributes or {})["rlm.llm.role"] for s in spans) == sorted(
        ["root"] * 4 + ["sub", "judge", "extract"]
    )


def test_tool_run_iteration_and_memory_spans_carry_their_attributes() -> None:
    tracker, exporter = memory_tracker()
    result, events = demo(tracker, tags={"team": "kg"})
    spans = exporter.get_finished_spans()
    tools = [span for span in spans if span.name.startswith("execute_tool ")]
    assert [dict(s.attributes or {})["gen_ai.tool.name"] for s in tools] == [
        event.name for event in events if isinstance(event, ToolCall)
    ]
    for span in tools:
        assert dict(span.attributes or {})["gen_ai.operation.name"] == "execute_tool"
        assert span.name == f"execute_tool {dict(span.attributes or {})['gen_ai.tool.name']}"

    (root,) = by_name(spans, "invoke_agent rlm")
    attributes = dict(root.attributes or {})
    info = events[0]
    assert isinstance(info, RunInfo)
    assert attributes["gen_ai.operation.name"] == "invoke_agent"
    assert attributes["gen_ai.agent.name"] == "rlm"
    assert attributes["rlm.question"] == info.question
    assert attributes["rlm.ontology.name"] == info.ontology.name
    assert attributes["rlm.ontology.triples"] == info.ontology.triples
    assert attributes["rlm.outcome"] == "converged"
    assert attributes["rlm.iterations"] == result.iterations == 4
    assert attributes["gen_ai.usage.input_tokens"] == result.prompt_tokens
    assert attributes["gen_ai.usage.output_tokens"] == result.completion_tokens
    assert attributes["rlm.tag.team"] == "kg"
    assert root.parent is None

    steps = {e.index: e for e in events if isinstance(e, Iteration)}
    for index, step in steps.items():
        (span,) = by_name(spans, f"iteration {index}")
        values = dict(span.attributes or {})
        assert values["rlm.iteration.index"] == index
        assert values["rlm.iteration.code_chars"] == len(step.code)
        assert values["rlm.iteration.llm_calls_used"] == step.llm_calls_used

    (setup,) = by_name(spans, "setup")
    assert dict(setup.attributes or {})["rlm.ontology.format"] == "turtle"
    (retrieval,) = by_name(spans, "retrieve_memory")
    assert dict(retrieval.attributes or {})["rlm.memory.retrieved"] == 0  # a fresh store
    (judgment,) = by_name(spans, "judgment")
    assert dict(judgment.attributes or {})["rlm.judgment.success"] is True
    assert dict(judgment.attributes or {})["rlm.judgment.confidence"] == 0.9
    (extraction,) = by_name(spans, "extract_memory")
    assert dict(extraction.attributes or {})["rlm.memory.extracted"] == 2


def _all_text(exporter_spans: object) -> str:
    return json.dumps(
        [dict(span.attributes or {}) for span in exporter_spans],  # type: ignore[attr-defined]
        default=str,
    )


CONTENT_KEYS = {
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "rlm.iteration.code",
    "rlm.iteration.output",
    "rlm.iteration.reasoning",
    "rlm.judgment.reason",
    "rlm.answer",
}


def test_content_is_absent_by_default() -> None:
    tracker, exporter = memory_tracker()
    _, events = demo(tracker, config=NO_MEMORY, question=f"{MARKER}: which properties?")
    # the hooks carry the content (rlm-core captures it); the tracker leaves it out
    assert any(MARKER in m.text for e in events if isinstance(e, LLMCall) for m in e.messages)
    spans = exporter.get_finished_spans()
    keys = {key for span in spans for key in (span.attributes or {})}
    assert not keys & CONTENT_KEYS
    # the question is the run's subject, not conversation content: only rlm.question holds it
    (root,) = by_name(spans, "invoke_agent rlm")
    text_without_question = _all_text([s for s in spans if s is not root])
    assert MARKER not in text_without_question


@pytest.mark.parametrize("how", ["config", "environment"])
def test_content_is_present_when_opted_in(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if how == "environment":
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
        tracker, exporter = memory_tracker()
    else:
        tracker, exporter = memory_tracker(capture_content=True)
    _, events = demo(tracker, config=NO_MEMORY)
    calls = {e.span_id: e for e in events if isinstance(e, LLMCall)}
    for span in exporter.get_finished_spans():
        attributes = dict(span.attributes or {})
        call = calls.get(f"{span.context.span_id:016x}")  # type: ignore[union-attr]
        if call is not None:
            sent = json.loads(str(attributes["gen_ai.input.messages"]))
            assert sent == [
                {"role": m.role, "parts": [{"type": "text", "content": m.text}]}
                for m in call.messages
            ]
            (returned,) = json.loads(str(attributes["gen_ai.output.messages"]))
            assert returned["parts"] == [{"type": "text", "content": call.output}]
            assert returned["role"] == "assistant"
        if span.name.startswith("execute_tool "):
            assert "gen_ai.tool.call.arguments" in attributes
    (root,) = by_name(exporter.get_finished_spans(), "invoke_agent rlm")
    assert "coffee:usesEquipment" in str(dict(root.attributes or {})["rlm.answer"])


class NestFromATool:
    """Starts a nested run (to the same tracker) from the demo's third step's tool call."""

    def __init__(self, tracker: object) -> None:
        self.tracker = tracker
        self.nested: RunResult | None = None

    @hookimpl
    def tool_call(self, run: RunInfo, call: ToolCall) -> None:
        if run.depth == 0 and call.name == "sparql_select" and "?brew" in str(call.arguments):
            self.nested, _ = demo(self.tracker, config=NO_MEMORY)


def test_a_nested_run_is_in_the_same_trace_under_its_parents_iteration() -> None:
    tracker, exporter = memory_tracker()
    nester = NestFromATool(tracker)
    result, events = demo(tracker, nester, config=NO_MEMORY)
    assert nester.nested is not None
    assert nester.nested.converged
    check_trace(events)
    spans = exporter.get_finished_spans()
    assert exported_view(spans) == hook_view(events)
    roots = by_name(spans, "invoke_agent rlm")
    assert len(roots) == 2
    outer = next(s for s in roots if dict(s.attributes or {})["rlm.depth"] == 0)
    inner = next(s for s in roots if dict(s.attributes or {})["rlm.depth"] == 1)
    assert {span.context.trace_id for span in spans} == {outer.context.trace_id}  # type: ignore[union-attr]
    (step,) = [
        s
        for s in by_name(spans, "iteration 2")
        if s.parent is not None and s.parent.span_id == outer.context.span_id  # type: ignore[union-attr]
    ]
    assert inner.parent is not None
    assert inner.parent.span_id == step.context.span_id  # type: ignore[union-attr]
    assert dict(inner.attributes or {})["rlm.parent_run_id"] == result.run_id


def test_a_run_inside_an_application_span_joins_its_trace() -> None:
    # The application's own OpenTelemetry setup: its provider, not the global one, not ours.
    application = TracerProvider()
    tracer = application.get_tracer("my-app")
    tracker, exporter = memory_tracker()
    with tracer.start_as_current_span("handle request") as request:
        parent = request.get_span_context()
        result, _events = demo(tracker, config=NO_MEMORY, traceparent=current_traceparent())
    assert result.converged
    spans = exporter.get_finished_spans()
    assert {span.context.trace_id for span in spans} == {parent.trace_id}  # type: ignore[union-attr]
    (root,) = by_name(spans, "invoke_agent rlm")
    assert root.parent is not None
    assert (root.parent.span_id, root.parent.is_remote) == (parent.span_id, True)
    assert current_traceparent() is None  # outside any span


def test_run_start_alone_sends_nothing_and_run_end_sends_the_run() -> None:
    tracker, exporter = memory_tracker()
    builder = RunBuilder.demo()
    calls = builder.calls
    first = calls[0]
    assert first[0] == "run_start"
    tracker.run_start(**first[1])
    assert exporter.get_finished_spans() == ()
    for hook, kwargs in calls[1:]:
        getattr(tracker, hook)(**kwargs)
    assert len(by_name(exporter.get_finished_spans(), "invoke_agent rlm")) == 1


def test_secrets_never_leave_in_any_attribute() -> None:
    secret = "sk-abcdefghijklmnopqrstuvwx1234"
    tracker, exporter = memory_tracker(capture_content=True)
    demo(tracker, config=NO_MEMORY, question=f"which properties? (key {secret})")
    spans = exporter.get_finished_spans()
    (root,) = by_name(spans, "invoke_agent rlm")
    assert dict(root.attributes or {})["rlm.question"] == "which properties? (key [REDACTED])"
    assert secret not in json.dumps([dict(span.attributes or {}) for span in spans], default=str)


def test_a_closed_tracker_counts_what_it_could_not_send() -> None:
    tracker, exporter = memory_tracker(flush_timeout=0.5)
    assert tracker.close()
    builder = RunBuilder.demo()
    for hook, kwargs in builder.calls:
        getattr(tracker, hook)(**kwargs)
    assert exporter.get_finished_spans() == ()
    counts = tracker.counts
    assert counts.dropped == counts.submitted > 0
    assert counts.spooled_runs == 1
