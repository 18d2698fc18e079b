"""Hook payloads: one frozen dataclass per lifecycle event.

Every tracker consumes the same objects, and every payload survives a trip through JSON
(``Event.from_dict(e.to_dict()) == e``), so a JSONL log can be replayed into any tracker later.
The serialized form carries ``event`` (the kind) and ``schema_version``; readers refuse versions
they do not know instead of guessing. Version 1 payloads (before spans) are read too: they get
span ids derived from their run and sequence number, all hanging under the run, and a start
computed from the duration they carry.

Every payload is a span of the run's trace: ``span_id``, ``parent_span_id``, ``started_at`` and
``timestamp`` (its end, when it was emitted). ``RunInfo`` opens the run's span and ``RunResult``
closes it, with the same ``span_id``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Self, TypeAlias, Union, get_args, get_origin

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "Event",
    "EventDecodeError",
    "ExtractedMemory",
    "Iteration",
    "JSONValue",
    "Judgment",
    "LLMCall",
    "Limits",
    "MemoryExtraction",
    "MemoryRetrieval",
    "Message",
    "OntologyInfo",
    "RetrievedMemory",
    "RunInfo",
    "RunResult",
    "Setup",
    "ToolCall",
    "event_from_dict",
    "utc_now",
]

SCHEMA_VERSION = 2
"""Version of the serialized event schema; bump it when a field changes meaning or type.

2: span fields on every payload, ``setup``, LM content and GenAI fields, ``RunResult.cost``.
"""

READABLE_VERSIONS = frozenset({1, SCHEMA_VERSION})
"""Serialized versions :meth:`Event.from_dict` reads (older ones are upgraded on reading)."""

JSONValue: TypeAlias = Union[  # noqa: UP007 - a recursive alias needs the string form
    bool, int, float, str, list["JSONValue"], dict[str, "JSONValue"], None
]


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC (naive datetimes are ambiguous in logs)."""
    return datetime.now(UTC)


class EventDecodeError(ValueError):
    """A serialized event does not match the schema this version of rlm-core reads."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class OntologyInfo:
    """The ontology a run works on."""

    name: str
    path: str
    triples: int
    format: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Limits:
    """Bounds a run is held to."""

    max_iterations: int
    max_llm_calls: int
    step_timeout: float
    max_output_chars: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class RetrievedMemory:
    """One memory returned by retrieval, with its rank (1 = best) and BM25-derived score."""

    memory_id: str
    title: str
    rank: int
    score: float


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExtractedMemory:
    """One memory produced after a run; ``duplicate`` means it was already stored."""

    memory_id: str
    title: str
    duplicate: bool


@dataclasses.dataclass(frozen=True, kw_only=True)
class Message:
    """One message sent to an LM: its role ("system", "user", "assistant") and its text."""

    role: str
    text: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Event:
    """Fields shared by every payload: which run, in what order, and its place in the trace.

    ``started_at`` is when the operation began and ``timestamp`` when it ended (the payload is
    emitted then); ``parent_span_id`` is None only for a run that is the root of its trace.
    """

    kind: ClassVar[str] = "event"

    run_id: str
    seq: int
    span_id: str
    parent_span_id: str | None = None
    started_at: datetime
    timestamp: datetime

    @property
    def elapsed(self) -> float:
        """Seconds from ``started_at`` to ``timestamp`` (the span's duration)."""
        return (self.timestamp - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, JSONValue]:
        """A JSON-safe dict: datetimes as ISO 8601 strings, tuples as lists."""
        data: dict[str, JSONValue] = {"event": self.kind, "schema_version": SCHEMA_VERSION}
        # The instance dict holds exactly the fields, in order; most are scalars and skip
        # _encode (this runs once per event logged, so it is kept lean).
        for name, value in vars(self).items():
            data[name] = value if type(value) in _SCALARS else _encode(value)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild an event from :meth:`to_dict` output; raise :class:`EventDecodeError` if it does
        not fit."""
        version = data.get("schema_version", SCHEMA_VERSION)
        if version not in READABLE_VERSIONS:
            readable = ", ".join(map(str, sorted(READABLE_VERSIONS)))
            raise EventDecodeError(
                f"schema_version {version!r} is not supported (this rlm-core reads {readable})"
            )
        kind = data.get("event", cls.kind)
        if kind != cls.kind:
            raise EventDecodeError(f"expected a {cls.kind!r} event, got {kind!r}")
        if version == 1:
            data = _upgrade_v1(cls, data)
        event: Self = _decode_dataclass(cls, data)
        return event


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunInfo(Event):
    """What a run is about; passed as ``run`` to every hook and as the ``run_start`` payload."""

    kind: ClassVar[str] = "run_start"

    trace_id: str
    depth: int = 0
    question: str
    ontology: OntologyInfo
    model: str
    sub_model: str | None
    limits: Limits
    parent_run_id: str | None = None
    tags: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Setup(Event):
    """What the run did before its first LM call: load the ontology, build its search index and
    its sense card (the summary the model starts from)."""

    kind: ClassVar[str] = "setup"

    ontology: OntologyInfo
    load_duration: float
    index_duration: float
    sense_card_duration: float
    sense_card_chars: int
    error: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class MemoryRetrieval(Event):
    """Memories fetched for the question before the first LM call."""

    kind: ClassVar[str] = "memory_retrieved"

    query: str
    k: int
    items: tuple[RetrievedMemory, ...]
    duration: float


@dataclasses.dataclass(frozen=True, kw_only=True)
class Iteration(Event):
    """One REPL step of the RLM loop: what the model reasoned, the code it ran, what came back."""

    kind: ClassVar[str] = "iteration"

    index: int
    reasoning: str
    code: str
    output: str
    error: str | None
    duration: float
    llm_calls_used: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class LLMCall(Event):
    """One LM call, by the root model or a sub-LM (``role``: "root", "sub", "judge", ...)."""

    kind: ClassVar[str] = "llm_call"

    model: str
    role: str
    depth: int = 0
    prompt_tokens: int | None
    completion_tokens: int | None
    latency: float
    cost: float | None = None
    error: str | None = None
    messages: tuple[Message, ...] = ()
    output: str | None = None
    provider: str | None = None
    response_model: str | None = None
    finish_reason: str | None = None
    response_id: str | None = None
    request_params: dict[str, JSONValue] = dataclasses.field(default_factory=dict)
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ToolCall(Event):
    """One ontology tool call made from LM-written REPL code."""

    kind: ClassVar[str] = "tool_call"

    name: str
    arguments: dict[str, JSONValue]
    result_size: int
    result_preview: str
    duration: float
    error: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Judgment(Event):
    """The verdict on a trajectory; ``success`` is None when the judge's answer was unusable."""

    kind: ClassVar[str] = "judgment"

    success: bool | None
    reason: str
    confidence: float | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class MemoryExtraction(Event):
    """Memories extracted from a finished run."""

    kind: ClassVar[str] = "memory_extracted"

    items: tuple[ExtractedMemory, ...]


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunResult(Event):
    """How a run ended; sent to ``run_end`` also when the run failed or did not converge."""

    kind: ClassVar[str] = "run_end"

    answer: str | None
    sparql: str | None
    evidence: JSONValue
    converged: bool
    iterations: int
    llm_calls: int
    prompt_tokens: int
    completion_tokens: int
    duration: float
    cost: float | None = None
    error: str | None = None
    problems: tuple[str, ...] = ()
    plugin_errors: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens over every LM call of the run."""
        return self.prompt_tokens + self.completion_tokens


EVENT_TYPES: Mapping[str, type[Event]] = {
    # the ``event`` key of a serialized payload -> its class
    cls.kind: cls
    for cls in (
        RunInfo,
        Setup,
        MemoryRetrieval,
        Iteration,
        LLMCall,
        ToolCall,
        Judgment,
        MemoryExtraction,
        RunResult,
    )
}


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """Rebuild any event from its serialized form, dispatching on the ``event`` key."""
    kind = data.get("event")
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        known = ", ".join(sorted(EVENT_TYPES))
        raise EventDecodeError(f"unknown event kind {kind!r} (known: {known})")
    return EVENT_TYPES[kind].from_dict(data)


_SCALARS = frozenset({str, int, float, bool, type(None)})

# Version 1 payloads carried their duration under these names (none for judgment/extraction).
_V1_DURATION = {"llm_call": "latency", "iteration": "duration", "tool_call": "duration"}
_V1_DURATION.update(memory_retrieved="duration")


def _v1_span_id(run_id: str, seq: int) -> str:
    """A stable span id for a version 1 payload; the run's span is its ``run_start`` (seq 0)."""
    return hashlib.blake2b(f"{run_id}/{seq}".encode(), digest_size=8).hexdigest()


def _upgrade_v1(cls: type[Event], data: Mapping[str, Any]) -> dict[str, Any]:
    """A version 1 payload as version 2: every span hangs under the run (version 1 had no tree),
    and starts its duration before its end."""
    upgraded = dict(data)
    run_id, seq = data.get("run_id"), data.get("seq")
    if not isinstance(run_id, str) or type(seq) is not int:
        return upgraded  # decoding reports what is wrong
    run_span = _v1_span_id(run_id, 0)
    ended = data.get("timestamp")
    duration_key = "duration" if cls.kind == "run_end" else _V1_DURATION.get(cls.kind)
    started = ended
    seconds = data.get(duration_key) if duration_key else None
    if isinstance(ended, str) and isinstance(seconds, int | float):
        with contextlib.suppress(ValueError):  # decoding reports the bad timestamp
            started = (datetime.fromisoformat(ended) - timedelta(seconds=seconds)).isoformat()
    if cls.kind == "run_start":
        trace_id = hashlib.blake2b(run_id.encode(), digest_size=16).hexdigest()
        upgraded.update(span_id=run_span, trace_id=trace_id)
    elif cls.kind == "run_end":
        upgraded.update(span_id=run_span)
    else:
        upgraded.update(span_id=_v1_span_id(run_id, seq), parent_span_id=run_span)
    upgraded["started_at"] = started
    upgraded["schema_version"] = SCHEMA_VERSION
    return upgraded


def _encode(value: Any) -> JSONValue:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _encode(item) for key, item in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot serialize {type(value).__name__} in an event")


_Decoder = Callable[[Any, str], Any]
_DECODERS: dict[object, _Decoder] = {}


def _decode_dataclass(cls: type[Any], data: Mapping[str, Any], where: str = "") -> Any:
    if not isinstance(data, Mapping):
        raise EventDecodeError(f"{where or cls.__name__}: expected an object, got {data!r}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        path = f"{where}.{field.name}" if where else field.name
        if field.name in data:
            kwargs[field.name] = _decoder_for(hints[field.name])(data[field.name], path)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise EventDecodeError(
                f"{cls.kind if issubclass(cls, Event) else cls.__name__}: missing field {path!r}"
            )
    return cls(**kwargs)


def _decoder_for(hint: object) -> _Decoder:
    """A function turning JSON data into a value of type ``hint``; cached per type."""
    try:
        return _DECODERS[hint]
    except KeyError:
        decoder = _build_decoder(hint)
        _DECODERS[hint] = decoder
        return decoder


def _build_decoder(hint: object) -> _Decoder:
    if hint is Any or _is_json_value_alias(hint):
        return _json_value
    if hint is datetime:
        return _datetime
    if hint is bool:
        return _exact(bool)
    if hint is int:
        return _integer
    if hint is float:
        return _number
    if hint is str:
        return _exact(str)
    if hint is type(None):
        return _exact(type(None))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        cls = hint
        return lambda data, where: _decode_dataclass(cls, data, where)
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        options = [_decoder_for(arg) for arg in args]

        def union(data: Any, where: str) -> Any:
            for option in options:
                try:
                    return option(data, where)
                except EventDecodeError:
                    continue
            raise EventDecodeError(f"{where}: {data!r} does not match {hint}")

        return union
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _decoder_for(args[0])
        return lambda data, where: tuple(
            item(value, f"{where}[{i}]") for i, value in enumerate(_sequence(data, where))
        )
    if origin is dict:
        value_decoder = _decoder_for(args[1])
        return lambda data, where: {
            _exact(str)(key, where): value_decoder(value, f"{where}.{key}")
            for key, value in _mapping(data, where).items()
        }
    raise TypeError(f"events.py has a field of type {hint!r} that it cannot decode")


def _is_json_value_alias(hint: object) -> bool:
    """Whether ``hint`` is :data:`JSONValue`; ``get_type_hints`` rebuilds the recursive alias
    with ``ForwardRef`` members, so identity and equality do not work."""
    if get_origin(hint) not in (Union, types.UnionType):
        return False
    members = get_args(hint)
    scalars = {member for member in members if isinstance(member, type)}
    containers = {get_origin(member) for member in members} - {None}
    return scalars == {type(None), bool, int, float, str} and containers == {list, dict}


def _exact(expected: type) -> _Decoder:
    def check(data: Any, where: str) -> Any:
        if type(data) is not expected:
            raise EventDecodeError(f"{where}: expected {expected.__name__}, got {data!r}")
        return data

    return check


def _integer(data: Any, where: str) -> int:
    if type(data) is not int:
        raise EventDecodeError(f"{where}: expected an integer, got {data!r}")
    return data


def _number(data: Any, where: str) -> float:
    if type(data) not in (int, float):
        raise EventDecodeError(f"{where}: expected a number, got {data!r}")
    return float(data)


def _datetime(data: Any, where: str) -> datetime:
    if not isinstance(data, str):
        raise EventDecodeError(f"{where}: expected an ISO 8601 timestamp, got {data!r}")
    try:
        return datetime.fromisoformat(data)
    except ValueError as exc:
        raise EventDecodeError(f"{where}: {exc}") from None


def _sequence(data: Any, where: str) -> list[Any]:
    if not isinstance(data, list | tuple):
        raise EventDecodeError(f"{where}: expected a list, got {data!r}")
    return list(data)


def _mapping(data: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise EventDecodeError(f"{where}: expected an object, got {data!r}")
    return data


def _json_value(data: Any, where: str) -> JSONValue:
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list | tuple):
        return [_json_value(item, f"{where}[{i}]") for i, item in enumerate(data)]
    if isinstance(data, Mapping):
        return {
            _exact(str)(key, where): _json_value(value, f"{where}.{key}")
            for key, value in data.items()
        }
    raise EventDecodeError(f"{where}: {data!r} is not JSON data")
