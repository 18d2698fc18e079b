"""Live progress of a run on the terminal: iteration n of max, LM calls, tokens.

A plugin of the CLI's own, registered only for ``rlm run`` / ``rlm demo`` on a terminal. It
writes one short status line to stderr and rewrites it in place.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rlm_core.events import Iteration, LLMCall, RunInfo, RunResult
from rlm_core.hookspecs import hookimpl


class ProgressLine:
    """Redraws ``iteration 3/20 · 7 LM calls · 12,345 tokens`` as the run goes."""

    name = "progress"

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.max_iterations = 0
        self.iterations = 0
        self.llm_calls = 0
        self.tokens = 0

    def _draw(self, note: str = "") -> None:
        line = (
            f"iteration {self.iterations}/{self.max_iterations} · {self.llm_calls} LM calls · "
            f"{self.tokens:,} tokens{note}"
        )
        self.stream.write(f"\r\033[K{line}")
        self.stream.flush()

    @hookimpl
    def run_start(self, run: RunInfo) -> None:
        self.max_iterations = run.limits.max_iterations
        self._draw()

    @hookimpl
    def iteration(self, step: Iteration) -> None:
        self.iterations = step.index + 1
        self._draw(" · last step failed" if step.error else "")

    @hookimpl
    def llm_call(self, call: LLMCall) -> None:
        self.llm_calls += 1
        self.tokens += (call.prompt_tokens or 0) + (call.completion_tokens or 0)
        self._draw()

    @hookimpl
    def run_end(self, result: RunResult) -> None:
        self.stream.write("\r\033[K")
        self.stream.flush()
