"""Hook payloads as span descriptions, named and attributed by the OpenTelemetry GenAI
semantic conventions (``chat {model}``, ``execute_tool {name}``, ``invoke_agent rlm``).

Pure data, no opentelemetry import: the tracker turns a :class:`SpanRecord` into an SDK span.
What rlm-core knows beyond the conventions goes under ``rlm.*``. Text the user or the model wrote
(messages, code, outputs, tool arguments and results, the judge's reason, the answer) is added
only when content capture is on, as the conventions ask.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeAlias

from rlm_core.events import (
    Event,
    Iteration,
    Judgment,
    LLMCall,
    MemoryExtraction,
    MemoryRetrieval,
    RunInfo,
    RunResult,
    Setup,
    ToolCall,
)

__all__ = [
    "AGENT_NAME",
    "AttributeValue",
    "Attributes",
    "SpanRecord",
    "describe",
    "describe_run",
    "nanoseconds",
]

AGENT_NAME = "rlm"
AttributeValue: TypeAlias = (
    str | bool | int | float | Sequence[str] | Sequence[int] | Sequence[float]
)
Attributes: TypeAlias = dict[str, AttributeValue]

_PROVIDER_PREFIX = re.compile(r"([a-z0-9_-]+)/")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# LLMCall.request_params keys that have a gen_ai.request.* attribute of their own.
_REQUEST_PARAMS = {
    "temperature": "gen_ai.request.temperature",
    "max_tokens": "gen_ai.request.max_tokens",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "seed": "gen_ai.request.seed",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "stop": "gen_ai.request.stop_sequences",
}


@dataclasses.dataclass(frozen=True)
class SpanRecord:
    """One finished span: identity and times as the hooks emitted them, name, attributes."""

    name: str
    kind: Literal["client", "internal"]
    trace_id: str
    span_id: str
    parent_span_id: str | None
    start_ns: int
    end_ns: int
    attributes: Attributes
    error: str | None = None


def nanoseconds(moment: datetime) -> int:
    """Nanoseconds since the epoch, exact to the microsecond the datetime holds."""
    return (moment - _EPOCH) // _MICROSECOND * 1000


def describe_run(
    run: RunInfo,
    result: RunResult,
    metrics: Mapping[str, float],
    *,
    capture_content: bool,
) -> SpanRecord:
    """The run's span, ``invoke_agent rlm``: opened by ``run_start``, closed by ``run_end``."""
    attributes: Attributes = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": AGENT_NAME,
        "gen_ai.request.model": run.model,
        "gen_ai.usage.input_tokens": result.prompt_tokens,
        "gen_ai.usage.output_tokens": result.completion_tokens,
        "rlm.run_id": run.run_id,
        "rlm.depth": run.depth,
        "rlm.question": run.question,
        "rlm.ontology.name": run.ontology.name,
        "rlm.ontology.path": run.ontology.path,
        "rlm.ontology.triples": run.ontology.triples,
        "rlm.converged": result.converged,
        "rlm.outcome": _outcome(result),
        "rlm.iterations": result.iterations,
        "rlm.llm_calls": result.llm_calls,
        "rlm.duration_s": result.duration,
    }
    _put(attributes, "rlm.sub_model", run.sub_model)
    _put(attributes, "rlm.parent_run_id", run.parent_run_id)
    _put(attributes, "rlm.cost_usd", result.cost)
    _put(attributes, "rlm.error", result.error)
    if result.problems:
        attributes["rlm.problems"] = list(result.problems)
    for tag, text in run.tags.items():
        attributes[f"rlm.tag.{tag}"] = text
    for metric, number in metrics.items():
        attributes[f"rlm.metric.{metric}"] = number
    if capture_content:
        _put(attributes, "rlm.answer", result.answer)
        _put(attributes, "rlm.sparql", result.sparql)
    return _record(
        f"invoke_agent {AGENT_NAME}", "internal", run, run, result, attributes, result.error
    )


def describe(run: RunInfo, event: Event, *, capture_content: bool) -> SpanRecord | None:
    """The span of one payload other than the run's own; None for a kind it does not know."""
    if isinstance(event, LLMCall):
        return _llm_call(run, event, capture_content)
    if isinstance(event, ToolCall):
        return _tool_call(run, event, capture_content)
    if isinstance(event, Iteration):
        return _iteration(run, event, capture_content)
    if isinstance(event, Setup):
        return _setup(run, event)
    if isinstance(event, MemoryRetrieval):
        return _retrieval(run, event)
    if isinstance(event, Judgment):
        return _judgment(run, event, capture_content)
    if isinstance(event, MemoryExtraction):
        return _extraction(run, event)
    return None


def _llm_call(run: RunInfo, call: LLMCall, capture_content: bool) -> SpanRecord:
    attributes: Attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": call.model,
        "rlm.llm.role": call.role,
        "rlm.llm.depth": call.depth,
    }
    _put(attributes, "gen_ai.provider.name", call.provider or _provider_of(call.model))
    _put(attributes, "gen_ai.response.model", call.response_model)
    _put(attributes, "gen_ai.response.id", call.response_id)
    _put(attributes, "gen_ai.usage.input_tokens", call.prompt_tokens)
    _put(attributes, "gen_ai.usage.output_tokens", call.completion_tokens)
    _put(attributes, "gen_ai.usage.cache_read.input_tokens", call.cached_tokens)
    _put(attributes, "gen_ai.usage.reasoning.output_tokens", call.reasoning_tokens)
    if call.finish_reason is not None:
        attributes["gen_ai.response.finish_reasons"] = [call.finish_reason]
    for key, name in _REQUEST_PARAMS.items():
        value = call.request_params.get(key)
        if isinstance(value, str) and key == "stop":
            attributes[name] = [value]
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            attributes[name] = [str(item) for item in value]
        elif isinstance(value, int | float) and not isinstance(value, bool):
            attributes[name] = value
    _put(attributes, "rlm.cost_usd", call.cost)
    if call.error is not None:
        attributes["error.type"] = _error_type(call.error)
    if capture_content:
        if call.messages:
            attributes["gen_ai.input.messages"] = _json(
                [
                    {"role": m.role, "parts": [{"type": "text", "content": m.text}]}
                    for m in call.messages
                ]
            )
        if call.output is not None:
            message: dict[str, object] = {
                "role": "assistant",
                "parts": [{"type": "text", "content": call.output}],
            }
            if call.finish_reason is not None:
                message["finish_reason"] = call.finish_reason
            attributes["gen_ai.output.messages"] = _json([message])
    return _record(f"chat {call.model}", "client", run, call, call, attributes, call.error)


def _tool_call(run: RunInfo, call: ToolCall, capture_content: bool) -> SpanRecord:
    attributes: Attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": call.name,
        "gen_ai.tool.type": "function",
        "rlm.tool.result_size": call.result_size,
    }
    if call.error is not None:
        attributes["error.type"] = _error_type(call.error)
    if capture_content:
        attributes["gen_ai.tool.call.arguments"] = _json(call.arguments)
        attributes["gen_ai.tool.call.result"] = call.result_preview
    return _record(f"execute_tool {call.name}", "internal", run, call, call, attributes, call.error)


def _iteration(run: RunInfo, step: Iteration, capture_content: bool) -> SpanRecord:
    attributes: Attributes = {
        "rlm.iteration.index": step.index,
        "rlm.iteration.code_chars": len(step.code),
        "rlm.iteration.output_chars": len(step.output),
        "rlm.iteration.llm_calls_used": step.llm_calls_used,
    }
    if step.error is not None:
        attributes["error.type"] = _error_type(step.error)
    if capture_content:
        attributes["rlm.iteration.reasoning"] = step.reasoning
        attributes["rlm.iteration.code"] = step.code
        attributes["rlm.iteration.output"] = step.output
    return _record(f"iteration {step.index}", "internal", run, step, step, attributes, step.error)


def _setup(run: RunInfo, setup: Setup) -> SpanRecord:
    attributes: Attributes = {
        "rlm.ontology.name": setup.ontology.name,
        "rlm.ontology.path": setup.ontology.path,
        "rlm.ontology.triples": setup.ontology.triples,
        "rlm.setup.load_s": setup.load_duration,
        "rlm.setup.index_s": setup.index_duration,
        "rlm.setup.sense_card_s": setup.sense_card_duration,
        "rlm.setup.sense_card_chars": setup.sense_card_chars,
    }
    _put(attributes, "rlm.ontology.format", setup.ontology.format)
    return _record("setup", "internal", run, setup, setup, attributes, setup.error)


def _retrieval(run: RunInfo, retrieval: MemoryRetrieval) -> SpanRecord:
    attributes: Attributes = {
        "rlm.memory.k": retrieval.k,
        "rlm.memory.retrieved": len(retrieval.items),
        "rlm.memory.ids": [item.memory_id for item in retrieval.items],
        "rlm.memory.scores": [item.score for item in retrieval.items],
    }
    return _record("retrieve_memory", "internal", run, retrieval, retrieval, attributes, None)


def _judgment(run: RunInfo, verdict: Judgment, capture_content: bool) -> SpanRecord:
    attributes: Attributes = {
        "rlm.judgment.outcome": {True: "success", False: "failure", None: "unknown"}[
            verdict.success
        ]
    }
    _put(attributes, "rlm.judgment.success", verdict.success)
    _put(attributes, "rlm.judgment.confidence", verdict.confidence)
    if capture_content:
        attributes["rlm.judgment.reason"] = verdict.reason
    return _record("judgment", "internal", run, verdict, verdict, attributes, None)


def _extraction(run: RunInfo, extraction: MemoryExtraction) -> SpanRecord:
    attributes: Attributes = {
        "rlm.memory.extracted": len(extraction.items),
        "rlm.memory.duplicates": sum(item.duplicate for item in extraction.items),
        "rlm.memory.ids": [item.memory_id for item in extraction.items],
    }
    return _record("extract_memory", "internal", run, extraction, extraction, attributes, None)


def _record(
    name: str,
    kind: Literal["client", "internal"],
    run: RunInfo,
    opened: Event,
    closed: Event,
    attributes: Attributes,
    error: str | None,
) -> SpanRecord:
    return SpanRecord(
        name=name,
        kind=kind,
        trace_id=run.trace_id,
        span_id=opened.span_id,
        parent_span_id=opened.parent_span_id,
        start_ns=nanoseconds(opened.started_at),
        end_ns=nanoseconds(closed.timestamp),
        attributes=attributes,
        error=error,
    )


def _outcome(result: RunResult) -> str:
    if result.error is not None:
        return "error"
    return "converged" if result.converged else "not_converged"


def _provider_of(model: str) -> str | None:
    """``openai/gpt-4o`` -> ``openai`` (LiteLLM's provider prefix), when there is one."""
    match = _PROVIDER_PREFIX.match(model)
    return match.group(1) if match else None


def _error_type(error: str) -> str:
    """``ValueError: bad`` -> ``ValueError``; the first word of an error without a type."""
    head = error.split(":", 1)[0].strip()
    return head if head and " " not in head else "error"


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _put(attributes: Attributes, key: str, value: AttributeValue | None) -> None:
    if value is not None:
        attributes[key] = value
