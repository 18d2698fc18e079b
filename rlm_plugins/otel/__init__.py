"""The OpenTelemetry tracker plugin: the entry point ``otel`` names :class:`OtelTracker`.

One concern per module: ``tracker`` (the hooks and delivery accounting), ``attributes`` (payloads
as GenAI-convention spans), ``export`` (the SDK pipeline; imports opentelemetry), ``config``
(``[plugins.otel]`` over ``OTEL_*``), ``spool`` (undelivered spans as a run log) and ``context``
(an application's current span as a ``traceparent``). Importing the package imports no
opentelemetry.
"""

from __future__ import annotations

from rlm_plugins.otel.context import current_traceparent
from rlm_plugins.otel.tracker import OtelTracker

__all__ = ["OtelTracker", "current_traceparent"]
