"""Builds the events of one run and emits them, in order, to the run's plugin manager.

Events of a run may start on several threads (REPL tool calls and batched sub-LM calls run on
DSPy's worker threads). Sequence numbers and hook calls happen under one lock, so plugins see
each run's events one at a time and in sequence order.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from typing import Any, TypeVar

from rlm_core.events import Event, RunInfo, RunResult, utc_now
from rlm_core.hookspecs import PAYLOAD_ARGUMENTS
from rlm_core.logs import get_logger
from rlm_core.plugins import PluginManager

__all__ = ["RunEmitter"]

_log = get_logger("rlm.engine")

E = TypeVar("E", bound=Event)


class RunEmitter:
    """Sequence numbers, timestamps and hook emission for one run."""

    def __init__(self, manager: PluginManager, run_id: str) -> None:
        self.manager = manager
        self.run_id = run_id
        self.run: RunInfo | None = None
        self._seq = itertools.count()
        self._lock = threading.RLock()
        self._errors_before = self._plugin_errors()

    def start(self, **fields: Any) -> RunInfo:
        """Build the run's :class:`RunInfo` (sequence number 0) and emit ``run_start``."""
        with self._lock:
            self.run = RunInfo(
                run_id=self.run_id, seq=next(self._seq), timestamp=utc_now(), **fields
            )
            self.manager.hook.run_start(run=self.run)
            return self.run

    def emit(self, hook: str, payload_type: type[E], **fields: Any) -> E | None:
        """Build a payload and emit ``hook`` with it; skipped (None) when nobody listens.

        ``run_end`` is always built, since the caller returns it.
        """
        if hook != "run_end" and not self.manager.hook.wants(hook):
            return None
        with self._lock:
            payload = payload_type(
                run_id=self.run_id, seq=next(self._seq), timestamp=utc_now(), **fields
            )
            if isinstance(payload, RunResult):
                self._publish_derived_metrics(payload)
            getattr(self.manager.hook, hook)(run=self.run, **{PAYLOAD_ARGUMENTS[hook]: payload})
            return payload

    def _publish_derived_metrics(self, result: RunResult) -> None:
        """The ``run_metrics`` answers, emitted as ``metrics`` before ``run_end`` closes the run.

        An answer that is not a mapping of names to numbers is dropped with a warning: one
        plugin's mistake must not cost the others their metrics or the run its end."""
        if not self.manager.hook.wants("run_metrics"):
            return
        for plugin, values in self.manager.collect("run_metrics", run=self.run, result=result):
            try:
                numbers = {str(name): float(value) for name, value in dict(values).items()}
            except (TypeError, ValueError) as exc:
                _log.warning(
                    "plugin %r: run_metrics returned %s, not a mapping of names to numbers (%s)",
                    plugin,
                    type(values).__name__,
                    exc,
                )
                continue
            if numbers:
                self.metrics(numbers)

    def plugin_trouble(self) -> tuple[dict[str, int], dict[str, str]]:
        """Errors each plugin raised since this run started, and the blocked plugins' reasons."""
        errors = {
            name: count - self._errors_before.get(name, 0)
            for name, count in self._plugin_errors().items()
            if count > self._errors_before.get(name, 0)
        }
        blocked = {
            status.name: status.reason or "blocked"
            for status in self.manager.statuses()
            if status.state == "blocked"
        }
        return errors, blocked

    def _plugin_errors(self) -> dict[str, int]:
        return {status.name: status.errors for status in self.manager.statuses() if status.errors}

    def metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        """Emit ``metrics`` with derived numbers."""
        if self.manager.hook.wants("metrics"):
            with self._lock:
                self.manager.hook.metrics(run=self.run, values=dict(values), step=step)
