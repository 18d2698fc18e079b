"""Shared by the OpenTelemetry tracker tests: the demo run through the tracker, and the exported
spans as plain data to compare with the hooks' payloads. No tests here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rlm_core import RunResult, Settings, run
from rlm_core.config import MemorySettings
from rlm_core.events import Event, Iteration, LLMCall, RunInfo, ToolCall
from rlm_core.events import RunResult as Result
from rlm_core.testing import DEMO_CASSETTE, DEMO_ONTOLOGY, DEMO_QUESTION, capture_events
from rlm_plugins.otel import OtelTracker
from rlm_plugins.otel.attributes import nanoseconds

NO_MEMORY = Settings(memory=MemorySettings(enabled=False))
MARKER = "zebra-marker-7f3"  # appears in the question, so it is in the LM's messages


def memory_tracker(**options: Any) -> tuple[OtelTracker, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    return OtelTracker(exporter=exporter, **options), exporter


def demo(
    *plugins: object, question: str = DEMO_QUESTION, **options: Any
) -> tuple[RunResult, list[Event]]:
    """The bundled demo (memory on unless ``config`` says otherwise), with ``plugins``; asked
    another ``question``, its recording replays anyway (the tests mark content that way)."""
    options.setdefault("config", Settings())
    options.setdefault("allow_cassette_mismatch", question != DEMO_QUESTION)
    with capture_events() as events:
        result = run(
            question,
            DEMO_ONTOLOGY,
            model=f"scripted:{DEMO_CASSETTE}",
            trackers=[],
            plugins=plugins,
            **options,
        )
    return result, events.events()


def span_spans(events: Sequence[Event]) -> list[Event]:
    """One payload per span: every event but ``run_end`` (it closes the run's span)."""
    return [event for event in events if not isinstance(event, Result)]


def hook_view(events: Sequence[Event]) -> dict[str, tuple[str | None, int, int, str]]:
    """span id -> (parent, start ns, end ns, trace id) as the hooks emitted them."""
    runs = {event.run_id: event for event in events if isinstance(event, RunInfo)}
    ends = {event.run_id: event for event in events if isinstance(event, Result)}
    view = {}
    for event in span_spans(events):
        end = ends[event.run_id].timestamp if isinstance(event, RunInfo) else event.timestamp
        view[event.span_id] = (
            event.parent_span_id,
            nanoseconds(event.started_at),
            nanoseconds(end),
            runs[event.run_id].trace_id,
        )
    return view


def exported_view(spans: Sequence[ReadableSpan]) -> dict[str, tuple[str | None, int, int, str]]:
    """The same view of exported SDK spans."""
    view = {}
    for span in spans:
        assert span.context is not None
        parent = f"{span.parent.span_id:016x}" if span.parent is not None else None
        assert span.start_time is not None
        assert span.end_time is not None
        view[f"{span.context.span_id:016x}"] = (
            parent,
            span.start_time,
            span.end_time,
            f"{span.context.trace_id:032x}",
        )
    return view


def by_name(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def expected_name(event: Event) -> str:
    """The span name docs/trackers/otel.md gives each payload."""
    if isinstance(event, RunInfo):
        return "invoke_agent rlm"
    if isinstance(event, LLMCall):
        return f"chat {event.model}"
    if isinstance(event, ToolCall):
        return f"execute_tool {event.name}"
    if isinstance(event, Iteration):
        return f"iteration {event.index}"
    return {
        "setup": "setup",
        "memory_retrieved": "retrieve_memory",
        "judgment": "judgment",
        "memory_extracted": "extract_memory",
    }[event.kind]
