"""Helpers for testing rlm-core plugins and code that runs rlm-core.

``capture_events()`` records every hook call of the plugin managers created while it is open, the
way ``structlog.testing.capture_logs()`` records log entries. ``write_cassette()`` and the
response builders script an LM for a real run (see :mod:`rlm_core.engine.cassette`). The pytest
fixtures built on these helpers come with the ``pytest11`` entry point
(see :mod:`rlm_core.pytest_plugin`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from rlm_core._conformance import Check, ConformanceReport, check_plugin
from rlm_core._demo import DEMO_CASSETTE, DEMO_ONTOLOGY, DEMO_QUESTION
from rlm_core._traces import RunBuilder, TraceError, check_trace, span_children
from rlm_core.engine.cassette import CASSETTE_VERSION, Response
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
from rlm_core.hookspecs import hookimpl
from rlm_core.plugins import ambient_plugins

__all__ = [
    "DEMO_CASSETTE",
    "DEMO_ONTOLOGY",
    "DEMO_QUESTION",
    "Check",
    "ConformanceReport",
    "HookCall",
    "RecordingPlugin",
    "RunBuilder",
    "TraceError",
    "capture_events",
    "check_plugin",
    "check_trace",
    "scripted_extract",
    "scripted_step",
    "scripted_sub",
    "span_children",
    "write_cassette",
]


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
    def setup(self, run: RunInfo, setup: Setup) -> None:
        self._record("setup", run=run, setup=setup)

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


def scripted_step(reasoning: str, code: str, *, prompt_tokens: int = 900) -> Response:
    """A root-LM response in DSPy's chat format: the model's reasoning and the code to run."""
    text = (
        f"[[ ## reasoning ## ]]\n{reasoning}\n\n[[ ## code ## ]]\n```python\n{code.strip()}\n```"
        "\n\n[[ ## completed ## ]]"
    )
    return Response("root", text, prompt_tokens, max(1, len(text) // 4))


def scripted_sub(text: str, *, prompt_tokens: int = 200) -> Response:
    """A sub-LM response, the answer to one ``llm_query`` from REPL code."""
    return Response("sub", text, prompt_tokens, max(1, len(text) // 4))


def scripted_extract(answer: str, sparql: str, evidence: list[str]) -> Response:
    """The root LM's answer to DSPy's extract step, which runs when the iterations ran out."""
    text = (
        f"[[ ## answer ## ]]\n{answer}\n\n[[ ## sparql ## ]]\n{sparql}\n\n"
        f"[[ ## evidence ## ]]\n{json.dumps(evidence)}\n\n[[ ## completed ## ]]"
    )
    return Response("root", text, 1200, max(1, len(text) // 4))


def write_cassette(path: str | Path, responses: Iterable[Response]) -> Path:
    """Write a cassette file that ``--lm scripted:PATH`` replays."""
    path = Path(path)
    lines = [orjson.dumps({"cassette": CASSETTE_VERSION, "recorded_with": "rlm_core.testing"})]
    lines.extend(orjson.dumps(response.to_dict()) for response in responses)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path
