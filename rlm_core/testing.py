"""Helpers for testing rlm-core plugins and code that runs rlm-core.

``capture_events()`` records every hook call of the plugin managers created while it is open, the
way ``structlog.testing.capture_logs()`` records log entries. The pytest fixtures built on these
helpers come with the ``pytest11`` entry point (see :mod:`rlm_core.pytest_plugin`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from rlm_core.events import (
    Event,
    Iteration,
    Judgment,
    LLMCall,
    MemoryExtraction,
    MemoryRetrieval,
    RunInfo,
    RunResult,
    ToolCall,
)
from rlm_core.hookspecs import hookimpl
from rlm_core.plugins import ambient_plugins

__all__ = ["HookCall", "RecordingPlugin", "capture_events"]


@dataclasses.dataclass(frozen=True)
class HookCall:
    """One hook call as a plugin saw it: the hook's name and its keyword arguments."""

    hook: str
    kwargs: Mapping[str, Any]

    @property
    def payload(self) -> Any:
        """The hook's own payload (for ``run_start``, the run itself)."""
        if self.hook == "run_start":
            return self.kwargs["run"]
        if self.hook == "metrics":
            return self.kwargs["values"]
        return next(value for key, value in self.kwargs.items() if key != "run")


class RecordingPlugin:
    """A plugin that implements every hook and keeps each call, in order, thread-safely."""

    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[HookCall] = []
        self._lock = threading.Lock()

    def _record(self, hook: str, **kwargs: Any) -> None:
        with self._lock:
            self.calls.append(HookCall(hook, kwargs))

    def hook_names(self) -> list[str]:
        """The hooks called, in order."""
        return [call.hook for call in self.calls]

    def events(self) -> list[Event]:
        """Every event payload received, in order (``metrics`` calls carry none)."""
        return [call.payload for call in self.calls if call.hook != "metrics"]

    def of(self, hook: str) -> list[HookCall]:
        """The calls of one hook."""
        return [call for call in self.calls if call.hook == hook]

    def __len__(self) -> int:
        return len(self.calls)

    def __iter__(self) -> Iterator[HookCall]:
        return iter(list(self.calls))

    @hookimpl
    def run_start(self, run: RunInfo) -> None:
        self._record("run_start", run=run)

    @hookimpl
    def memory_retrieved(self, run: RunInfo, retrieval: MemoryRetrieval) -> None:
        self._record("memory_retrieved", run=run, retrieval=retrieval)

    @hookimpl
    def iteration(self, run: RunInfo, step: Iteration) -> None:
        self._record("iteration", run=run, step=step)

    @hookimpl
    def llm_call(self, run: RunInfo, call: LLMCall) -> None:
        self._record("llm_call", run=run, call=call)

    @hookimpl
    def tool_call(self, run: RunInfo, call: ToolCall) -> None:
        self._record("tool_call", run=run, call=call)

    @hookimpl
    def judgment(self, run: RunInfo, verdict: Judgment) -> None:
        self._record("judgment", run=run, verdict=verdict)

    @hookimpl
    def memory_extracted(self, run: RunInfo, extraction: MemoryExtraction) -> None:
        self._record("memory_extracted", run=run, extraction=extraction)

    @hookimpl
    def metrics(self, run: RunInfo, values: Mapping[str, float], step: int | None) -> None:
        self._record("metrics", run=run, values=dict(values), step=step)

    @hookimpl
    def run_end(self, run: RunInfo, result: RunResult) -> None:
        self._record("run_end", run=run, result=result)


@contextlib.contextmanager
def capture_events() -> Iterator[RecordingPlugin]:
    """Record every hook call made by plugin managers created while the context is open.

    Context-local: a run started in another thread does not land here. The recorder is removed
    in ``finally``, also when the body raises.
    """
    recorder = RecordingPlugin()
    with ambient_plugins(recorder):
        yield recorder
