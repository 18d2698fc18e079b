"""Threaded dispatch: a plugin whose hooks run on a worker thread of its own.

An inline hook runs on the engine thread, so a plugin that never returns would stop the run.
A plugin registered with ``dispatch = "thread"`` gets its hook calls queued to its own worker
instead, in order; the engine thread only enqueues. At ``run_end`` the engine waits at most
``hook_timeout`` seconds for the plugin to catch up; a plugin that does not is blocked for the
process, and what it had not processed is counted as dropped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from rlm_core._fault_isolation import PluginHealth
from rlm_core.delivery import BackgroundDelivery

__all__ = ["DISPATCH_MODES", "ThreadedDispatch"]

DISPATCH_MODES = ("inline", "thread")

_Call = tuple[Callable[..., object], tuple[Any, ...], dict[str, Any]]


class ThreadedDispatch:
    """The worker thread and queue of one plugin."""

    def __init__(self, health: PluginHealth, hook_timeout: float, max_queue: int = 10_000):
        self.health = health
        self.hook_timeout = hook_timeout
        self._worker: BackgroundDelivery[_Call] = BackgroundDelivery(
            self._deliver,
            name=f"rlm-plugin-{health.name}",
            max_queue=max_queue,
            batch_size=256,
            when_full="drop",
            exit_timeout=hook_timeout,
        )

    @property
    def dropped(self) -> int:
        """Hook calls this plugin never got (queue full, or given up at a timeout)."""
        return self._worker.stats.dropped

    def wrap(self, guarded: Callable[..., object], hook: str) -> Callable[..., None]:
        """The implementation pluggy calls: enqueue, and for ``run_end`` wait (bounded)."""

        @functools.wraps(guarded)
        def enqueue(*args: Any, **kwargs: Any) -> None:
            if self.health.blocked_reason is not None:
                return
            self._worker.submit((guarded, args, kwargs))
            if hook == "run_end":
                self.drain(self.hook_timeout)

        return enqueue

    def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the plugin to catch up; block it if it does not."""
        if self.health.blocked_reason is not None:
            return False
        if self._worker.flush(timeout):
            return True
        self.health.block(
            f"did not process its events within hook_timeout ({self.hook_timeout:g} s)"
        )
        self._worker.close(0)
        return False

    @staticmethod
    def _deliver(batch: list[_Call]) -> None:
        for guarded, args, kwargs in batch:
            guarded(*args, **kwargs)
