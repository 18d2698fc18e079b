"""Everything that talks to MLflow. It runs on the delivery worker only, never on the engine thread.

The worker receives records in batches and turns them into as few calls as MLflow's limits allow:
consecutive metric points and tags of a run go out in ``log_batch`` calls. A run is found by its
``rlm.run_id`` tag before one is created, so a replay fills the run that is already there (or
leaves a complete one alone) instead of adding a second one. After the first failed call for a
run, its later records are not sent at all: they fail at once, the run is reported, and the
tracker keeps its events in a spool file for ``rlm replay``. Every ``End`` record is reported to
``on_end`` with the reason the run did not fully arrive (None when it did).
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from rlm_core import __version__
from rlm_core._redact import Redactor
from rlm_core.events import RunInfo
from rlm_core.logs import get_logger
from rlm_core.runlog import file_name_safe, run_log_text
from rlm_plugins.mlflow import evals
from rlm_plugins.mlflow.imports import load_mlflow
from rlm_plugins.mlflow.location import check_reachable, is_server, sqlite_path
from rlm_plugins.mlflow.records import (
    Artifact,
    End,
    MetricPoint,
    Record,
    Start,
    Values,
    millis,
)
from rlm_plugins.mlflow.store import BrokenStoreError, broken_store, ensure_sqlite_store
from rlm_plugins.mlflow.traces import TraceWriter

__all__ = [
    "COMPLETE_TAG",
    "RUN_ID_TAG",
    "DeliveryError",
    "MlflowWriter",
    "describe",
    "distinct_keys",
    "quote_filter_value",
    "truncate",
]

log = get_logger("rlm.mlflow")

RUN_ID_TAG = "rlm.run_id"
COMPLETE_TAG = "rlm.complete"
DESCRIPTION_TAG = "mlflow.note.content"
MAX_KNOWN_RUNS = 10_000
# MLflow's limits (mlflow.utils.validation).
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_PARAM_CHARS = 6000
MAX_TAG_CHARS = 8000
MAX_KEY_CHARS = 250
HEALTH_TIMEOUT = 3.0
_BAD_KEY_CHARS = re.compile(r"[^\w.\- :/]")


class DeliveryError(RuntimeError):
    """Some records could not be delivered; the runs they belong to are in ``failures``."""


class MlflowWriter:
    """The delivery function of the tracker's :class:`~rlm_core.delivery.BackgroundDelivery`.

    ``mlflow_ids`` maps rlm run ids to MLflow run ids, ``failures`` the runs that did not fully
    arrive to the first reason. Both are written here and read by the tracker on other threads
    (single dict operations, atomic under the GIL). A run's entries are forgotten once its
    ``End`` is handled (the most recent ``MAX_KNOWN_RUNS`` ids are kept for nested runs), so a
    process running many runs holds steady memory.
    """

    def __init__(
        self,
        *,
        tracking_uri: str,
        experiment: str,
        artifact_location: str | None,
        redactor: Redactor,
        on_end: Callable[[End, str | None], None],
        preparing: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.experiment_id: str | None = None
        self.experiment_ready = threading.Event()
        self.mlflow_ids: dict[str, str] = {}
        self.failures: dict[str, str] = {}
        self.preparing = preparing
        self._artifact_location = artifact_location
        self._redact = redactor
        self._on_end = on_end
        self._skipped: set[str] = set()
        self._client: Any = None
        self._traces: TraceWriter | None = None

    def fail(self, run_id: str, reason: str) -> None:
        """Record that some of the run's data will not arrive (kept: the first reason)."""
        self.failures.setdefault(run_id, reason)

    def deliver(self, batch: list[Record]) -> None:
        """Send ``batch`` in order; raise :class:`DeliveryError` if any run's records failed."""
        pending: dict[str, _Pending] = {}
        broken: dict[str, str] = {}
        for record in batch:
            run_id = record.run_id
            if run_id in self._skipped:
                self._ended(record, None)
                continue
            if run_id in self.failures:
                broken.setdefault(run_id, self.failures[run_id])
                self._ended(record, self.failures[run_id])
                continue
            try:
                if isinstance(record, Values):
                    pending.setdefault(run_id, _Pending()).add(record)
                    continue
                self._send(run_id, pending.pop(run_id, None))
                self._apply(record)
            except Exception as exc:
                pending.pop(run_id, None)
                self.fail(run_id, _reason(exc))
                broken.setdefault(run_id, _reason(exc))
            self._ended(record, self.failures.get(run_id))
        for run_id, values in pending.items():
            try:
                self._send(run_id, values)
            except Exception as exc:
                self.fail(run_id, _reason(exc))
                broken.setdefault(run_id, _reason(exc))
        if broken:
            runs = ", ".join(broken)
            raise DeliveryError(f"not in MLflow, run(s) {runs}: {next(iter(broken.values()))}")

    def _ended(self, record: Record, reason: str | None) -> None:
        """Report a run's ``End`` (delivered when ``reason`` is None) and forget the run."""
        if not isinstance(record, End):
            return
        try:
            self._on_end(record, reason)
        finally:
            self._skipped.discard(record.run_id)
            self.failures.pop(record.run_id, None)
            while len(self.mlflow_ids) > MAX_KNOWN_RUNS:
                del self.mlflow_ids[next(iter(self.mlflow_ids))]

    def _apply(self, record: Record) -> None:
        if isinstance(record, Start):
            self._start(record)
        elif isinstance(record, Artifact):
            self._client.log_text(
                self.mlflow_ids[record.run_id], self._redact.text(record.text), record.name
            )
        elif isinstance(record, End):
            self._end(record)

    def _connect(self) -> Any:
        """The client; a tracking server is checked first, so a dead one fails in one attempt."""
        if is_server(self.tracking_uri):
            check_reachable(self.tracking_uri, HEALTH_TIMEOUT)
        if self._client is None:
            database = sqlite_path(self.tracking_uri)
            # Importing MLflow, creating the store and opening it (schema checks) is set-up,
            # not delivery.
            with self.preparing():
                load_mlflow()
                if database is not None and not database.is_file():
                    ensure_sqlite_store(database, self._artifact_location)
                self._client = self._open(database)
        return self._client

    def _open(self, database: Path | None) -> Any:
        """A client on the store, opened now: a damaged SQLite store is named, with what to do."""
        from mlflow.tracking import MlflowClient

        try:
            client = MlflowClient(tracking_uri=self.tracking_uri)
            client.get_experiment_by_name(self.experiment)
        except Exception as exc:
            damaged = broken_store(database, exc) if database is not None else None
            if damaged is not None:
                raise damaged from None
            raise
        return client

    def _experiment(self, client: Any) -> str:
        """The experiment's id, created (with the pinned artifact location) on first use."""
        if self.experiment_id is not None:
            return self.experiment_id
        found = client.get_experiment_by_name(self.experiment)
        if found is None:
            from mlflow.exceptions import MlflowException

            try:
                created = client.create_experiment(
                    self.experiment, artifact_location=self._artifact_location
                )
            except MlflowException:
                found = client.get_experiment_by_name(self.experiment)  # created meanwhile
                if found is None:
                    raise
            else:
                self.experiment_id = str(created)
                return self.experiment_id
        if found.lifecycle_stage != "active":
            raise RuntimeError(
                f"experiment {self.experiment!r} is deleted in {self.tracking_uri}: "
                "restore it (mlflow experiments restore) or set [plugins.mlflow] experiment"
            )
        self.experiment_id = str(found.experiment_id)
        return self.experiment_id

    def _find(self, client: Any, experiment_id: str, run_id: str) -> Any:
        """The MLflow run tagged with rlm run id ``run_id``, or None."""
        quoted = quote_filter_value(run_id)
        if quoted is not None:
            found = client.search_runs(
                [experiment_id], filter_string=f"tags.`{RUN_ID_TAG}` = {quoted}", max_results=1
            )
            return found[0] if found else None
        # Both kinds of quotes: MLflow's filter language cannot say it; compare tags here.
        token = None
        while True:
            page = client.search_runs(
                [experiment_id], filter_string=f"tags.`{RUN_ID_TAG}` != ''", page_token=token
            )
            for candidate in page:
                if candidate.data.tags.get(RUN_ID_TAG) == run_id:
                    return candidate
            token = page.token
            if not token:
                return None

    def _start(self, record: Start) -> None:
        run = record.run
        try:
            client = self._connect()
            if self.experiment_id is None:
                with self.preparing():  # finding or creating the experiment is set-up too
                    experiment_id = self._experiment(client)
            else:
                experiment_id = self.experiment_id
        finally:
            self.experiment_ready.set()  # traces wait for it, also when it failed
        existing = self._find(client, experiment_id, run.run_id)
        params = self._params(run)
        if existing is not None:
            if existing.data.tags.get(COMPLETE_TAG) == "true":
                self._skipped.add(run.run_id)
                self.mlflow_ids[run.run_id] = existing.info.run_id
                log.info(
                    "mlflow: run %s is already complete in MLflow (run %s); nothing to send",
                    run.run_id,
                    existing.info.run_id,
                )
                return
            mlflow_id = existing.info.run_id
            # Params cannot change; ones already there (from another rlm-core version) stay.
            params = {
                key: value for key, value in params.items() if key not in existing.data.params
            }
        else:
            mlflow_id = client.create_run(
                experiment_id,
                start_time=millis(run.timestamp),
                tags={RUN_ID_TAG: run.run_id},
                run_name=truncate(self._redact.text(record.run_name), MAX_KEY_CHARS),
            ).info.run_id
        self.mlflow_ids[run.run_id] = mlflow_id
        tags = self._start_tags(client, experiment_id, run, dict(record.tags))
        self._log_batch(mlflow_id, [], list(params.items()), tags)

    def _params(self, run: RunInfo) -> dict[str, str]:
        limits = run.limits
        params = {
            "question": run.question,
            "ontology": run.ontology.name,
            "ontology_path": run.ontology.path,
            "ontology_triples": str(run.ontology.triples),
            "model": run.model,
            "sub_model": run.sub_model or run.model,
            "max_iterations": str(limits.max_iterations),
            "max_llm_calls": str(limits.max_llm_calls),
            "step_timeout": str(limits.step_timeout),
            "max_output_chars": str(limits.max_output_chars),
            "rlm_core_version": __version__,
        }
        return {
            key: truncate(self._redact.pair(key, value), MAX_PARAM_CHARS)
            for key, value in params.items()
        }

    def _start_tags(
        self, client: Any, experiment_id: str, run: RunInfo, configured: dict[str, str]
    ) -> list[tuple[str, str]]:
        tags = {**configured, **run.tags}
        tags.update(
            {
                RUN_ID_TAG: run.run_id,
                "rlm.ontology": run.ontology.name,
                "rlm.model": run.model,
                DESCRIPTION_TAG: describe(run.question, None),
            }
        )
        eval_id = run.tags.get("eval.id")
        if eval_id and not run.parent_run_id:
            parent_id = evals.parent_run_id(client, experiment_id, eval_id)
            if parent_id is not None:
                tags["mlflow.parentRunId"] = parent_id
        if run.parent_run_id:
            tags["rlm.parent_run_id"] = run.parent_run_id
            parent = self.mlflow_ids.get(run.parent_run_id)
            if parent is None:
                found = self._find(client, experiment_id, run.parent_run_id)
                parent = found.info.run_id if found is not None else None
            if parent is not None:
                tags["mlflow.parentRunId"] = parent
        return distinct_keys(tags)

    def _end(self, record: End) -> None:
        mlflow_id = self.mlflow_ids[record.run_id]
        log_text = run_log_text(record.run, record.events, self._redact.json)
        self._client.log_text(mlflow_id, log_text, f"logs/{file_name_safe(record.run_id)}.jsonl")
        if record.trace and self.experiment_id is not None:
            if self._traces is None:
                self._traces = TraceWriter(self.tracking_uri, self._redact.json)
            self._traces.write(
                self._client, self.experiment_id, mlflow_id, record.run, record.events
            )
        self._client.set_terminated(mlflow_id, status=record.status, end_time=record.end_time)
        self._log_batch(
            mlflow_id,
            [],
            [],
            [(DESCRIPTION_TAG, record.description), (COMPLETE_TAG, "true")],
        )

    def _send(self, run_id: str, pending: _Pending | None) -> None:
        if pending is not None:
            self._log_batch(
                self.mlflow_ids[run_id], pending.metrics, [], distinct_keys(pending.tags)
            )

    def _log_batch(
        self,
        mlflow_id: str,
        metrics: list[MetricPoint],
        params: list[tuple[str, str]],
        tags: list[tuple[str, str]],
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        for metric_chunk, param_chunk, tag_chunk in _chunks(metrics, params, tags):
            self._client.log_batch(
                mlflow_id,
                metrics=[
                    Metric(_key(key), value, timestamp, step)
                    for key, value, timestamp, step in metric_chunk
                ],
                params=[Param(_key(key), value) for key, value in param_chunk],
                tags=[
                    RunTag(key, truncate(self._redact.pair(key, value), MAX_TAG_CHARS))
                    for key, value in tag_chunk
                ],
                synchronous=True,
            )


class _Pending:
    """Metric points and tags of one run waiting to go out together."""

    def __init__(self) -> None:
        self.metrics: list[MetricPoint] = []
        self.tags: dict[str, str] = {}

    def add(self, values: Values) -> None:
        self.metrics.extend(values.metrics)
        self.tags.update(values.tags)


def _chunks(
    metrics: list[MetricPoint], params: list[tuple[str, str]], tags: list[tuple[str, str]]
) -> Iterator[tuple[list[MetricPoint], list[tuple[str, str]], list[tuple[str, str]]]]:
    """Split into ``log_batch`` calls within MLflow's per-call limits."""
    while metrics or params or tags:
        param_chunk, params = params[:MAX_PARAMS_TAGS_PER_BATCH], params[MAX_PARAMS_TAGS_PER_BATCH:]
        tag_chunk, tags = tags[:MAX_PARAMS_TAGS_PER_BATCH], tags[MAX_PARAMS_TAGS_PER_BATCH:]
        room = min(
            MAX_METRICS_PER_BATCH, MAX_ENTITIES_PER_BATCH - len(param_chunk) - len(tag_chunk)
        )
        metric_chunk, metrics = metrics[:room], metrics[room:]
        yield metric_chunk, param_chunk, tag_chunk


def distinct_keys(tags: dict[str, str]) -> list[tuple[str, str]]:
    """Tags with keys MLflow accepts; keys that become equal when cleaned (``a!``, ``a?``) are
    kept apart by a short hash of the original key, never merged."""
    result: list[tuple[str, str]] = []
    used: set[str] = set()
    for name, value in tags.items():
        key = _key(name)
        if key in used:
            digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
            key = f"{key[: MAX_KEY_CHARS - 9]}_{digest}"
            log.warning("mlflow: tag %r is logged as %r (%r is taken)", name, key, _key(name))
        used.add(key)
        result.append((key, value))
    return result


def quote_filter_value(value: str) -> str | None:
    """``value`` as a string literal of MLflow's filter language, or None when it holds both
    kinds of quotes (the language has no escapes)."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    return None


def describe(question: str, answer: str | None) -> str:
    """The run's description (MLflow's note): the question, then the answer when there is one."""
    text = f"**Question:** {question}"
    if answer is not None:
        text += f"\n\n**Answer:** {answer}"
    return truncate(text, MAX_TAG_CHARS)


def _key(name: str) -> str:
    """A metric, param or tag name MLflow accepts: other characters become ``_``."""
    key = _BAD_KEY_CHARS.sub("_", name)[:MAX_KEY_CHARS]
    if not key or posixpath.normpath(key) != key or key.startswith(("/", "..")) or key == ".":
        key = key.replace("/", "_").replace(".", "_") or "_"
    return key


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with how much is missing."""
    if len(text) <= limit:
        return text
    kept = limit - len(f"…[truncated {len(text)} chars]")
    return f"{text[:kept]}…[truncated {len(text) - kept} chars]"


def _reason(exc: Exception) -> str:
    if isinstance(exc, BrokenStoreError):
        return str(exc)  # already one line that says what to do
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
