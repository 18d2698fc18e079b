"""The OpenTelemetry tracker: every run as an OTLP trace, with the GenAI semantic conventions.

Hooks run on the engine thread and only describe the span (:mod:`rlm_plugins.otel.attributes`)
and queue it to the SDK's ``BatchSpanProcessor`` (:mod:`rlm_plugins.otel.export`), which exports
on its own thread. ``run_end`` waits at most ``flush_timeout`` seconds for the run's spans to be
acknowledged; the ones that were not (endpoint down or slow, queue full) are written to a spool
run log that ``rlm replay FILE --to otel`` sends again with the same ids. Importing this module
does not import opentelemetry (it only checks that it is installed).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rlm_core._redact import Redactor
from rlm_core.errors import PluginNotConfiguredError
from rlm_core.events import (
    Event,
    Iteration,
    Judgment,
    LLMCall,
    MemoryExtraction,
    MemoryRetrieval,
    RunInfo,
    RunResult,
    Setup,
    ToolCall,
    utc_now,
)
from rlm_core.hookspecs import RunLocation, hookimpl
from rlm_core.logs import get_logger
from rlm_core.runlog import MetricsPoint, write_new_log
from rlm_plugins.otel.attributes import Attributes, SpanRecord, describe, describe_run
from rlm_plugins.otel.config import ExportSettings, NotConfiguredError, resolve

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["DeliveryCounts", "OtelTracker"]

# Checked, not imported: a missing SDK makes the plugin unavailable, with the install hint.
for _module in ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http"):
    if importlib.util.find_spec(_module) is None:
        from rlm_core.install_hints import install_hint as _install_hint

        raise ImportError(
            "the otel tracker needs opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http; "
            "install them with: " + _install_hint(extra="otel"),
            name=_module,
        )

log = get_logger("rlm.otel")


@dataclasses.dataclass(frozen=True)
class DeliveryCounts:
    """Spans handed to the exporter and what became of them, since the tracker was built."""

    submitted: int
    delivered: int
    failed: int
    dropped: int
    pending: int
    spooled_runs: int


@dataclasses.dataclass
class _RunState:
    """What the tracker keeps per open run: its events (to spool) and its undelivered spans."""

    run: RunInfo
    events: dict[str, Event] = dataclasses.field(default_factory=dict)
    metrics: list[MetricsPoint] = dataclasses.field(default_factory=list)
    pending: int = 0
    undelivered: set[str] = dataclasses.field(default_factory=set)


class OtelTracker:
    """Sends every rlm run to an OTLP/HTTP endpoint as one trace.

    Off unless an endpoint is configured: ``[plugins.otel] endpoint`` or the standard
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``.

    :param endpoint: the collector's base URL (``/v1/traces`` is added) or its traces URL.
    :param headers: extra request headers (``"$env:NAME"`` values keep secrets out of files),
        added to ``OTEL_EXPORTER_OTLP_HEADERS``.
    :param service_name: ``service.name`` of the resource (default: ``OTEL_SERVICE_NAME``, a
        ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``, else "rlm").
    :param timeout: seconds one export request may take, retries included (default:
        ``OTEL_EXPORTER_OTLP_TIMEOUT``, else the SDK's 10 s).
    :param flush_timeout: seconds ``run_end`` waits for the run's spans to be acknowledged.
    :param capture_content: record messages, code, outputs and tool results (default:
        ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, else off).
    :param max_queue_size: spans waiting for export at most; more are dropped (and spooled).
    :param spool_dir: where runs whose spans did not all arrive are kept for ``rlm replay``.
    :param exporter: export to this ``SpanExporter`` instead of OTLP/HTTP (tests, embedding;
        then no endpoint is needed).
    """

    name = "otel"

    def __init__(
        self,
        endpoint: str | None = None,
        headers: Mapping[str, str] | None = None,
        service_name: str | None = None,
        timeout: float | None = None,
        flush_timeout: float = 5.0,
        capture_content: bool | None = None,
        max_queue_size: int = 2048,
        spool_dir: str = "otel-spool",
        exporter: SpanExporter | None = None,
    ) -> None:
        try:
            self.settings: ExportSettings = resolve(
                endpoint=endpoint,
                headers=headers,
                service_name=service_name,
                timeout=timeout,
                flush_timeout=flush_timeout,
                capture_content=capture_content,
                max_queue_size=max_queue_size,
                spool_dir=spool_dir,
                endpoint_required=exporter is None,
            )
        except NotConfiguredError as exc:
            raise PluginNotConfiguredError(str(exc)) from None
        from rlm_plugins.otel.export import SpanPipeline, build_exporter, resource_for

        self.endpoint = None if exporter is not None else self.settings.endpoint
        self.capture_content = self.settings.capture_content
        self.flush_timeout = self.settings.flush_timeout
        self._spool_dir = Path.cwd() / Path(self.settings.spool_dir).expanduser()
        self._resource = resource_for(self.settings.service_name)
        self._redactor = Redactor.from_environment()
        if exporter is None:
            assert self.settings.endpoint is not None  # resolve required one
            exporter = build_exporter(
                self.settings.endpoint, self.settings.headers, self.settings.timeout
            )
        self._pipeline = SpanPipeline(
            exporter, self._acknowledged, max_queue_size=self.settings.max_queue_size
        )
        self._runs: dict[str, _RunState] = {}
        self._inflight: dict[int, str] = {}
        self._spooled: dict[str, tuple[Path, int]] = {}
        self._ended: set[str] = set()
        self._counts = {"submitted": 0, "delivered": 0, "failed": 0, "dropped": 0}
        self._changed = threading.Condition()
        self._closed = False

    @property
    def counts(self) -> DeliveryCounts:
        """A snapshot of the delivery counters."""
        with self._changed:
            return DeliveryCounts(
                **self._counts, pending=len(self._inflight), spooled_runs=len(self._spooled)
            )

    @hookimpl
    def run_location(self, run: RunInfo) -> RunLocation | None:
        """The spool to replay when spans did not all arrive, else the endpoint and trace id;
        None for a run this tracker has not ended."""
        spooled = self._spooled.get(run.run_id)
        if spooled is not None:
            spool, missing = spooled
            return RunLocation(
                f"{spool} ({missing} span(s) did not reach {self.endpoint or 'the exporter'}; "
                f"send them with: rlm replay {spool} --to otel)",
                delivered=False,
            )
        if self.endpoint is None or run.run_id not in self._ended:
            return None
        return RunLocation(f"{self.endpoint} (trace {run.trace_id})")

    def flush(self, timeout: float) -> bool:
        """Export what is queued; True when every span was acknowledged within ``timeout``."""
        self._pipeline.export_now()
        deadline = time.monotonic() + timeout
        with self._changed:
            return self._changed.wait_for(
                lambda: not self._inflight, max(0.0, deadline - time.monotonic())
            )

    def close(self, timeout: float | None = None) -> bool:
        """Flush (at most ``timeout`` seconds, default ``flush_timeout``), then stop exporting."""
        flushed = self.flush(self.flush_timeout if timeout is None else timeout)
        with self._changed:
            self._closed = True
        self._pipeline.shutdown()
        return flushed

    @hookimpl
    def run_start(self, run: RunInfo) -> None:
        self._state(run)

    @hookimpl
    def setup(self, run: RunInfo, setup: Setup) -> None:
        self._span(run, setup)

    @hookimpl
    def memory_retrieved(self, run: RunInfo, retrieval: MemoryRetrieval) -> None:
        self._span(run, retrieval)

    @hookimpl
    def iteration(self, run: RunInfo, step: Iteration) -> None:
        self._span(run, step)

    @hookimpl
    def llm_call(self, run: RunInfo, call: LLMCall) -> None:
        self._span(run, call)

    @hookimpl
    def tool_call(self, run: RunInfo, call: ToolCall) -> None:
        self._span(run, call)

    @hookimpl
    def judgment(self, run: RunInfo, verdict: Judgment) -> None:
        self._span(run, verdict)

    @hookimpl
    def memory_extracted(self, run: RunInfo, extraction: MemoryExtraction) -> None:
        self._span(run, extraction)

    @hookimpl
    def metrics(self, run: RunInfo, values: Mapping[str, float], step: int | None) -> None:
        """Run-level numbers become ``rlm.metric.*`` attributes of the run's span (they are
        published before ``run_end``); per-step ones are kept only for the spool."""
        self._state(run).metrics.append(MetricsPoint(run.run_id, dict(values), step, utc_now()))

    @hookimpl
    def run_end(self, run: RunInfo, result: RunResult) -> None:
        state = self._state(run)
        run_level = {
            name: value
            for call in state.metrics
            if call.step is None
            for name, value in call.values.items()
        }
        record = describe_run(run, result, run_level, capture_content=self.capture_content)
        self._submit(state, result, record)
        self._pipeline.export_now()
        deadline = time.monotonic() + self.flush_timeout
        with self._changed:
            self._changed.wait_for(
                lambda: state.pending == 0, max(0.0, deadline - time.monotonic())
            )
            self._runs.pop(run.run_id, None)
            self._ended.add(run.run_id)
            undelivered = set(state.undelivered)
            waiting = state.pending
        if undelivered or waiting:
            self._spool(state, result, undelivered, waiting)

    def _state(self, run: RunInfo) -> _RunState:
        """The run's state; a hook after the run's ``run_end`` gets a detached one (its span
        still goes out, under the run's trace)."""
        state = self._runs.get(run.run_id)
        if state is None:
            if run.run_id in self._ended:
                return _RunState(run)
            state = self._runs.setdefault(run.run_id, _RunState(run))
        return state

    def _span(self, run: RunInfo, event: Event) -> None:
        record = describe(run, event, capture_content=self.capture_content)
        if record is not None:
            self._submit(self._state(run), event, record)

    def _submit(self, state: _RunState, event: Event, record: SpanRecord) -> None:
        from rlm_plugins.otel.export import to_span

        state.events[record.span_id] = event
        record = dataclasses.replace(record, attributes=self._redacted(record.attributes))
        # The run's own parent is a caller's span when the run joined an outside trace.
        remote = record.span_id == state.run.span_id and state.run.parent_run_id is None
        span = to_span(record, self._resource, remote_parent=remote)
        with self._changed:
            self._counts["submitted"] += 1
            if self._closed or len(self._inflight) >= self.settings.max_queue_size:
                # The processor would drop its oldest span silently (or, closed, ignore it); this
                # one is counted instead.
                self._counts["dropped"] += 1
                state.undelivered.add(record.span_id)
                return
            self._inflight[int(record.span_id, 16)] = state.run.run_id
            state.pending += 1
        self._pipeline.submit(span)

    def _redacted(self, attributes: Attributes) -> Attributes:
        """Secrets never leave: every text attribute through the redactor that guards every file
        rlm-core writes (a cheap scan; most texts hold nothing suspicious)."""
        clean: Attributes = {}
        for key, value in attributes.items():
            if isinstance(value, str):
                clean[key] = self._redactor.text(value)
            elif isinstance(value, list | tuple) and value and isinstance(value[0], str):
                clean[key] = [self._redactor.text(str(item)) for item in value]
            else:
                clean[key] = value
        return clean

    def _acknowledged(self, spans: Sequence[ReadableSpan], delivered: bool) -> None:
        with self._changed:
            for span in spans:
                context = span.context
                run_id = self._inflight.pop(context.span_id, None) if context else None
                self._counts["delivered" if delivered else "failed"] += 1
                state = self._runs.get(run_id) if run_id is not None else None
                if state is None or context is None:
                    continue
                state.pending -= 1
                if not delivered:
                    state.undelivered.add(f"{context.span_id:016x}")
            self._changed.notify_all()

    def _spool(
        self, state: _RunState, result: RunResult, undelivered: set[str], waiting: int
    ) -> None:
        """Keep the spans that were not acknowledged in a run log for ``rlm replay``."""
        with self._changed:
            # Spans still in flight when time ran out are kept too (replay has the same ids).
            unacknowledged = {
                f"{span_id:016x}"
                for span_id, run_id in self._inflight.items()
                if run_id == state.run.run_id
            }
        missing = undelivered | unacknowledged
        events = [event for span_id, event in state.events.items() if span_id in missing]
        metrics = state.metrics if state.run.span_id in missing else []
        # Metrics first (replay attaches them to the run_end that follows), events as emitted.
        in_order = sorted(events, key=lambda event: event.seq)
        path = write_new_log(self._spool_dir, state.run, [*metrics, *in_order], self._redactor.json)
        self._spooled[state.run.run_id] = (path, len(missing))
        reason = (
            f"not acknowledged within flush_timeout ({self.flush_timeout:g} s)"
            if waiting
            else "export failed or the queue was full"
        )
        log.warning(
            "otel: %d of %d span(s) of run %s did not reach %s (%s); they are kept in %s. "
            "Send them later with: rlm replay %s --to otel",
            len(missing),
            len(state.events),
            state.run.run_id,
            self.endpoint or "the exporter",
            reason,
            path,
            path,
            run_id=state.run.run_id,
            undelivered=len(missing),
            spool=str(path),
        )
