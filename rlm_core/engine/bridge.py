"""Turns DSPy's own callbacks into rlm-core hooks.

DSPy reports module, LM, interpreter and tool calls through ``BaseCallback``. One REPL step is
the RLM's action predictor finishing (reasoning and code) followed by the interpreter executing
that code; executions before the first action are DSPy's setup and are not steps. Tool calls
are reported for the ontology tools only (``llm_query`` shows up as a sub-LM ``llm_call``).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

import orjson
from dspy.primitives.code_interpreter import FinalOutput
from dspy.utils.callback import BaseCallback

from rlm_core.engine.emitter import RunEmitter
from rlm_core.events import Iteration, JSONValue, LLMCall, ToolCall

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
    ) -> None:
        self.emitter = emitter
        self.totals = RunTotals()
        self.steps: list[dict[str, str | None]] = []
        self._action_module = action_module
        self._extract_module = extract_module
        self._role_of = role_of
        self._tool_names = frozenset(tool_names)
        self._max_output_chars = max_output_chars
        self._on_response = on_response
        self._lock = threading.Lock()
        self._actions: dict[str, float] = {}
        self._pending: tuple[str, float] | None = None
        self._steps: dict[str, tuple[str, str, float]] = {}
        self._tools: dict[str, tuple[str, dict[str, JSONValue], float]] = {}
        self._lms: dict[str, tuple[Any, float]] = {}
        self._seen_history: set[str] = set()

    # -- REPL steps ---------------------------------------------------------------------------

    def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        if instance is self._action_module:
            with self._lock:
                self._actions[call_id] = time.perf_counter()
        elif instance is self._extract_module:
            self.totals.fell_back_to_extract = True

    def on_module_end(
        self, call_id: str, outputs: Any | None, exception: Exception | None = None
    ) -> None:
        with self._lock:
            started = self._actions.pop(call_id, None)
            if started is None or exception is not None or outputs is None:
                return
            self._pending = (str(getattr(outputs, "reasoning", "") or ""), started)

    def on_interpreter_execute_start(
        self, call_id: str, instance: Any, inputs: dict[str, Any]
    ) -> None:
        with self._lock:
            if self._pending is None:
                return  # DSPy's own setup code, not a step the model took
            reasoning, started = self._pending
            self._pending = None
            self._steps[call_id] = (reasoning, str(inputs.get("code", "")), started)

    def on_interpreter_execute_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        with self._lock:
            step = self._steps.pop(call_id, None)
            if step is None:
                return
            index = self.totals.iterations
            self.totals.iterations += 1
            sub_calls = self.totals.sub_llm_calls
        reasoning, code, started = step
        output = self._bounded(_format_output(outputs)) if exception is None else ""
        error = None if exception is None else self._bounded(_format_error(exception))
        with self._lock:
            self.steps.append(
                {"reasoning": reasoning, "code": code, "output": output, "error": error}
            )
        self.emitter.emit(
            "iteration",
            Iteration,
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
        if name not in self._tool_names:
            return
        arguments: dict[str, JSONValue] = {
            f"arg{i}": _json_safe(value) for i, value in enumerate(inputs.get("args") or [])
        }
        arguments.update({key: _json_safe(v) for key, v in (inputs.get("kwargs") or {}).items()})
        with self._lock:
            self._tools[call_id] = (str(name), arguments, time.perf_counter())

    def on_interpreter_tool_call_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        with self._lock:
            call = self._tools.pop(call_id, None)
        if call is None:
            return
        name, arguments, started = call
        text = "" if outputs is None else str(outputs)
        self.emitter.emit(
            "tool_call",
            ToolCall,
            name=name,
            arguments=arguments,
            result_size=len(text),
            result_preview=text[:_PREVIEW_CHARS],
            duration=time.perf_counter() - started,
            error=None if exception is None else _format_error(exception),
        )

    # -- LM calls -----------------------------------------------------------------------------

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        with self._lock:
            self._lms[call_id] = (instance, time.perf_counter())

    def on_lm_end(
        self, call_id: str, outputs: Any | None, exception: Exception | None = None
    ) -> None:
        with self._lock:
            call = self._lms.pop(call_id, None)
        if call is None:
            return
        lm, started = call
        latency = time.perf_counter() - started
        role = self._role_of(lm)
        entry = self._history_entry(lm, outputs) if exception is None else None
        usage = (entry or {}).get("usage") or {}
        prompt_tokens = usage.get("prompt_tokens")
        completion_tokens = usage.get("completion_tokens")
        with self._lock:
            self.totals.llm_calls += 1
            if role == "sub":
                self.totals.sub_llm_calls += 1
            self.totals.prompt_tokens += prompt_tokens or 0
            self.totals.completion_tokens += completion_tokens or 0
        model = str(getattr(lm, "model", "unknown"))
        self.emitter.emit(
            "llm_call",
            LLMCall,
            model=model,
            role=role,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency=latency,
            cost=(entry or {}).get("cost"),
            error=None if exception is None else _format_error(exception),
        )
        if self._on_response is not None and exception is None:
            self._on_response(
                LMResponse(role, _first_text(outputs), prompt_tokens, completion_tokens, model)
            )

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
