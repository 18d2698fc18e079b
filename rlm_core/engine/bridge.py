"""Turns DSPy's own callbacks into rlm-core hooks.

DSPy reports module, LM, interpreter and tool calls through ``BaseCallback``. One REPL step is
the RLM's action predictor finishing (reasoning and code) followed by the interpreter executing
that code; executions before the first action are DSPy's setup and are not steps. Tool calls
are reported for the ontology tools only (``llm_query`` shows up as a sub-LM ``llm_call``).

Spans: DSPy calls a step's LM, tool and sub-LM callbacks before the interpreter's end that makes
the step an ``iteration``, so the step's span is opened when its action module starts and made
the current span (:mod:`rlm_core._spans`) until its code has run. Tools and ``llm_query_batched``
run on threads that copy the context, so every call of the step finds the step as its parent.
Callbacks of another run (a nested run on the same thread) are not this bridge's: it only takes
calls made where its own run's span, or one of its steps, is current.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import orjson
from dspy.primitives.code_interpreter import FinalOutput
from dspy.utils.callback import BaseCallback

from rlm_core._spans import current_span, set_current
from rlm_core.engine.emitter import RunEmitter, Span
from rlm_core.events import Iteration, JSONValue, LLMCall, Message, ToolCall

__all__ = ["HookBridge", "RunTotals"]

_PREVIEW_CHARS = 500
_HISTORY_LOOKBACK = 32


@dataclasses.dataclass
class RunTotals:
    """What the run used, counted whether or not any plugin listens."""

    iterations: int = 0
    llm_calls: int = 0
    sub_llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    fell_back_to_extract: bool = False


@dataclasses.dataclass(frozen=True)
class LMResponse:
    """One finished LM call as the bridge saw it (also what a cassette records)."""

    role: str
    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    model: str


class HookBridge(BaseCallback):  # type: ignore[misc]
    """A DSPy callback bound to one run: its RLM program, its LMs and its emitter."""

    def __init__(
        self,
        emitter: RunEmitter,
        *,
        action_module: object,
        extract_module: object,
        role_of: Callable[[object], str],
        tool_names: Collection[str],
        max_output_chars: int,
        on_response: Callable[[LMResponse], None] | None = None,
        content: Callable[[str], str] | None = None,
    ) -> None:
        """``content`` redacts the text sent to and returned by LMs for ``llm_call``; None keeps
        no content at all (``capture_content = false``)."""
        self.emitter = emitter
        self.totals = RunTotals()
        self.steps: list[dict[str, str | None]] = []
        self._action_module = action_module
        self._extract_module = extract_module
        self._role_of = role_of
        self._tool_names = frozenset(tool_names)
        self._max_output_chars = max_output_chars
        self._on_response = on_response
        self._content = content
        self._lock = threading.Lock()
        self._actions: dict[str, tuple[Span, float]] = {}
        self._pending: tuple[str, Span, float] | None = None
        self._steps: dict[str, tuple[str, str, Span, float]] = {}
        self._tools: dict[str, tuple[str, dict[str, JSONValue], Span, float]] = {}
        self._lms: dict[str, tuple[Any, Span, float, Mapping[str, Any]]] = {}
        self._seen_history: set[str] = set()

    def _parent(self) -> str | None:
        """The span current here if it belongs to this run (its own span or a step), else None:
        the call belongs to another run, or to no run."""
        current = current_span()
        if current is None or current.run_id != self.emitter.run_id:
            return None
        return current.span_id

    # -- REPL steps ---------------------------------------------------------------------------

    def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        if instance is self._action_module:
            if self._parent() is None:
                return
            self.finish()
            step = self.emitter.open()
            # The step's root LM call, its tools and its sub-LM calls all run inside it.
            set_current(self.emitter.context_of(step))
            with self._lock:
                self._actions[call_id] = (step, time.perf_counter())
        elif instance is self._extract_module:
            self.totals.fell_back_to_extract = True
            set_current(self.emitter.context)

    def on_module_end(
        self, call_id: str, outputs: Any | None, exception: Exception | None = None
    ) -> None:
        with self._lock:
            action = self._actions.pop(call_id, None)
            if action is None:
                return
            step, started = action
            if exception is None and outputs is not None:
                self._pending = (str(getattr(outputs, "reasoning", "") or ""), step, started)
                return
        # The step's LM call failed: the step is over, and its span must still close.
        error = "no output" if exception is None else _format_error(exception)
        self._finish_step("", "", step, started, "", f"the step's LM call failed: {error}")

    def finish(self) -> None:
        """Close a step whose code never ran (DSPy could not parse it): its LM call already
        hangs under it. Called when the next step starts and when the run's program returns."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            reasoning, step, started = pending
            error = "the step's code did not run (it could not be parsed)"
            self._finish_step(reasoning, "", step, started, "", error)

    def on_interpreter_execute_start(
        self, call_id: str, instance: Any, inputs: dict[str, Any]
    ) -> None:
        with self._lock:
            if self._pending is None:
                return  # DSPy's own setup code, not a step the model took
            reasoning, step, started = self._pending
            self._pending = None
            self._steps[call_id] = (reasoning, str(inputs.get("code", "")), step, started)

    def on_interpreter_execute_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        with self._lock:
            step = self._steps.pop(call_id, None)
        if step is None:
            return
        reasoning, code, span, started = step
        output = self._bounded(_format_output(outputs)) if exception is None else ""
        error = None if exception is None else self._bounded(_format_error(exception))
        self._finish_step(reasoning, code, span, started, output, error)

    def _finish_step(
        self,
        reasoning: str,
        code: str,
        span: Span,
        started: float,
        output: str,
        error: str | None,
    ) -> None:
        """Count the step, keep it for memory, close its span with ``iteration``."""
        with self._lock:
            index = self.totals.iterations
            self.totals.iterations += 1
            sub_calls = self.totals.sub_llm_calls
            self.steps.append(
                {"reasoning": reasoning, "code": code, "output": output, "error": error}
            )
        set_current(self.emitter.context)  # the step is over: what follows is the run's
        self.emitter.emit(
            "iteration",
            Iteration,
            span,
            index=index,
            reasoning=reasoning,
            code=code,
            output=output,
            error=error,
            duration=time.perf_counter() - started,
            llm_calls_used=sub_calls,
        )

    # -- ontology tools -----------------------------------------------------------------------

    def on_interpreter_tool_call_start(
        self, call_id: str, instance: Any, inputs: dict[str, Any]
    ) -> None:
        name = inputs.get("tool_name")
        parent = self._parent()
        if name not in self._tool_names or parent is None:
            return
        arguments: dict[str, JSONValue] = {
            f"arg{i}": _json_safe(value) for i, value in enumerate(inputs.get("args") or [])
        }
        arguments.update({key: _json_safe(v) for key, v in (inputs.get("kwargs") or {}).items()})
        span = self.emitter.open(parent)
        with self._lock:
            self._tools[call_id] = (str(name), arguments, span, time.perf_counter())

    def on_interpreter_tool_call_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        with self._lock:
            call = self._tools.pop(call_id, None)
        if call is None:
            return
        name, arguments, span, started = call
        text = "" if outputs is None else str(outputs)
        self.emitter.emit(
            "tool_call",
            ToolCall,
            span,
            name=name,
            arguments=arguments,
            result_size=len(text),
            result_preview=text[:_PREVIEW_CHARS],
            duration=time.perf_counter() - started,
            error=None if exception is None else _format_error(exception),
        )

    # -- LM calls -----------------------------------------------------------------------------

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        parent = self._parent()
        if parent is None:
            return
        span = self.emitter.open(parent)
        with self._lock:
            self._lms[call_id] = (instance, span, time.perf_counter(), inputs)

    def on_lm_end(
        self, call_id: str, outputs: Any | None, exception: Exception | None = None
    ) -> None:
        with self._lock:
            call = self._lms.pop(call_id, None)
        if call is None:
            return
        lm, span, started, inputs = call
        latency = time.perf_counter() - started
        role = self._role_of(lm)
        entry = self._history_entry(lm, outputs) if exception is None else None
        usage = (entry or {}).get("usage") or {}
        prompt_tokens = usage.get("prompt_tokens")
        completion_tokens = usage.get("completion_tokens")
        cost = (entry or {}).get("cost")
        with self._lock:
            self.totals.llm_calls += 1
            if role == "sub":
                self.totals.sub_llm_calls += 1
            self.totals.prompt_tokens += prompt_tokens or 0
            self.totals.completion_tokens += completion_tokens or 0
            if isinstance(cost, int | float):
                self.totals.cost = (self.totals.cost or 0.0) + cost
        model = str(getattr(lm, "model", "unknown"))
        if self.emitter.wants("llm_call"):
            self.emitter.emit(
                "llm_call",
                LLMCall,
                span,
                model=model,
                role=role,
                depth=self.emitter.depth + (1 if role == "sub" else 0),
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                latency=latency,
                cost=cost,
                error=None if exception is None else _format_error(exception),
                **self._content_fields(entry, inputs, outputs),
                **_genai_fields(lm, entry, usage),
            )
        if self._on_response is not None and exception is None:
            self._on_response(
                LMResponse(role, _first_text(outputs), prompt_tokens, completion_tokens, model)
            )

    def _content_fields(
        self, entry: Mapping[str, Any] | None, inputs: Mapping[str, Any], outputs: Any
    ) -> dict[str, Any]:
        """``messages`` and ``output`` of an LM call, redacted; none when content is off."""
        redact = self._content
        if redact is None:
            return {}
        source = entry or inputs
        messages = source.get("messages")
        if not messages and source.get("prompt") is not None:
            messages = [{"role": "user", "content": source.get("prompt")}]
        sent = tuple(
            Message(role=str(message.get("role", "")), text=redact(_message_text(message)))
            for message in messages or ()
            if isinstance(message, Mapping)
        )
        output = None if outputs is None else redact(_first_text(outputs))
        return {"messages": sent, "output": output}

    def _history_entry(self, lm: Any, outputs: Any) -> dict[str, Any] | None:
        """The LM's history entry of this call: the newest unclaimed one with these outputs.

        Concurrent calls on one LM (``llm_query_batched``) append in any order, so the newest
        entry alone could belong to another call.
        """
        history = getattr(lm, "history", None) or []
        with self._lock:
            for entry in reversed(history[-_HISTORY_LOOKBACK:]):
                uuid = entry.get("uuid")
                if uuid in self._seen_history or entry.get("outputs") != outputs:
                    continue
                self._seen_history.add(uuid)
                found: dict[str, Any] = entry
                return found
        return None

    def _bounded(self, text: str) -> str:
        if len(text) <= self._max_output_chars:
            return text
        cut = len(text) - self._max_output_chars
        return f"{text[: self._max_output_chars]}\n... ({cut} more characters)"


def _message_text(message: Mapping[str, Any]) -> str:
    """The text of a chat message whose content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", "")) if isinstance(part, Mapping) else str(part)
            for part in content
        )
    return "" if content is None else str(content)


_REQUEST_PARAMS = (
    "temperature",
    "max_tokens",
    "top_p",
    "n",
    "seed",
    "stop",
    "max_completion_tokens",
)


def _genai_fields(
    lm: Any, entry: Mapping[str, Any] | None, usage: Mapping[str, Any]
) -> dict[str, Any]:
    """What the provider reported beyond tokens: names and ids, why it stopped, the request's
    parameters, cached and reasoning tokens. None where it reported nothing."""
    model = str(getattr(lm, "model", ""))
    provider = model.split("/", 1)[0] if "/" in model else None
    if entry is None:
        return {"provider": provider}
    response = entry.get("response")
    usage_object = getattr(response, "usage", None)
    params = {**(getattr(lm, "kwargs", None) or {}), **(entry.get("kwargs") or {})}
    return {
        "provider": provider,
        "response_model": _text_or_none(entry.get("response_model")),
        "finish_reason": _text_or_none(_finish_reason(response)),
        "response_id": _text_or_none(getattr(response, "id", None)),
        "request_params": {
            key: _json_safe(params[key]) for key in _REQUEST_PARAMS if params.get(key) is not None
        },
        "cached_tokens": _count(
            _detail(usage, "prompt_tokens_details", "cached_tokens"),
            getattr(usage_object, "cache_read_tokens", None),
        ),
        "reasoning_tokens": _count(
            _detail(usage, "completion_tokens_details", "reasoning_tokens"),
            getattr(usage_object, "reasoning_tokens", None),
        ),
    }


def _finish_reason(response: Any) -> Any:
    reason = getattr(response, "finish_reason", None)
    if reason is None:
        choices = getattr(response, "choices", None)
        if isinstance(choices, list) and choices:
            reason = getattr(choices[0], "finish_reason", None)
    return reason


def _detail(usage: Mapping[str, Any], group: str, key: str) -> Any:
    details = usage.get(group)
    if isinstance(details, Mapping):
        return details.get(key)
    return getattr(details, key, None)


def _count(*values: Any) -> int | None:
    return next((value for value in values if type(value) is int), None)


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _format_output(outputs: Any) -> str:
    if outputs is None:
        return ""
    if isinstance(outputs, FinalOutput):
        return "SUBMIT " + orjson.dumps(_json_safe(outputs.output)).decode()
    if isinstance(outputs, list):
        return "\n".join(map(str, outputs))
    return str(outputs)


def _format_error(exception: BaseException) -> str:
    text = str(exception)
    name = type(exception).__name__
    return text if text.startswith(f"{name}:") else f"{name}: {text}"


def _first_text(outputs: Any) -> str:
    first = outputs[0] if isinstance(outputs, list) and outputs else outputs
    if isinstance(first, dict):
        return str(first.get("text", ""))
    return "" if first is None else str(first)


def _json_safe(value: Any) -> JSONValue:
    """Tool arguments and SUBMIT values as JSON data (anything else by its ``repr``)."""
    try:
        safe: JSONValue = orjson.loads(orjson.dumps(value))
    except TypeError:
        return repr(value)
    return safe
