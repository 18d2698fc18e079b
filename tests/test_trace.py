"""The trace contract end to end: real scripted runs rebuilt as span trees from their events."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rlm_core import ConfigError, RunInfo, Settings, hookimpl, load_settings, run
from rlm_core.config import MemorySettings
from rlm_core.engine.cassette import Response
from rlm_core.events import Event, LLMCall, RunResult, Setup, ToolCall
from rlm_core.testing import (
    DEMO_CASSETTE,
    DEMO_ONTOLOGY,
    DEMO_QUESTION,
    RunBuilder,
    TraceError,
    capture_events,
    check_trace,
    scripted_step,
    scripted_sub,
    span_children,
    write_cassette,
)

NO_MEMORY = Settings(memory=MemorySettings(enabled=False))
Shape = tuple[str, list[Any]]


def label(event: Event) -> str:
    """What a node of the expected tree names: the kind plus what tells siblings apart."""
    if isinstance(event, RunInfo):
        return f"run depth={event.depth}"
    if isinstance(event, LLMCall):
        return f"llm_call {event.role} depth={event.depth}"
    if isinstance(event, ToolCall):
        return f"tool_call {event.name}"
    index = getattr(event, "index", None)
    return event.kind if index is None else f"{event.kind} {index}"


def shape(events: Sequence[Event], root: Event | None = None) -> Shape:
    """The tree under ``root`` (default: the first run_start), children in emission order."""
    children = span_children(events)
    top = root or events[0]

    def node(event: Event) -> Shape:
        return (label(event), [node(child) for child in children.get(event.span_id, [])])

    return node(top)


def demo_tree(*, nested: list[Shape] | None = None, memory: bool = True) -> Shape:
    """The bundled demo as a tree; ``nested`` hangs under iteration 2 (after its tool call)."""
    root = "llm_call root depth=0"
    steps: list[Shape] = [
        (
            "iteration 0",
            [(root, []), ("tool_call search_entity", []), ("tool_call describe_entity", [])],
        ),
        ("iteration 1", [(root, []), ("tool_call sparql_select", [])]),
        (
            "iteration 2",
            [
                (root, []),
                ("tool_call sparql_select", []),
                *(nested or []),
                ("llm_call sub depth=1", []),
            ],
        ),
        ("iteration 3", [(root, [])]),
    ]
    before: list[Shape] = [("setup", [])]
    after: list[Shape] = []
    if memory:
        before.append(("memory_retrieved", []))
        after = [
            ("judgment", [("llm_call judge depth=0", [])]),
            ("memory_extracted", [("llm_call extract depth=0", [])]),
        ]
    return ("run depth=0", [*before, *steps, *after])


def demo(**options: Any) -> tuple[RunResult, list[Event]]:
    options.setdefault("config", Settings())
    with capture_events() as events:
        result = run(
            DEMO_QUESTION, DEMO_ONTOLOGY, model=f"scripted:{DEMO_CASSETTE}", trackers=[], **options
        )
    return result, events.events()


def test_the_demo_run_is_the_documented_tree(in_tmp: Path) -> None:
    result, events = demo()
    check_trace(events)
    assert shape(events) == demo_tree()
    run_info, setup, end = events[0], events[1], events[-1]
    assert isinstance(run_info, RunInfo)
    assert isinstance(setup, Setup)
    assert end == result
    assert (result.span_id, result.started_at) == (run_info.span_id, run_info.started_at)
    assert run_info.parent_span_id is None
    assert len(run_info.trace_id) == 32
    assert {event.run_id for event in events} == {run_info.run_id}
    # setup is inside the run's span: it starts with the run, before run_start was emitted
    assert setup.started_at == run_info.started_at < run_info.timestamp <= setup.timestamp
    assert setup.ontology.triples == run_info.ontology.triples > 0
    assert (setup.ontology.format, setup.error) == ("turtle", None)
    # the run's duration is measured from the true start, inside its span
    assert setup.elapsed < result.duration <= result.elapsed
    assert all(len(event.span_id) == 16 for event in events)


def test_the_order_is_children_first_and_parents_known_before(in_tmp: Path) -> None:
    _, events = demo()
    seq = {event.span_id: event.seq for event in events if not isinstance(event, RunResult)}
    for event in events[1:-1]:
        parent = next(e for e in events if e.span_id == event.parent_span_id)
        if not isinstance(parent, RunInfo):
            assert event.seq < seq[parent.span_id], f"{label(event)} after its parent"
            assert parent.started_at <= event.started_at
            assert event.timestamp <= parent.timestamp


class NestFromATool:
    """Starts a nested run from the first ``sparql_select`` of the demo's third step, on the
    tool's thread, as a tool that itself asks an RLM would."""

    def __init__(self) -> None:
        self.nested: RunResult | None = None

    @hookimpl
    def tool_call(self, run: RunInfo, call: ToolCall) -> None:
        if run.depth == 0 and call.name == "sparql_select" and "?brew" in str(call.arguments):
            self.nested = demo_run_without_memory()


def demo_run_without_memory() -> RunResult:
    return run(
        DEMO_QUESTION,
        DEMO_ONTOLOGY,
        model=f"scripted:{DEMO_CASSETTE}",
        trackers=[],
        config=NO_MEMORY,
    )


def test_a_nested_run_hangs_under_the_step_that_started_it(in_tmp: Path) -> None:
    nester = NestFromATool()
    result, events = demo(plugins=[nester])
    assert nester.nested is not None
    assert nester.nested.error is None
    check_trace(events)
    outer = events[0]
    assert isinstance(outer, RunInfo)
    outer_events = [event for event in events if event.run_id == outer.run_id]
    inner_events = [event for event in events if event.run_id == nester.nested.run_id]
    assert len(outer_events) + len(inner_events) == len(events)
    inner = inner_events[0]
    assert isinstance(inner, RunInfo)
    assert (inner.trace_id, inner.parent_run_id, inner.depth) == (outer.trace_id, outer.run_id, 1)
    nested_tree = shape(events, inner)
    expected_inner = (
        "run depth=1",
        [
            ("setup", []),
            (
                "iteration 0",
                [
                    ("llm_call root depth=1", []),
                    ("tool_call search_entity", []),
                    ("tool_call describe_entity", []),
                ],
            ),
            ("iteration 1", [("llm_call root depth=1", []), ("tool_call sparql_select", [])]),
            (
                "iteration 2",
                [
                    ("llm_call root depth=1", []),
                    ("tool_call sparql_select", []),
                    ("llm_call sub depth=2", []),
                ],
            ),
            ("iteration 3", [("llm_call root depth=1", [])]),
        ],
    )
    assert nested_tree == expected_inner
    # the outer run: the nested run sits in iteration 2, before the tool call that started it
    # ended (so before the step's sub-LM call)
    outer_tree = shape(outer_events + inner_events[:1])
    step_2 = outer_tree[1][4]
    assert step_2[0] == "iteration 2"
    assert sorted(child[0] for child in step_2[1]) == [
        "llm_call root depth=0",
        "llm_call sub depth=1",
        "run depth=1",
        "tool_call sparql_select",
    ]
    assert outer_tree[1][:4] == demo_tree()[1][:4]
    assert outer_tree[1][5:] == demo_tree()[1][5:]
    assert result.error is None


def test_a_callers_traceparent_is_joined(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trace_id, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    monkeypatch.setenv("TRACEPARENT", f"00-{trace_id}-{span_id}-01")
    _, events = demo(config=NO_MEMORY)
    run_info = events[0]
    assert isinstance(run_info, RunInfo)
    assert (run_info.trace_id, run_info.parent_span_id) == (trace_id, span_id)
    assert (run_info.depth, run_info.parent_run_id) == (0, None)
    check_trace(events)  # the caller's span is outside the events; everything else hangs below

    explicit = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    _, events = demo(config=NO_MEMORY, traceparent=explicit)
    assert events[0].parent_span_id == "b7ad6b7169203331"  # the argument beats the variable


def test_a_malformed_traceparent_argument_is_refused_before_any_tracker_sees_a_run(
    in_tmp: Path,
) -> None:
    with capture_events() as events, pytest.raises(ConfigError, match="not W3C Trace Context"):
        run(
            DEMO_QUESTION,
            DEMO_ONTOLOGY,
            model=f"scripted:{DEMO_CASSETTE}",
            trackers=[],
            config=NO_MEMORY,
            traceparent="00-nope-01",
        )
    assert events.calls == []


def test_a_malformed_traceparent_variable_starts_a_new_trace(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TRACEPARENT", f"00-{'0' * 32}-{'1' * 16}-01")
    _, events = demo(config=NO_MEMORY)
    assert events[0].parent_span_id is None
    assert "TRACEPARENT ignored" in caplog.text


def test_lm_calls_carry_content_and_provider_fields(in_tmp: Path) -> None:
    result, events = demo()
    calls = [event for event in events if isinstance(event, LLMCall)]
    root = calls[0]
    assert root.messages
    assert root.messages[-1].role == "user"
    assert DEMO_QUESTION in "\n".join(message.text for message in root.messages)
    assert root.output is not None
    assert "[[ ## code ## ]]" in root.output
    assert (root.provider, root.response_model, root.finish_reason) == (
        "scripted",
        "scripted-root",
        "stop",
    )
    sub = next(call for call in calls if call.role == "sub")
    assert sub.output is not None
    assert "coffee:usesEquipment" in sub.output
    assert result.cost is None  # a cassette prices nothing


def test_run_builder_demo_shapes_match_the_live_demo(in_tmp: Path) -> None:
    _, live = demo()
    built = RunBuilder.demo().events()
    check_trace(built)
    assert shape(built) == shape(live)


def test_run_builder_nested_runs_are_well_formed() -> None:
    built = RunBuilder.demo(nested=True).events()
    check_trace(built)
    runs = [event for event in built if isinstance(event, RunInfo)]
    assert [run.depth for run in runs] == [0, 1]
    assert runs[1].parent_run_id == runs[0].run_id


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (lambda events: [e for e in events if label(e) != "iteration 1"], "is not in the trace"),
        (lambda events: [events[0], *reversed(events[1:])], "sequence number"),
        (lambda events: [*events, events[0]], "a second run_start"),
    ],
    ids=["missing parent", "out of order", "two roots"],
)
def test_check_trace_names_what_is_wrong(break_it: Any, message: str) -> None:
    events = RunBuilder.demo().events()
    with pytest.raises(TraceError, match=message):
        check_trace(break_it(events))


def test_steps_that_never_ran_their_code_still_close_their_spans(in_tmp: Path) -> None:
    """A step whose code DSPy cannot parse (a SQL fence), then a step whose LM call fails (the
    cassette runs out): both have an LM call hanging under them, so both end as iterations."""
    unparsable = Response(
        "root",
        "[[ ## reasoning ## ]]\nQuery it.\n\n[[ ## code ## ]]\n```sql\nSELECT 1\n```\n\n"
        "[[ ## completed ## ]]",
        900,
        20,
    )
    cassette = write_cassette(in_tmp / "broken.jsonl", [unparsable])
    with capture_events() as events:
        result = run(
            "q", DEMO_ONTOLOGY, model=f"scripted:{cassette}", trackers=[], config=NO_MEMORY
        )
    assert result.error is not None
    check_trace(events.events())
    first, second = (call.payload for call in events.of("iteration"))
    assert first.error == "the step's code did not run (it could not be parsed)"
    assert first.reasoning == "Query it."
    assert second.error is not None
    assert second.error.startswith("the step's LM call failed: ")
    assert result.iterations == 2


def test_batched_sub_lm_calls_hang_under_their_step(in_tmp: Path) -> None:
    """``llm_query_batched`` runs its calls on a thread pool: each finds the step as parent."""
    cassette = write_cassette(
        in_tmp / "batched.jsonl",
        [
            scripted_step("Ask three at once.", "print(llm_query_batched(['a', 'b', 'c']))"),
            scripted_sub("one"),
            scripted_sub("two"),
            scripted_sub("three"),
            scripted_step("Done.", "SUBMIT(answer='done', sparql='', evidence=[])"),
        ],
    )
    with capture_events() as events:
        result = run(
            "q", DEMO_ONTOLOGY, model=f"scripted:{cassette}", trackers=[], config=NO_MEMORY
        )
    assert result.converged, result.error
    recorded = events.events()
    check_trace(recorded)
    assert shape(recorded)[1][1] == (
        "iteration 0",
        [("llm_call root depth=0", []), *[("llm_call sub depth=1", [])] * 3],
    )


def test_capture_content_is_a_setting_of_file_and_environment(in_tmp: Path) -> None:
    assert load_settings().capture_content is True
    assert load_settings(env={"RLM_CAPTURE_CONTENT": "0"}).capture_content is False
    (in_tmp / "rlm.toml").write_text("[rlm]\ncapture_content = false\n", encoding="utf-8")
    assert load_settings().capture_content is False


def test_without_content_lm_calls_keep_their_numbers_but_no_text(in_tmp: Path) -> None:
    _, events = demo(config=Settings(capture_content=False))
    calls = [event for event in events if isinstance(event, LLMCall)]
    assert calls
    assert all(call.messages == () and call.output is None for call in calls)
    assert all(call.prompt_tokens for call in calls)
    assert {call.finish_reason for call in calls} == {"stop"}
