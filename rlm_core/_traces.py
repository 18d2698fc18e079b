"""Building and checking run traces: :class:`RunBuilder` and :func:`check_trace`.

``RunBuilder`` writes the payloads of a realistic run the way the engine emits them: span ids,
parents, a consistent timeline, sequence numbers in emission order, children before their parent.
``check_trace`` asserts that a list of payloads is such a tree. Both are public through
:mod:`rlm_core.testing`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from rlm_core._spans import SpanContext, parse_traceparent
from rlm_core.events import (
    Event,
    ExtractedMemory,
    Iteration,
    JSONValue,
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
)
from rlm_core.hookspecs import PAYLOAD_ARGUMENTS

__all__ = ["RunBuilder", "TraceError", "check_trace", "span_children", "trace_problems"]

E = TypeVar("E", bound=Event)
HookCall = tuple[str, dict[str, Any]]

_EPOCH = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
_TICK = timedelta(milliseconds=1)


class _Clock:
    """The timeline of a builder and the runs nested in it: every reading is later."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        self._now += _TICK
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


@dataclasses.dataclass(frozen=True)
class _Open:
    span_id: str
    parent_span_id: str | None
    started_at: datetime


class RunBuilder:
    """Builds the hook calls of one run, in emission order, as the engine would emit them.

    Every method returns the payload it built and appends ``(hook, kwargs)`` to :attr:`calls`.
    Defaults are realistic values from the bundled demo; any field can be overridden by keyword.

    >>> run = RunBuilder("run-1")
    >>> run.setup() and run.memory_retrieved()  # doctest: +ELLIPSIS
    MemoryRetrieval(...)
    >>> with run.iteration(code="print(search_entity('brew'))"):
    ...     _ = run.llm_call()
    ...     _ = run.tool_call("search_entity", {"text": "brew"}, "coffee:Brewing")
    >>> result = run.end()
    >>> check_trace(run.events())

    A nested run (:meth:`nested`) hangs under the span current in this builder (the open
    iteration, or the run) and shares its timeline and :attr:`calls`, so its calls interleave
    with the parent's as they would live.

    Ids are derived from the run id, so building the same run twice gives equal payloads.
    """

    def __init__(
        self,
        run_id: str = "run-1",
        *,
        start: datetime = _EPOCH,
        traceparent: str | None = None,
        calls: list[HookCall] | None = None,
        _clock: _Clock | None = None,
        _parent: SpanContext | None = None,
        **fields: Any,
    ) -> None:
        self._clock = _clock or _Clock(start)
        self._seq = itertools.count()
        self._spans = itertools.count()
        self._run_id = run_id
        self.calls: list[HookCall] = [] if calls is None else calls
        parent = _parent or (parse_traceparent(traceparent) if traceparent else None)
        self._span = _Open(
            self._new_span_id(), None if parent is None else parent.span_id, self._clock.now()
        )
        defaults: dict[str, Any] = {
            "question": "Which properties link a brew to the equipment and beans it uses?",
            "ontology": OntologyInfo(
                name="coffee", path="/data/coffee.ttl", triples=412, format="turtle"
            ),
            "model": "openai/gpt-4o-mini",
            "sub_model": None,
            "limits": Limits(
                max_iterations=20, max_llm_calls=50, step_timeout=30.0, max_output_chars=10_000
            ),
            "tags": {},
        }
        defaults.update(fields)
        self._clock.advance(0.015)  # the ontology loads before run_start is emitted
        self.run = RunInfo(
            run_id=run_id,
            seq=next(self._seq),
            span_id=self._span.span_id,
            parent_span_id=self._span.parent_span_id,
            started_at=self._span.started_at,
            timestamp=self._clock.now(),
            trace_id=parent.trace_id if parent else _hex(f"trace:{run_id}", 16),
            depth=parent.depth + 1 if parent is not None and parent.run_id else 0,
            parent_run_id=parent.run_id if parent is not None else None,
            **defaults,
        )
        self.context = SpanContext(self.run.trace_id, self.run.span_id, run_id, self.run.depth)
        self._current: list[_Open] = [self._span]
        self._counts = {"iterations": 0, "llm_calls": 0, "prompt": 0, "completion": 0}
        self._cost: float | None = None
        self.result: RunResult | None = None
        self.calls.append(("run_start", {"run": self.run}))

    # -- building blocks ------------------------------------------------------------------------

    def _new_span_id(self) -> str:
        return _hex(f"span:{self._run_id}:{next(self._spans)}", 8)

    def _open(self, started_at: datetime | None = None) -> _Open:
        return _Open(
            self._new_span_id(), self._current[-1].span_id, started_at or self._clock.now()
        )

    def _close(self, hook: str, cls: type[E], span: _Open, **fields: Any) -> E:
        payload = cls(
            run_id=self.run.run_id,
            seq=next(self._seq),
            span_id=span.span_id,
            parent_span_id=span.parent_span_id,
            started_at=span.started_at,
            timestamp=self._clock.now(),
            **fields,
        )
        self.calls.append((hook, {"run": self.run, PAYLOAD_ARGUMENTS[hook]: payload}))
        return payload

    def events(self) -> list[Event]:
        """Every payload built (this run's and nested runs'), in emission order."""
        return [_payload(hook, kwargs) for hook, kwargs in self.calls if hook != "metrics"]

    # -- the hooks, in the order a run emits them -------------------------------------------------

    def setup(self, **fields: Any) -> Setup:
        """The setup span: it starts with the run and ends right after ``run_start``."""
        values: dict[str, Any] = {
            "ontology": self.run.ontology,
            "load_duration": 0.011,
            "index_duration": 0.003,
            "sense_card_duration": 0.001,
            "sense_card_chars": 2400,
        }
        values.update(fields)
        return self._close("setup", Setup, self._open(self.run.started_at), **values)

    def memory_retrieved(
        self, items: Sequence[RetrievedMemory] = (), **fields: Any
    ) -> MemoryRetrieval:
        values: dict[str, Any] = {"query": self.run.question, "k": 3, "duration": 0.0002}
        values.update(fields)
        return self._close(
            "memory_retrieved", MemoryRetrieval, self._open(), items=tuple(items), **values
        )

    @contextlib.contextmanager
    def iteration(self, **fields: Any) -> Iterator[RunBuilder]:
        """A step: LM, tool and sub-LM calls made in the ``with`` block hang under it, and its
        ``iteration`` is emitted when the block ends."""
        span = self._open()
        self._current.append(span)
        try:
            yield self
        finally:
            self._current.pop()
        values: dict[str, Any] = {
            "index": self._counts["iterations"],
            "reasoning": "Find the properties whose domain is coffee:Brewing.",
            "code": "print(search_entity('brew'))",
            "output": "coffee:Brewing | Brewing | class",
            "error": None,
            "llm_calls_used": 0,
        }
        values.update(fields)
        values.setdefault("duration", (self._clock.now() - span.started_at).total_seconds())
        self._counts["iterations"] += 1
        self._close("iteration", Iteration, span, **values)

    def llm_call(self, role: str = "root", **fields: Any) -> LLMCall:
        """An LM call under the current span; ``role`` "sub" is one level deeper."""
        span = self._open()
        values: dict[str, Any] = {
            "model": self.run.model if role == "root" else (self.run.sub_model or self.run.model),
            "role": role,
            "depth": self.run.depth + (1 if role == "sub" else 0),
            "prompt_tokens": 900,
            "completion_tokens": 120,
            "latency": 0.002,
            "messages": (Message(role="user", text=f"({role} prompt)"),),
            "output": f"({role} answer)",
            "provider": self.run.model.split("/", 1)[0] if "/" in self.run.model else None,
            "finish_reason": "stop",
        }
        values.update(fields)
        self._counts["llm_calls"] += 1
        self._counts["prompt"] += values["prompt_tokens"] or 0
        self._counts["completion"] += values["completion_tokens"] or 0
        if isinstance(values.get("cost"), int | float):
            self._cost = (self._cost or 0.0) + values["cost"]
        return self._close("llm_call", LLMCall, span, **values)

    def tool_call(
        self,
        name: str = "search_entity",
        arguments: Mapping[str, JSONValue] | None = None,
        result: str = "coffee:Brewing | Brewing | class",
        **fields: Any,
    ) -> ToolCall:
        """An ontology tool call under the current span (the open iteration)."""
        span = self._open()
        values: dict[str, Any] = {
            "name": name,
            "arguments": dict(arguments or {"text": "brew"}),
            "result_size": len(result),
            "result_preview": result[:500],
            "duration": 0.001,
        }
        values.update(fields)
        return self._close("tool_call", ToolCall, span, **values)

    def judgment(self, success: bool | None = True, **fields: Any) -> Judgment:
        """The judgment, with the judge's LM call under it (``judge_call=False`` to leave it
        out)."""
        span = self._open()
        self._current.append(span)
        try:
            if fields.pop("judge_call", True):
                self.llm_call("judge", prompt_tokens=1500, completion_tokens=56)
        finally:
            self._current.pop()
        values: dict[str, Any] = {
            "success": success,
            "reason": "The answer names the properties and the SPARQL returns them.",
            "confidence": 0.9,
        }
        values.update(fields)
        return self._close("judgment", Judgment, span, **values)

    def memory_extracted(
        self, items: Sequence[ExtractedMemory] = (), **fields: Any
    ) -> MemoryExtraction:
        """The extraction, with the extractor's LM call under it (``extract_call=False`` to
        leave it out)."""
        span = self._open()
        self._current.append(span)
        try:
            if fields.pop("extract_call", True):
                self.llm_call("extract", prompt_tokens=1500, completion_tokens=213)
        finally:
            self._current.pop()
        return self._close("memory_extracted", MemoryExtraction, span, items=tuple(items), **fields)

    def metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        self.calls.append(("metrics", {"run": self.run, "values": dict(values), "step": step}))

    def end(self, **fields: Any) -> RunResult:
        """``run_end``, closing the run's span; counts default to what was built."""
        now = self._clock.now()
        values: dict[str, Any] = {
            "answer": "coffee:usesEquipment and coffee:hasInput link a brew to its equipment.",
            "sparql": "SELECT ?p WHERE { ?p rdfs:domain coffee:Process }",
            "evidence": ["coffee:usesEquipment rdfs:domain coffee:Process"],
            "converged": True,
            "iterations": self._counts["iterations"],
            "llm_calls": self._counts["llm_calls"],
            "prompt_tokens": self._counts["prompt"],
            "completion_tokens": self._counts["completion"],
            "duration": (now - self.run.started_at).total_seconds(),
            "cost": self._cost,
        }
        values.update(fields)
        self.result = RunResult(
            run_id=self.run.run_id,
            seq=next(self._seq),
            span_id=self.run.span_id,
            parent_span_id=self.run.parent_span_id,
            started_at=self.run.started_at,
            timestamp=now,
            **values,
        )
        self.calls.append(("run_end", {"run": self.run, "result": self.result}))
        return self.result

    def nested(self, run_id: str | None = None, **fields: Any) -> RunBuilder:
        """A run started from here (a tool or hook of the open iteration): same trace, same
        timeline and calls, one level deeper."""
        current = self._current[-1]
        parent = SpanContext(self.run.trace_id, current.span_id, self.run.run_id, self.run.depth)
        return RunBuilder(
            run_id or f"{self.run.run_id}-nested",
            calls=self.calls,
            _clock=self._clock,
            _parent=parent,
            **fields,
        )

    # -- whole runs -------------------------------------------------------------------------------

    @classmethod
    def demo(cls, run_id: str = "run-demo", *, nested: bool = False, **fields: Any) -> RunBuilder:
        """The shape of the bundled demo run: setup, retrieval, four iterations (two tool calls,
        one, one plus a sub-LM call, none), judgment and extraction, then ``run_end``. With
        ``nested``, the third iteration starts a nested run (itself a demo without memory)."""
        run = cls(run_id, **fields)
        run.setup()
        run.memory_retrieved()
        steps: list[list[str]] = [["search_entity", "describe_entity"], ["sparql_select"]]
        steps += [["sparql_select", "sub"], []]
        for index, tools in enumerate(steps):
            with run.iteration(index=index, llm_calls_used=1 if index >= 2 else 0):
                run.llm_call("root")
                for tool in tools:
                    if tool == "sub":
                        run.llm_call("sub", prompt_tokens=200, completion_tokens=45)
                    else:
                        run.tool_call(tool)
                if nested and index == 2:
                    inner = run.nested()
                    inner.setup()
                    with inner.iteration():
                        inner.llm_call("root")
                        inner.tool_call("search_entity")
                    inner.end()
            run.metrics({"tokens_so_far": 1000.0 * (index + 1)}, step=index)
        run.judgment()
        run.memory_extracted(
            (ExtractedMemory(memory_id="m-1", title="Follow rdfs:domain", duplicate=False),)
        )
        run.end()
        return run


def _hex(seed: str, size: int) -> str:
    return hashlib.blake2b(seed.encode(), digest_size=size).hexdigest()


def _payload(hook: str, kwargs: Mapping[str, Any]) -> Event:
    if hook == "run_start":
        run: Event = kwargs["run"]
        return run
    event: Event = kwargs[PAYLOAD_ARGUMENTS[hook]]
    return event


# -- checking ---------------------------------------------------------------------------------


class TraceError(AssertionError):
    """The payloads do not form a well-formed trace; the message lists every problem."""


def check_trace(events: Iterable[Event]) -> None:
    """Assert that ``events`` (payloads in emission order, any number of runs) form a
    well-formed trace.

    Per run: one ``run_start`` (the root of the run), at most one ``run_end`` closing the same
    span; sequence numbers rising in emission order; unique span ids. Every parent exists in the
    same trace (a run's own parent may be outside the events: a caller's span, or a parent run
    not among them); every child lies inside its parent's time window and is emitted before its
    parent ends.

    :raises TraceError: listing every problem found.
    """
    problems = trace_problems(events)
    if problems:
        raise TraceError("not a well-formed trace:\n  " + "\n  ".join(problems))


def trace_problems(events: Iterable[Event]) -> list[str]:
    """What :func:`check_trace` would complain about, one line per problem (empty when none)."""
    events = list(events)
    problems: list[str] = []
    runs: dict[str, RunInfo] = {}
    ends: dict[str, RunResult] = {}
    spans: dict[str, Event] = {}
    last_seq: dict[str, int] = {}
    for event in events:
        name = f"{event.kind} (run {event.run_id}, seq {event.seq})"
        if event.seq <= last_seq.get(event.run_id, -1):
            problems.append(f"{name}: sequence number not above the run's previous one")
        last_seq[event.run_id] = event.seq
        if event.started_at > event.timestamp:
            problems.append(f"{name}: starts after it ends")
        if isinstance(event, RunInfo):
            if event.run_id in runs:
                problems.append(f"{name}: a second run_start for the run")
            runs[event.run_id] = event
        elif isinstance(event, RunResult):
            if event.run_id in ends:
                problems.append(f"{name}: a second run_end for the run")
            ends[event.run_id] = event
            continue  # closes the run's span; checked below
        elif event.run_id not in runs:
            problems.append(f"{name}: comes before its run's run_start")
        if event.span_id in spans:
            problems.append(f"{name}: span id {event.span_id} is not unique")
        spans[event.span_id] = event
    seq_of_end = {run_id: end.seq for run_id, end in ends.items()}
    for run_id, end in ends.items():
        run = runs.get(run_id)
        if run is None:
            problems.append(f"run_end of run {run_id}: no run_start")
        elif end.span_id != run.span_id or end.started_at != run.started_at:
            problems.append(f"run_end of run {run_id}: does not close the run's span")
    for event in events:
        if isinstance(event, RunResult):
            continue
        name = f"{event.kind} (run {event.run_id}, seq {event.seq})"
        run = runs.get(event.run_id)
        if isinstance(event, RunInfo):
            problems.extend(_check_run_parent(event, runs, spans, ends))
            continue
        if event.parent_span_id is None:
            problems.append(f"{name}: no parent span (only a run may be a root)")
            continue
        parent = spans.get(event.parent_span_id)
        if parent is None:
            problems.append(f"{name}: parent span {event.parent_span_id} is not in the trace")
            continue
        if run is not None and parent.run_id != event.run_id:
            problems.append(f"{name}: its parent belongs to run {parent.run_id}")
        problems.extend(_check_window(name, event, parent, ends))
        if isinstance(parent, RunInfo):
            end_seq = seq_of_end.get(parent.run_id)
            if end_seq is not None and event.seq > end_seq:
                problems.append(f"{name}: emitted after its run ended")
        elif event.seq > parent.seq:
            problems.append(f"{name}: emitted after its parent {parent.kind} ended")
    return problems


def _check_run_parent(
    run: RunInfo,
    runs: Mapping[str, RunInfo],
    spans: Mapping[str, Event],
    ends: Mapping[str, RunResult],
) -> list[str]:
    name = f"run_start (run {run.run_id})"
    problems = []
    if run.parent_span_id is None:
        if run.parent_run_id in runs:
            problems.append(f"{name}: nested in run {run.parent_run_id} but has no parent span")
        return problems
    parent = spans.get(run.parent_span_id)
    if parent is None:
        if run.parent_run_id in runs:
            problems.append(f"{name}: parent span {run.parent_span_id} is not in its parent run")
        return problems  # a caller's span outside these events
    outer = runs.get(parent.run_id)
    if outer is not None and outer.trace_id != run.trace_id:
        problems.append(f"{name}: not in the trace of its parent run {parent.run_id}")
    if run.parent_run_id != parent.run_id:
        problems.append(f"{name}: parent_run_id is not the run its parent span belongs to")
    problems.extend(_check_window(name, run, parent, ends))
    end = ends.get(run.run_id)
    if end is not None:
        problems.extend(_check_window(f"run_end (run {run.run_id})", end, parent, ends))
    return problems


def _check_window(
    name: str, child: Event, parent: Event, ends: Mapping[str, RunResult]
) -> list[str]:
    """The child lies inside its parent's time window (a run's window ends at its run_end)."""
    problems = []
    if child.started_at < parent.started_at:
        problems.append(f"{name}: starts before its parent {parent.kind}")
    if isinstance(parent, RunInfo):
        end = ends.get(parent.run_id)
        if end is not None and child.timestamp > end.timestamp:
            problems.append(f"{name}: ends after its run")
    elif child.timestamp > parent.timestamp:
        problems.append(f"{name}: ends after its parent {parent.kind}")
    return problems


def span_children(events: Iterable[Event]) -> dict[str | None, list[Event]]:
    """Parent span id -> its children in emission order; ``run_end`` payloads are left out
    (they close their run's span, which ``run_start`` stands for)."""
    children: dict[str | None, list[Event]] = {}
    for event in events:
        if not isinstance(event, RunResult):
            children.setdefault(event.parent_span_id, []).append(event)
    return children
