"""The ``memory_metrics`` plugin: does procedural memory help? Measured per run, kept across runs.

During a run the hooks only note what they see, in memory; no hook reads or writes a file on
the engine thread. When memories are retrieved, a reader thread fetches their text through the
memory store's API while the run goes on. When the run is over, ``run_metrics`` takes that text
(by then long read), computes the run's metrics and returns them (the engine emits them as
``metrics`` to every tracker before any tracker's ``run_end``); ``run_end`` hands the run's row
to a writer thread (:mod:`~rlm_plugins.memory_metrics.writer`) for the plugin's own state file,
which ``rlm memory report`` reads once the tracker is flushed or closed (at the latest when the
process exits). A replayed run (no ``run_metrics`` call) is measured on the writer thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from rlm_core.delivery import DeliveryStats
from rlm_core.events import (
    Grade,
    Iteration,
    Judgment,
    LLMCall,
    MemoryExtraction,
    MemoryRetrieval,
    RunInfo,
    RunResult,
)
from rlm_core.hookspecs import CommandAdder, RunLocation, hookimpl
from rlm_core.logs import get_logger
from rlm_plugins.memory_metrics.measure import PREFIX, Measurement, RunObservations, measure
from rlm_plugins.memory_metrics.sources import MemoryReadError, MemoryText, read_memories
from rlm_plugins.memory_metrics.state import RetrievalRow, RunRow
from rlm_plugins.memory_metrics.writer import FLUSH_TIMEOUT, Outcomes, PendingRow, writer_for

__all__ = ["DEFAULT_DB", "DEFAULT_STATE", "MemoryMetricsTracker"]

DEFAULT_DB = "rlm-memory.db"
DEFAULT_STATE = "rlm-memory-metrics.db"

log = get_logger("rlm.memory_metrics")

# Reads of retrieved memories' text, for every tracker of the process; the thread starts on
# the first read.
_reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rlm-memory-metrics-read")


class MemoryMetricsTracker:
    """Publishes memory metrics for every run and keeps them across runs.

    :param db: the memory database, to read the text of retrieved memories; keep it the same as
        ``[memory] path``.
    :param state: this plugin's own file of per-run rows, read by ``rlm memory report``.

    Relative paths are resolved against the working directory when the plugin is built. Rows
    are written by a writer thread, one per state file and process: :meth:`flush` (or
    :meth:`close`) waits for them, and at process exit the writer gets one bounded flush.
    """

    name = "memory_metrics"

    @staticmethod
    @hookimpl
    def register_commands(groups: Mapping[str, CommandAdder]) -> None:
        """``rlm memory report``."""
        from rlm_plugins.memory_metrics.cli import register_report

        register_report(groups["memory"])

    def __init__(self, db: str = DEFAULT_DB, state: str = DEFAULT_STATE) -> None:
        for option, value in (("db", db), ("state", state)):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"memory_metrics: {option} must be a file path, got {value!r}")
        self.db = Path.cwd() / Path(db).expanduser()
        self.state = Path.cwd() / Path(state).expanduser()
        self._runs: dict[str, RunObservations] = {}
        self._texts_of: dict[str, Future[dict[str, MemoryText] | None]] = {}
        self._writer = writer_for(self.state)  # shared by the trackers of this state file
        self._outcomes = Outcomes()
        self._lock = threading.Lock()

    @property
    def stats(self) -> DeliveryStats:
        """Rows handed to the state file's writer by this process's trackers of that file:
        written (delivered), failed, dropped, still pending."""
        return self._writer.stats

    def flush(self, timeout: float | None = None) -> bool:
        """Wait at most ``timeout`` seconds (default 15) for the rows queued for the state file
        so far to be written (or to fail, logged with the run id); True unless time ran out."""
        return self._writer.flush(FLUSH_TIMEOUT if timeout is None else timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Like :meth:`flush`: the writer thread is shared by this process's trackers of the
        state file, so it is not stopped (at process exit it gets one bounded flush)."""
        return self.flush(timeout)

    @hookimpl
    def run_location(self, run: RunInfo) -> RunLocation | None:
        """Where the run's row is, for ``rlm run`` to print: stored, still being written, or
        not written (``delivered=False``, with the reason); None for a run not ended here."""
        outcome = self._outcomes.get(run.run_id)
        if outcome is None:
            return None
        report = f"rlm memory report --state {self.state}"
        if outcome.state == "stored":
            return RunLocation(f"{self.state} ({report})")
        if outcome.state == "pending":
            return RunLocation(f"{self.state} (the run's row is being written; {report})")
        return RunLocation(
            f"{self.state}: the run's row was not written ({outcome.reason}); "
            f"add it with: rlm replay RUN_LOG --to {self.name}",
            delivered=False,
        )

    @hookimpl
    def memory_retrieved(self, run: RunInfo, retrieval: MemoryRetrieval) -> None:
        seen = self._seen(run)
        seen.retrieval = retrieval
        if retrieval.items:
            # Read now, on the reader thread, while the run goes on: run_metrics needs the text.
            future = _reader.submit(self._texts, seen, run)
            with self._lock:
                self._texts_of[run.run_id] = future

    @hookimpl
    def iteration(self, run: RunInfo, step: Iteration) -> None:
        self._seen(run).code.append(step.code)

    @hookimpl
    def llm_call(self, run: RunInfo, call: LLMCall) -> None:
        if call.role == "root" and call.prompt_tokens is not None:
            seen = self._seen(run)
            seen.root_prompt_tokens += call.prompt_tokens
            seen.root_calls_with_tokens += 1

    @hookimpl
    def judgment(self, run: RunInfo, verdict: Judgment) -> None:
        self._seen(run).verdict = verdict

    @hookimpl
    def graded(self, run: RunInfo, grade: Grade) -> None:
        """An eval's grade: the run's success, with memory on or off, so the report can
        compare the two (the judge only sees runs with memory)."""
        self._seen(run).grade = grade

    @hookimpl
    def memory_extracted(self, run: RunInfo, extraction: MemoryExtraction) -> None:
        self._seen(run).extraction = extraction

    @hookimpl
    def run_metrics(self, run: RunInfo, result: RunResult) -> Mapping[str, float]:
        seen = self._seen(run)
        started = time.perf_counter()
        seen.measurement = measure(seen, self._read_texts(run), result.sparql)
        log.debug("run %s: memory metrics took %.1f ms", run.run_id, _ms(started))
        return seen.measurement.values

    @hookimpl
    def run_end(self, run: RunInfo, result: RunResult) -> None:
        with self._lock:
            seen = self._runs.pop(run.run_id, None) or RunObservations()

        def build() -> RunRow:
            measurement = seen.measurement or measure(seen, self._read_texts(run), result.sparql)
            return _row(run, result, seen, measurement)

        self._writer.submit(PendingRow(run.run_id, build, self._outcomes))

    def _seen(self, run: RunInfo) -> RunObservations:
        seen = self._runs.get(run.run_id)
        if seen is None:
            with self._lock:
                seen = self._runs.setdefault(run.run_id, RunObservations())
        return seen

    def _read_texts(self, run: RunInfo) -> dict[str, MemoryText] | None:
        """The text the reader thread fetched at retrieval (None, with a warning, when it could
        not be read in :data:`~rlm_plugins.memory_metrics.writer.FLUSH_TIMEOUT` seconds)."""
        with self._lock:
            future = self._texts_of.pop(run.run_id, None)
        if future is None:
            return {}  # nothing retrieved, nothing to read
        try:
            return future.result(FLUSH_TIMEOUT)
        except FutureTimeout:
            log.warning(
                "memory_metrics: run %s: reading its memories took over %g s",
                run.run_id,
                FLUSH_TIMEOUT,
            )
            return None

    def _texts(self, seen: RunObservations, run: RunInfo) -> dict[str, MemoryText] | None:
        """The retrieved memories' text; None (with a warning) when it cannot be read.

        A run of ``rlm eval`` names its own memory database in the ``eval.memory_db`` tag (each
        lane of an eval has one); other runs use ``db``."""
        if seen.retrieval is None or not seen.retrieval.items:
            return {}
        ids = [hit.memory_id for hit in seen.retrieval.items]
        database = Path(run.tags["eval.memory_db"]) if "eval.memory_db" in run.tags else self.db
        try:
            texts = read_memories(database, ids)
        except MemoryReadError as exc:
            log.warning("memory_metrics: %s; set [plugins.memory_metrics] db", exc)
            return None
        missing = [memory_id for memory_id in ids if memory_id not in texts]
        if missing:
            log.warning(
                "memory_metrics: %s has no memories %s; is it the [memory] path of the run?",
                database,
                ", ".join(missing),
            )
            return None
        return texts


def _row(
    run: RunInfo, result: RunResult, seen: RunObservations, measurement: Measurement
) -> RunRow:
    hits = seen.retrieval.items if seen.retrieval is not None else ()
    verdict = seen.verdict
    return RunRow(
        run_id=run.run_id,
        started_at=run.started_at.isoformat(),
        ontology=run.ontology.name,
        question=run.question,
        memory_enabled=seen.retrieval is not None,
        retrievals=tuple(
            RetrievalRow(
                hit.memory_id, hit.title, hit.rank, hit.score, measurement.used[hit.memory_id]
            )
            for hit in hits
        ),
        # An eval's grade checks the answer against the task: it wins over the judge's opinion.
        success=seen.grade.success
        if seen.grade is not None
        else (None if verdict is None else verdict.success),
        confidence=1.0
        if seen.grade is not None
        else (None if verdict is None else verdict.confidence),
        converged=result.converged,
        iterations=result.iterations,
        llm_calls=result.llm_calls,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        duration=result.duration,
        prompt_share=measurement.values.get(f"{PREFIX}prompt_share"),
        error=result.error,
        metrics=measurement.values,
    )


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
