"""Span identity: ids, the span current in this context, and W3C ``traceparent``.

A run is a tree of spans (see "Trace model" in the architecture notes). The engine keeps the span
that is current where code runs in a :class:`contextvars.ContextVar`, so a nested run started from
a tool or a hook during a step hangs under that step. DSPy copies the context into the threads it
runs tools and batched sub-LM calls on, so the current span follows the work across threads.
"""

from __future__ import annotations

import contextvars
import dataclasses
import os
import random
import re

from rlm_core.errors import ConfigError

__all__ = [
    "SpanContext",
    "TraceparentError",
    "current_span",
    "format_traceparent",
    "new_span_id",
    "new_trace_id",
    "parse_traceparent",
]

_random = random.Random()  # ids need to be unique, not secret; seeded from os.urandom


def new_span_id() -> str:
    """16 lowercase hex characters, never all zeros (W3C Trace Context)."""
    return f"{_random.getrandbits(64) or 1:016x}"


def new_trace_id() -> str:
    """32 lowercase hex characters, never all zeros (W3C Trace Context)."""
    return f"{_random.getrandbits(128) or 1:032x}"


@dataclasses.dataclass(frozen=True)
class SpanContext:
    """Where new spans hang: the trace, the parent span, and the run (with its depth) they join.

    ``run_id`` is None for a context that came from outside (a caller's ``traceparent``).
    """

    trace_id: str
    span_id: str
    run_id: str | None = None
    depth: int = -1

    def traceparent(self) -> str:
        """This context as a W3C ``traceparent`` header value (sampled)."""
        return format_traceparent(self.trace_id, self.span_id)


_CURRENT: contextvars.ContextVar[SpanContext | None] = contextvars.ContextVar(
    "rlm_current_span", default=None
)


def current_span() -> SpanContext | None:
    """The span current in this context (a run's span, or the step that is running)."""
    return _CURRENT.get()


def set_current(span: SpanContext | None) -> contextvars.Token[SpanContext | None]:
    """Make ``span`` current in this context; reset with the token."""
    return _CURRENT.set(span)


def reset_current(token: contextvars.Token[SpanContext | None]) -> None:
    _CURRENT.reset(token)


_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class TraceparentError(ConfigError):
    """A ``traceparent`` value is not W3C Trace Context."""


def parse_traceparent(value: str) -> SpanContext:
    """The trace id and parent span id of a W3C ``traceparent`` value.

    :raises TraceparentError: the value is malformed, or its trace or span id is all zeros.
    """
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None or match.group(1) == "ff":
        raise TraceparentError(
            f"traceparent {value!r} is not W3C Trace Context "
            "(expected 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>)"
        )
    trace_id, span_id = match.group(2), match.group(3)
    if set(trace_id) == {"0"} or set(span_id) == {"0"}:
        raise TraceparentError(f"traceparent {value!r} has an all-zero trace or span id")
    return SpanContext(trace_id=trace_id, span_id=span_id)


def format_traceparent(trace_id: str, span_id: str) -> str:
    """A W3C ``traceparent`` value for a sampled span."""
    return f"00-{trace_id}-{span_id}-01"


def environment_traceparent() -> str | None:
    """The ``TRACEPARENT`` environment variable (the convention for passing a trace to a
    process), or None when it is unset or blank."""
    value = os.environ.get("TRACEPARENT", "").strip()
    return value or None
