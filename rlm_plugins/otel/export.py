"""The export pipeline: finished spans built from the hooks' own ids and times, handed to the
SDK's ``BatchSpanProcessor`` and its OTLP/HTTP exporter, with every span acknowledged.

Imported only when the tracker is constructed (it imports opentelemetry). No ``Tracer`` is
involved and no global provider is touched: a tracer would give spans its own ids and clock,
while rlm-core's spans already have theirs, so each span is built as a finished
:class:`~opentelemetry.sdk.trace.ReadableSpan` and ended into the processor, exactly as the SDK
hands finished spans to processors. The processor exports off the engine thread; the exporter
is wrapped so that every span is known delivered or failed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

from rlm_core import __version__
from rlm_plugins.otel.attributes import SpanRecord

__all__ = ["DEFAULT_SERVICE_NAME", "Acknowledged", "SpanPipeline", "build_exporter", "to_span"]

DEFAULT_SERVICE_NAME = "rlm"
SCOPE = InstrumentationScope("rlm_core", __version__)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_KINDS = {"client": SpanKind.CLIENT, "internal": SpanKind.INTERNAL}

Acknowledged = Callable[[Sequence[ReadableSpan], bool], None]


def resource_for(service_name: str | None) -> Resource:
    """``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_SERVICE_NAME`` as the SDK reads them; the
    configured service name wins, and "rlm" replaces the SDK's ``unknown_service``."""
    resource = Resource.create()
    current = str(resource.attributes.get(SERVICE_NAME, ""))
    if service_name is not None:
        return resource.merge(Resource({SERVICE_NAME: service_name}))
    if not current or current.startswith("unknown_service"):
        return resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def to_span(record: SpanRecord, resource: Resource, *, remote_parent: bool) -> ReadableSpan:
    """A finished SDK span with the record's ids, times and attributes, as the hooks gave them.

    ``remote_parent``: the parent is a caller's span (from its ``traceparent``), not ours.
    """
    trace_id = int(record.trace_id, 16)
    context = SpanContext(trace_id, int(record.span_id, 16), is_remote=False, trace_flags=_SAMPLED)
    parent = (
        None
        if record.parent_span_id is None
        else SpanContext(
            trace_id,
            int(record.parent_span_id, 16),
            is_remote=remote_parent,
            trace_flags=_SAMPLED,
        )
    )
    status = (
        Status(StatusCode.ERROR, record.error)
        if record.error is not None
        else Status(StatusCode.OK)
    )
    return ReadableSpan(
        name=record.name,
        context=context,
        parent=parent,
        resource=resource,
        # Validated and frozen like a span the SDK ends itself (lists become tuples).
        attributes=BoundedAttributes(maxlen=None, attributes=record.attributes, immutable=True),
        kind=_KINDS[record.kind],
        status=status,
        start_time=record.start_ns,
        end_time=record.end_ns,
        instrumentation_scope=SCOPE,
    )


class _AcknowledgingExporter(SpanExporter):
    """Passes batches to the real exporter and reports each batch's outcome."""

    def __init__(self, exporter: SpanExporter, acknowledged: Acknowledged) -> None:
        self._exporter = exporter
        self._acknowledged = acknowledged

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._exporter.export(spans)
        except Exception:
            self._acknowledged(spans, False)
            raise
        self._acknowledged(spans, result is SpanExportResult.SUCCESS)
        return result

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._exporter.force_flush(timeout_millis)


def build_exporter(
    endpoint: str, headers: Mapping[str, str], timeout: float | None
) -> SpanExporter:
    """The OTLP/HTTP (protobuf) exporter; ``timeout`` None keeps ``OTEL_EXPORTER_OTLP_TIMEOUT``
    or the SDK's default."""
    return OTLPSpanExporter(endpoint=endpoint, headers=dict(headers), timeout=timeout)


class SpanPipeline:
    """A ``BatchSpanProcessor`` over an exporter, reporting every span's delivery.

    :param acknowledged: called on the export thread with each batch and whether it arrived.
    :param max_queue_size: the processor's queue bound (the tracker never lets it overflow).
    """

    def __init__(
        self,
        exporter: SpanExporter,
        acknowledged: Acknowledged,
        *,
        max_queue_size: int,
        schedule_delay_ms: float = 1000.0,
    ) -> None:
        self._processor = BatchSpanProcessor(
            _AcknowledgingExporter(exporter, acknowledged),
            max_queue_size=max_queue_size,
            schedule_delay_millis=schedule_delay_ms,
            max_export_batch_size=min(512, max_queue_size),
        )

    def submit(self, span: ReadableSpan) -> None:
        """Queue a finished span (no I/O: the processor's worker exports it)."""
        self._processor.on_end(span)

    def export_now(self) -> None:
        """Export everything queued, on a short-lived thread of its own: the processor's
        ``force_flush`` blocks for as long as the exporter takes, and callers wait (bounded) for
        the acknowledgements instead."""
        threading.Thread(
            target=self._processor.force_flush, name="rlm-otel-flush", daemon=True
        ).start()

    def shutdown(self) -> None:
        """Stop the processor's worker (it exports what is queued first)."""
        self._processor.shutdown()  # type: ignore[no-untyped-call]
