"""Builds the events of one run and emits them, in order, to the run's plugin manager.

Events of a run may start on several threads (REPL tool calls and batched sub-LM calls run on
DSPy's worker threads). Sequence numbers and hook calls happen under one lock, so plugins see
each run's events one at a time and in sequence order.

Every payload is a span: :meth:`RunEmitter.open` gives an operation its span id and start when it
begins (so its children can name it as their parent), :meth:`RunEmitter.emit` closes it.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from rlm_core._spans import SpanContext, new_span_id, new_trace_id
from rlm_core.events import Event, RunInfo, RunResult, utc_now
from rlm_core.hookspecs import PAYLOAD_ARGUMENTS
from rlm_core.logs import get_logger
from rlm_core.plugins import PluginManager

__all__ = ["RunEmitter"]

_log = get_logger("rlm.engine")

E = TypeVar("E", bound=Event)


@dataclasses.dataclass(frozen=True, slots=True)
class Span:
    """An operation that has begun: its id, its parent's, and when it started."""

    span_id: str
    parent_span_id: str | None
    started_at: datetime


class RunEmitter:
    """Sequence numbers, span ids, timestamps and hook emission for one run.

    The run's span starts when the emitter is created, so everything before ``run_start``
    (loading the ontology) is inside it. ``parent`` is the span the run joins: the step of the
    run that started it, or a caller's ``traceparent``; None starts a new trace.
    """

    def __init__(
        self, manager: PluginManager, run_id: str, parent: SpanContext | None = None
    ) -> None:
        self.manager = manager
        self.run_id = run_id
        self.run: RunInfo | None = None
        self.trace_id = parent.trace_id if parent is not None else new_trace_id()
        self.depth = parent.depth + 1 if parent is not None and parent.run_id else 0
        self.parent_run_id = parent.run_id if parent is not None else None
        self.span = Span(new_span_id(), None if parent is None else parent.span_id, utc_now())
        self.context = SpanContext(self.trace_id, self.span.span_id, run_id, self.depth)
        self._seq = itertools.count()
        self._lock = threading.RLock()
        self._errors_before = self._plugin_errors()

    def open(self, parent: str | None = None, started_at: datetime | None = None) -> Span:
        """Begin an operation under ``parent`` (default: the run's span), now or at
        ``started_at`` (work timed before it could be emitted)."""
        return Span(new_span_id(), parent or self.span.span_id, started_at or utc_now())

    def context_of(self, span: Span) -> SpanContext:
        """``span`` as the current span for code that runs inside it (tools, nested runs)."""
        return SpanContext(self.trace_id, span.span_id, self.run_id, self.depth)

    def wants(self, hook: str) -> bool:
        """Whether any plugin listens to ``hook`` (build nothing for it otherwise)."""
        return bool(self.manager.hook.wants(hook))

    def start(self, **fields: Any) -> RunInfo:
        """Build the run's :class:`RunInfo` (sequence number 0) and emit ``run_start``."""
        with self._lock:
            self.run = RunInfo(
                run_id=self.run_id,
                seq=next(self._seq),
                span_id=self.span.span_id,
                parent_span_id=self.span.parent_span_id,
                started_at=self.span.started_at,
                timestamp=utc_now(),
                trace_id=self.trace_id,
                depth=self.depth,
                **fields,
            )
            self.manager.hook.run_start(run=self.run)
            return self.run

    def emit(
        self, hook: str, payload_type: type[E], span: Span | None = None, **fields: Any
    ) -> E | None:
        """Build a payload that closes ``span`` and emit ``hook`` with it; skipped (None) when
        nobody listens.

        Without ``span`` the payload is an instant under the run; ``run_end`` closes the run's
        own span and is always built, since the caller returns it.
        """
        if hook == "run_end":
            span = self.span
        elif not self.manager.hook.wants(hook):
            return None
        with self._lock:
            now = utc_now()
            if span is None:
                span = Span(new_span_id(), self.span.span_id, now)
            payload = payload_type(
                run_id=self.run_id,
                seq=next(self._seq),
                span_id=span.span_id,
                parent_span_id=span.parent_span_id,
                started_at=span.started_at,
                timestamp=now,
                **fields,
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
