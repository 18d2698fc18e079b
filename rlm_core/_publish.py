"""Publish derived numbers to every plugin of a run in progress, through the ``metrics`` hook.

A plugin that computes numbers from a run's events (memory metrics, costs, ...) should not need
to know which trackers record them. Hooks receive the run but not its plugin manager, and their
signatures are a public contract, so the engine instead registers each run's emitter here from
``run_start`` until ``run_end`` has returned, and :func:`publish_metrics` finds it by run id.

Publishing from inside a hook is fine: the emitter's lock is re-entrant, so the ``metrics`` call
is made right away, on the same thread, before the hook returns. A plugin that publishes at
``run_end`` should mark that implementation ``tryfirst=True``: trackers whose own ``run_end``
already ran (and closed the run) would otherwise get the numbers too late.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Protocol

from rlm_core.events import RunInfo

__all__ = ["MetricsEmitter", "publish_metrics", "register_run", "unregister_run"]


class MetricsEmitter(Protocol):
    """What the registry needs of a run's emitter (``rlm_core.engine.emitter.RunEmitter``)."""

    def metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        """Emit the ``metrics`` hook to the run's plugins."""
        ...


_active: dict[str, MetricsEmitter] = {}
_lock = threading.Lock()


def register_run(run_id: str, emitter: MetricsEmitter) -> None:
    """Make ``run_id`` reachable by :func:`publish_metrics` (the engine calls this at run start)."""
    with _lock:
        if run_id in _active:
            raise ValueError(f"run {run_id!r} is already registered for publishing")
        _active[run_id] = emitter


def unregister_run(run_id: str) -> None:
    """Forget ``run_id`` (the engine calls this once ``run_end`` has been emitted)."""
    with _lock:
        _active.pop(run_id, None)


def publish_metrics(run: RunInfo, values: Mapping[str, float], step: int | None = None) -> bool:
    """Emit ``metrics(run, values, step)`` to every plugin of ``run``.

    Returns False, emitting nothing, when the run is not in progress in this process: it has
    ended, or its events are being replayed from a log (which carries the metrics published the
    first time).
    """
    with _lock:
        emitter = _active.get(run.run_id)
    if emitter is None:
        return False
    emitter.metrics({str(name): float(value) for name, value in values.items()}, step)
    return True
