"""Joining an application's trace: its current OpenTelemetry span as a W3C ``traceparent``.

A run started inside an application's span belongs in that span's trace. rlm-core takes the
caller's ``traceparent`` (``run(..., traceparent=...)`` or the ``TRACEPARENT`` variable); this
helper reads it from the application's OpenTelemetry context, so the run's spans, exported by the
otel tracker through its own pipeline, hang under the application's span.
"""

from __future__ import annotations

__all__ = ["current_traceparent"]


def current_traceparent() -> str | None:
    """The ``traceparent`` of the current OpenTelemetry span, or None outside any valid span."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
