"""The ``memory_metrics`` plugin: does procedural memory help? Measured per run, kept across runs.

During a run the hooks only note what they see, in memory. When the run is over, ``run_metrics``
reads the retrieved memories' text through the memory store's API, computes the run's metrics
and returns them (the engine emits them as ``metrics`` to every tracker before any tracker's
``run_end``); ``run_end`` appends the run to the plugin's own state file, which
``rlm memory report`` reads. A replayed run (no ``run_metrics`` call) is measured at ``run_end``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path

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
from rlm_plugins.memory_metrics.state import RetrievalRow, RunRow, write_run

__all__ = ["DEFAULT_DB", "DEFAULT_STATE", "MemoryMetricsTracker"]

DEFAULT_DB = "rlm-memory.db"
DEFAULT_STATE = "rlm-memory-metrics.db"

log = get_logger("rlm.memory_metrics")


class MemoryMetricsTracker:
    """Publishes memory metrics for every run and keeps them across runs.

    :param db: the memory database, to read the text of retrieved memories; keep it the same as
        ``[memory] path``.
    :param state: this plugin's own file of per-run rows, read by ``rlm memory report``.

    Relative paths are resolved against the working directory when the plugin is built.
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
        self._stored: set[str] = set()
        self._lock = threading.Lock()

    @hookimpl
    def run_location(self, run: RunInfo) -> RunLocation | None:
        """Where the run's row went, for ``rlm run`` to print."""
        if run.run_id not in self._stored:
            return None
        return RunLocation(f"{self.state} (rlm memory report --state {self.state})")

    @hookimpl
    def memory_retrieved(self, run: RunInfo, retrieval: MemoryRetrieval) -> None:
        self._seen(run).retrieval = retrieval

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
        seen.measurement = measure(seen, self._texts(seen, run), result.sparql)
        log.debug("run %s: memory metrics took %.1f ms", run.run_id, _ms(started))
        return seen.measurement.values

    @hookimpl
    def run_end(self, run: RunInfo, result: RunResult) -> None:
        with self._lock:
            seen = self._runs.pop(run.run_id, None) or RunObservations()
        measurement = seen.measurement or measure(seen, self._texts(seen, run), result.sparql)
        write_run(self.state, _row(run, result, seen, measurement))
        self._stored.add(run.run_id)

    def _seen(self, run: RunInfo) -> RunObservations:
        seen = self._runs.get(run.run_id)
        if seen is None:
            with self._lock:
                seen = self._runs.setdefault(run.run_id, RunObservations())
        return seen

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
