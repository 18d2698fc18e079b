"""The REPL that runs LM-written code: DSPy's local interpreter, bounded in time per step.

DSPy's ``LocalInterpreter`` runs code in a subprocess of this Python. It is NOT a sandbox: the
code has the user's files, environment and network. Use ``interpreter = "deno"`` (DSPy's
Pyodide/WASM interpreter, which needs Deno on PATH) to run untrusted models.

A step that exceeds the time limit kills DSPy's worker. Instead of ending the run, this
interpreter starts a fresh worker and reports the timeout to the model as the step's error, so
the model can try something cheaper; variables defined in earlier steps are gone after that.
"""

from __future__ import annotations

import inspect
import shutil
from collections.abc import Callable
from typing import Any

from dspy.primitives.code_interpreter import CodeExecutionError, CodeInterpreterError
from dspy.primitives.local_interpreter import LocalInterpreter

from rlm_core.config import INTERPRETERS
from rlm_core.engine.reaper import forget_group, watch_group
from rlm_core.errors import ConfigError

__all__ = ["BoundedInterpreter", "interpreter_factory", "sandbox_notice"]

_NOT_A_SANDBOX = (
    "note: LM-written code runs in a local subprocess with your files, environment and "
    "network (not a sandbox); to isolate it, use --interpreter deno or "
    'interpreter = "deno" in rlm.toml'
)


def sandbox_notice(kind: str, model: str) -> str | None:
    """The one-line notice for a live model's code running locally; None for replays and Deno.

    A replayed cassette runs code someone already saw, so only live models get the notice.
    """
    from rlm_core.engine.lm import SCRIPTED_PREFIX

    if kind != "local" or model.startswith(SCRIPTED_PREFIX):
        return None
    return _NOT_A_SANDBOX


class _KeywordToolsInterpreter(LocalInterpreter):  # type: ignore[misc]
    """Lets REPL code call host tools with positional arguments, and dies with this process.

    DSPy wraps RLM tools in ``invoke(**kwargs)`` while its worker forwards positional arguments
    too, so ``search_entity("Activity")`` would fail; bind them to names first.

    DSPy starts the worker as the leader of its own process group; the group is handed to the
    :mod:`~rlm_core.engine.reaper` so that it ends with this process even on SIGKILL, and taken
    back when DSPy kills it (its number may then be reused).
    """

    def start(self) -> None:
        started = self._process is None
        super().start()
        if started and self._process is not None:
            watch_group(self._process.pid)

    def _kill(self) -> None:
        process = self._process
        super()._kill()
        if process is not None:
            forget_group(process.pid)

    def invoke_tool(self, tool_name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        tool = self.tools.get(tool_name)
        if args and tool is not None:
            try:
                bound = inspect.signature(tool).bind(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{tool_name}(): {exc}") from None
            args, kwargs = [], dict(bound.arguments)
        return super().invoke_tool(tool_name, args, kwargs)


class BoundedInterpreter:
    """A CodeInterpreter whose steps have a time limit and which survives a timed-out step."""

    execution_instructions = LocalInterpreter.execution_instructions

    def __init__(self, step_timeout: float) -> None:
        self.step_timeout = step_timeout
        self._worker = _KeywordToolsInterpreter(execution_timeout=step_timeout)

    @property
    def tools(self) -> dict[str, Callable[..., Any]]:
        tools: dict[str, Callable[..., Any]] = self._worker.tools
        return tools

    @property
    def output_fields(self) -> list[dict[str, Any]] | None:
        fields: list[dict[str, Any]] | None = self._worker.output_fields
        return fields

    @output_fields.setter
    def output_fields(self, value: list[dict[str, Any]] | None) -> None:
        self._worker.output_fields = value

    def start(self) -> None:
        self._worker.start()

    def execute(self, code: str, variables: dict[str, Any] | None = None) -> Any:
        try:
            return self._worker.execute(code, variables)
        except CodeInterpreterError as exc:
            if isinstance(exc, CodeExecutionError) or "execution timeout" not in str(exc):
                raise
            self._restart()
            raise CodeExecutionError(
                f"TimeoutError: the step ran longer than its {self.step_timeout:g} s limit and was "
                "stopped; the REPL was restarted, so variables from earlier steps are gone"
            ) from None

    def _restart(self) -> None:
        old = self._worker
        self._worker = _KeywordToolsInterpreter(
            tools=dict(old.tools),
            output_fields=old.output_fields,
            execution_timeout=self.step_timeout,
        )

    def shutdown(self) -> None:
        self._worker.shutdown()

    def __call__(self, code: str, variables: dict[str, Any] | None = None) -> Any:
        return self.execute(code, variables)


def interpreter_factory(kind: str, step_timeout: float) -> Callable[[], Any]:
    """A zero-argument factory of interpreters for ``dspy.RLM``."""
    if kind == "local":
        return lambda: BoundedInterpreter(step_timeout)
    if kind == "deno":
        if shutil.which("deno") is None:
            raise ConfigError(
                "interpreter 'deno' needs Deno on PATH (https://deno.com, or "
                "'npm install -g deno'); use interpreter = \"local\" otherwise"
            )
        from dspy.primitives.python_interpreter import PythonInterpreter

        return lambda: PythonInterpreter()
    raise ConfigError(f"unknown interpreter {kind!r} (expected one of: {', '.join(INTERPRETERS)})")
