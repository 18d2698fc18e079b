"""MLflow traces built from the run's own spans (``log_traces = true``), on the delivery worker.

Every hook payload is a span of the run's trace (``span_id``, ``parent_span_id``, ``started_at``,
``timestamp``; ``RunInfo`` opens the run's span and ``RunResult`` closes it), so the trace is
rebuilt exactly, with the same ids and times, and written through a tracing client bound to the
tracker's own store: no process-global tracking URI, no DSPy autologging, any thread. The trace
is linked to the run's MLflow run. A nested run (or a run that joined a caller's trace) adds its
spans to the trace it belongs to.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from rlm_core.events import (
    Event,
    Iteration,
    JSONValue,
    Judgment,
    LLMCall,
    MemoryExtraction,
    MemoryRetrieval,
    RunInfo,
    RunResult,
    Setup,
    ToolCall,
)
from rlm_core.runlog import MetricsPoint

__all__ = ["TRACE_RUN_ID_KEY", "TraceWriter", "mlflow_trace_id"]

TRACE_RUN_ID_KEY = "rlm.run_id"

Redact = Callable[[JSONValue], JSONValue]


def mlflow_trace_id(trace_id: str) -> str:
    """MLflow's id of the trace with W3C trace id ``trace_id`` (32 hex)."""
    return f"tr-{trace_id}"


class TraceWriter:
    """Writes runs' traces to one store; lives on the delivery worker."""

    def __init__(self, tracking_uri: str, redact: Redact) -> None:
        self._tracking_uri = tracking_uri
        self._redact = redact
        self._client: Any = None

    def write(
        self,
        client: Any,
        experiment_id: str,
        mlflow_run_id: str,
        run: RunInfo,
        events: Iterable[Event | MetricsPoint],
    ) -> str:
        """Log the run's spans (and, for a trace's root run, the trace) and link the trace to
        the MLflow run; the MLflow trace id."""
        from mlflow.entities import TraceInfo, TraceLocation, TraceState
        from mlflow.tracing.client import TracingClient

        if self._client is None:
            self._client = TracingClient(self._tracking_uri)
        trace_id = mlflow_trace_id(run.trace_id)
        spans, result = self._spans(run, events, trace_id)
        if run.parent_span_id is None:  # the root of its trace: this run owns the trace
            end = result.timestamp if result is not None else run.timestamp
            failed = result is None or result.error is not None
            self._client.start_trace(
                TraceInfo(
                    trace_id=trace_id,
                    trace_location=TraceLocation.from_experiment_id(experiment_id),
                    request_time=_millis_ns(_ns(run.started_at)),
                    execution_duration=_millis_ns(_ns(end) - _ns(run.started_at)),
                    state=TraceState.ERROR if failed else TraceState.OK,
                    trace_metadata={TRACE_RUN_ID_KEY: run.run_id},
                    tags={},
                    request_preview=str(self._redact(run.question))[:1000],
                    response_preview=str(self._redact(result.answer or ""))[:1000]
                    if result
                    else None,
                )
            )
        self._client.log_spans(experiment_id, spans)
        client.link_traces_to_run([trace_id], mlflow_run_id)
        return trace_id

    def _spans(
        self, run: RunInfo, events: Iterable[Event | MetricsPoint], trace_id: str
    ) -> tuple[list[Any], RunResult | None]:
        result = next((e for e in events if isinstance(e, RunResult)), None)
        end = result.timestamp if result is not None else run.timestamp
        spans = [
            self._span(
                run,
                trace_id,
                name=f"invoke_agent rlm ({run.ontology.name})",
                span_id=run.span_id,
                parent=run.parent_span_id,
                start=_ns(run.started_at),
                end=_ns(end),
                kind="AGENT",
                inputs={"question": run.question, "ontology": run.ontology.name},
                outputs=None
                if result is None
                else {"answer": result.answer, "sparql": result.sparql, "error": result.error},
                attributes={
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.request.model": run.model,
                    "rlm.run_id": run.run_id,
                    "rlm.depth": run.depth,
                },
                error=None if result is None else result.error,
            )
        ]
        for event in events:
            if isinstance(event, RunInfo | RunResult | MetricsPoint):
                continue
            spans.append(self._event_span(run, trace_id, event))
        return spans, result

    def _event_span(self, run: RunInfo, trace_id: str, event: Event) -> Any:
        name, kind, inputs, outputs, attributes, error = _describe(event)
        return self._span(
            run,
            trace_id,
            name=name,
            span_id=event.span_id,
            parent=event.parent_span_id,
            start=_ns(event.started_at),
            end=_ns(event.timestamp),
            kind=kind,
            inputs=inputs,
            outputs=outputs,
            attributes=attributes,
            error=error,
        )

    def _span(
        self,
        run: RunInfo,
        trace_id: str,
        *,
        name: str,
        span_id: str,
        parent: str | None,
        start: int,
        end: int,
        kind: str,
        inputs: JSONValue,
        outputs: JSONValue,
        attributes: dict[str, JSONValue],
        error: str | None,
    ) -> Any:
        from mlflow.entities import Span
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

        def context(span: str) -> SpanContext:
            return SpanContext(int(run.trace_id, 16), int(span, 16), False, TraceFlags(1))

        values: dict[str, JSONValue] = {
            "mlflow.traceRequestId": trace_id,
            "mlflow.spanType": kind,
            "mlflow.spanInputs": self._redact(inputs),
            "mlflow.spanOutputs": self._redact(outputs),
            **{key: self._redact(value) for key, value in attributes.items()},
        }
        status = Status(StatusCode.ERROR, error) if error else Status(StatusCode.OK)
        return Span(
            ReadableSpan(
                name=name,
                context=context(span_id),
                parent=context(parent) if parent else None,
                attributes={key: json.dumps(value) for key, value in values.items()},
                start_time=start,
                end_time=max(start, end),
                status=status,
            )
        )


def _describe(
    event: Event,
) -> tuple[str, str, JSONValue, JSONValue, dict[str, JSONValue], str | None]:
    """Name, MLflow span type, inputs, outputs, attributes and error of one payload's span."""
    if isinstance(event, LLMCall):
        usage: dict[str, JSONValue] = {}
        if event.prompt_tokens is not None or event.completion_tokens is not None:
            usage = {
                "mlflow.chat.tokenUsage": {
                    "input_tokens": event.prompt_tokens or 0,
                    "output_tokens": event.completion_tokens or 0,
                    "total_tokens": (event.prompt_tokens or 0) + (event.completion_tokens or 0),
                }
            }
        attributes: dict[str, JSONValue] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": event.model,
            "gen_ai.response.model": event.response_model,
            "gen_ai.provider.name": event.provider,
            "gen_ai.usage.input_tokens": event.prompt_tokens,
            "gen_ai.usage.output_tokens": event.completion_tokens,
            "rlm.role": event.role,
            "rlm.depth": event.depth,
            **usage,
        }
        messages: JSONValue = [{"role": m.role, "content": m.text} for m in event.messages]
        return (
            f"chat {event.model}",
            "CHAT_MODEL",
            messages,
            event.output,
            attributes,
            event.error,
        )
    if isinstance(event, ToolCall):
        return (
            f"execute_tool {event.name}",
            "TOOL",
            dict(event.arguments),
            event.result_preview,
            {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": event.name},
            event.error,
        )
    if isinstance(event, Iteration):
        return (
            f"iteration {event.index}",
            "CHAIN",
            {"reasoning": event.reasoning, "code": event.code},
            event.output,
            {"rlm.iteration": event.index},
            event.error,
        )
    if isinstance(event, MemoryRetrieval):
        items: JSONValue = [{"memory_id": i.memory_id, "title": i.title} for i in event.items]
        return (
            "memory_retrieval",
            "RETRIEVER",
            {"query": event.query, "k": event.k},
            items,
            {},
            None,
        )
    if isinstance(event, Judgment):
        verdict: JSONValue = {
            "success": event.success,
            "reason": event.reason,
            "confidence": event.confidence,
        }
        return ("judgment", "EVALUATOR", None, verdict, {}, None)
    if isinstance(event, MemoryExtraction):
        extracted: JSONValue = [{"memory_id": i.memory_id, "title": i.title} for i in event.items]
        return ("memory_extraction", "UNKNOWN", None, extracted, {}, None)
    if isinstance(event, Setup):
        return (
            "setup",
            "UNKNOWN",
            {"ontology": event.ontology.name},
            {"triples": event.ontology.triples},
            {},
            event.error,
        )
    return (event.kind, "UNKNOWN", None, None, {}, None)


def _ns(moment: Any) -> int:
    return int(moment.timestamp() * 1_000_000_000)


def _millis_ns(nanoseconds: int) -> int:
    return nanoseconds // 1_000_000
