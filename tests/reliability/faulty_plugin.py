"""A third-party tracker that misbehaves in one chosen hook, installed through an entry point."""

from __future__ import annotations

import threading
import time
from typing import Any

from rlm_core import hookimpl

RELEASE = threading.Event()
"""Set by the tests at the end, so a plugin thread that hangs can finish."""

FAULTS = ("raises", "hangs", "slow", "garbage")


class FaultyTracker:
    """Implements every hook; behaves except in ``hook``, where it shows ``fault``."""

    def __init__(self, hook: str = "iteration", fault: str = "raises") -> None:
        self.hook = hook
        self.fault = fault
        self.calls: list[str] = []

    def _call(self, hook: str) -> Any:
        self.calls.append(hook)
        if hook != self.hook:
            return None
        if self.fault == "raises":
            raise RuntimeError(f"faulty plugin breaks in {hook}")
        if self.fault == "hangs":
            RELEASE.wait()
        if self.fault == "slow":
            time.sleep(0.02)
        if self.fault == "garbage":
            return {"not": "None"}, object(), iter(range(3))
        return None

    @hookimpl
    def run_start(self, run: Any) -> Any:
        return self._call("run_start")

    @hookimpl
    def setup(self, run: Any, setup: Any) -> Any:
        return self._call("setup")

    @hookimpl
    def memory_retrieved(self, run: Any, retrieval: Any) -> Any:
        return self._call("memory_retrieved")

    @hookimpl
    def iteration(self, run: Any, step: Any) -> Any:
        return self._call("iteration")

    @hookimpl
    def llm_call(self, run: Any, call: Any) -> Any:
        return self._call("llm_call")

    @hookimpl
    def tool_call(self, run: Any, call: Any) -> Any:
        return self._call("tool_call")

    @hookimpl
    def judgment(self, run: Any, verdict: Any) -> Any:
        return self._call("judgment")

    @hookimpl
    def memory_extracted(self, run: Any, extraction: Any) -> Any:
        return self._call("memory_extracted")

    @hookimpl
    def metrics(self, run: Any, values: Any, step: Any) -> Any:
        return self._call("metrics")

    @hookimpl
    def run_end(self, run: Any, result: Any) -> Any:
        return self._call("run_end")
