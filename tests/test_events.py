"""Payload dataclasses: lossless JSON round trip and strict decoding."""

from __future__ import annotations

import dataclasses
from datetime import UTC, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlm_core import events
from rlm_core.events import (
    SCHEMA_VERSION,
    Event,
    EventDecodeError,
    ExtractedMemory,
    Iteration,
    Judgment,
    Limits,
    LLMCall,
    MemoryExtraction,
    MemoryRetrieval,
    Message,
    OntologyInfo,
    RetrievedMemory,
    RunInfo,
    RunResult,
    Setup,
    ToolCall,
    event_from_dict,
)
from rlm_core.testing import RunBuilder
from tests.helpers.factories import run_info, run_result

text = st.text(max_size=40)
optional_text = st.none() | text
seconds = st.floats(min_value=0, max_value=1e6, allow_nan=False)
counts = st.integers(min_value=0, max_value=2**53)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | text
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
timestamps = st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=2))]))
hex16 = st.text("0123456789abcdef", min_size=16, max_size=16)
common: dict[str, Any] = {
    "run_id": text,
    "seq": counts,
    "span_id": hex16,
    "parent_span_id": st.none() | hex16,
    "started_at": timestamps,
    "timestamp": timestamps,
}
ontologies = st.builds(OntologyInfo, name=text, path=text, triples=counts, format=optional_text)

EVENT_STRATEGIES: dict[type[Event], st.SearchStrategy[Event]] = {
    RunInfo: st.builds(
        RunInfo,
        **common,
        trace_id=st.text("0123456789abcdef", min_size=32, max_size=32),
        depth=counts,
        question=text,
        ontology=ontologies,
        model=text,
        sub_model=optional_text,
        limits=st.builds(
            Limits,
            max_iterations=counts,
            max_llm_calls=counts,
            step_timeout=seconds,
            max_output_chars=counts,
        ),
        parent_run_id=optional_text,
        tags=st.dictionaries(text, text, max_size=3),
    ),
    Setup: st.builds(
        Setup,
        **common,
        ontology=ontologies,
        load_duration=seconds,
        index_duration=seconds,
        sense_card_duration=seconds,
        sense_card_chars=counts,
        error=optional_text,
    ),
    MemoryRetrieval: st.builds(
        MemoryRetrieval,
        **common,
        query=text,
        k=counts,
        items=st.lists(
            st.builds(RetrievedMemory, memory_id=text, title=text, rank=counts, score=seconds),
            max_size=3,
        ).map(tuple),
        duration=seconds,
    ),
    Iteration: st.builds(
        Iteration,
        **common,
        index=counts,
        reasoning=text,
        code=text,
        output=text,
        error=optional_text,
        duration=seconds,
        llm_calls_used=counts,
    ),
    LLMCall: st.builds(
        LLMCall,
        **common,
        model=text,
        role=text,
        depth=counts,
        prompt_tokens=st.none() | counts,
        completion_tokens=st.none() | counts,
        latency=seconds,
        cost=st.none() | seconds,
        error=optional_text,
        messages=st.lists(st.builds(Message, role=text, text=text), max_size=3).map(tuple),
        output=optional_text,
        provider=optional_text,
        response_model=optional_text,
        finish_reason=optional_text,
        response_id=optional_text,
        request_params=st.dictionaries(text, json_values, max_size=3),
        cached_tokens=st.none() | counts,
        reasoning_tokens=st.none() | counts,
    ),
    ToolCall: st.builds(
        ToolCall,
        **common,
        name=text,
        arguments=st.dictionaries(text, json_values, max_size=3),
        result_size=counts,
        result_preview=text,
        duration=seconds,
        error=optional_text,
    ),
    Judgment: st.builds(
        Judgment,
        **common,
        success=st.none() | st.booleans(),
        reason=text,
        confidence=st.none() | st.floats(min_value=0, max_value=1),
    ),
    MemoryExtraction: st.builds(
        MemoryExtraction,
        **common,
        items=st.lists(
            st.builds(ExtractedMemory, memory_id=text, title=text, duplicate=st.booleans()),
            max_size=3,
        ).map(tuple),
    ),
    RunResult: st.builds(
        RunResult,
        **common,
        answer=optional_text,
        sparql=optional_text,
        evidence=json_values,
        converged=st.booleans(),
        iterations=counts,
        llm_calls=counts,
        prompt_tokens=counts,
        completion_tokens=counts,
        duration=seconds,
        cost=st.none() | seconds,
        error=optional_text,
    ),
}
any_event = st.one_of(*EVENT_STRATEGIES.values())


def test_every_event_class_has_a_round_trip_strategy() -> None:
    declared = {
        obj
        for obj in vars(events).values()
        if isinstance(obj, type) and issubclass(obj, Event) and obj is not Event
    }
    assert declared == set(EVENT_STRATEGIES)


@given(any_event)
def test_from_dict_of_to_dict_is_the_same_event(event: Event) -> None:
    assert type(event).from_dict(event.to_dict()) == event
    assert event_from_dict(event.to_dict()) == event


@given(any_event)
def test_events_survive_a_trip_through_json_text(event: Event) -> None:
    assert event_from_dict(orjson.loads(orjson.dumps(event.to_dict()))) == event


def test_serialized_event_names_its_kind_and_schema_version() -> None:
    data = run_result().to_dict()
    assert data["event"] == "run_end"
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["timestamp"] == run_result().timestamp.isoformat()
    assert data["timestamp"].endswith("+00:00")


def test_events_are_frozen() -> None:
    result = run_result()
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.answer = "changed"  # type: ignore[misc]


def test_derived_properties() -> None:
    assert run_result().tokens == 120
    run = run_info()
    assert run.started_at < run.timestamp
    assert run.elapsed == (run.timestamp - run.started_at).total_seconds()


def test_unknown_schema_version_is_refused_with_the_version_named() -> None:
    data = run_result().to_dict() | {"schema_version": 99}
    with pytest.raises(EventDecodeError, match="schema_version 99"):
        event_from_dict(data)


def test_unknown_event_kind_is_refused_with_the_known_kinds_listed() -> None:
    with pytest.raises(EventDecodeError, match=r"unknown event kind 'bogus'.*run_end"):
        event_from_dict({"event": "bogus"})


def test_decoding_a_payload_as_the_wrong_class_is_refused() -> None:
    with pytest.raises(EventDecodeError, match="expected a 'iteration' event, got 'run_end'"):
        Iteration.from_dict(run_result().to_dict())


def test_missing_field_is_named() -> None:
    data = run_result().to_dict()
    del data["converged"]
    with pytest.raises(EventDecodeError, match="missing field 'converged'"):
        event_from_dict(data)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("converged", "yes", "converged: expected bool"),
        ("iterations", 1.5, "iterations: expected an integer"),
        ("iterations", True, "iterations: expected an integer"),
        ("duration", "fast", "duration: expected a number"),
        ("timestamp", "yesterday", "timestamp"),
    ],
)
def test_wrong_field_types_are_refused_with_the_field_named(
    field: str, value: object, message: str
) -> None:
    data = run_result().to_dict() | {field: value}
    with pytest.raises(EventDecodeError, match=message):
        event_from_dict(data)


def test_nested_field_errors_name_the_path() -> None:
    data = run_info().to_dict()
    data["ontology"] = {"name": "prov", "path": "/p", "triples": "many"}
    with pytest.raises(EventDecodeError, match=r"ontology\.triples: expected an integer"):
        event_from_dict(data)


def test_every_payload_of_a_built_run_round_trips() -> None:
    built = RunBuilder.demo(nested=True).events()
    assert {type(event) for event in built} == set(EVENT_STRATEGIES)
    for event in built:
        assert event_from_dict(orjson.loads(orjson.dumps(event.to_dict()))) == event


def test_version_1_payloads_are_read_as_spans_under_their_run() -> None:
    v1 = Path(__file__).parent / "fixtures" / "v1" / "demo-schema-v1.jsonl"
    lines = [orjson.loads(line) for line in v1.read_bytes().splitlines()]
    decoded = [
        event_from_dict(line) for line in lines if line.get("event") not in (None, "metrics")
    ]
    run, *inner, end = decoded
    assert isinstance(run, RunInfo)
    assert isinstance(end, RunResult)
    assert end.span_id == run.span_id
    assert len(run.trace_id) == 32
    assert all(event.parent_span_id == run.span_id for event in inner)
    assert len({event.span_id for event in inner}) == len(inner)
    step = next(event for event in inner if isinstance(event, Iteration))
    assert step.elapsed == pytest.approx(step.duration, abs=1e-6)
    assert event_from_dict(step.to_dict()) == step  # written back as version 2
