"""Run one lane of an eval: its tasks in file order, each a normal observed run, graded.

The same code runs on a local worker thread and inside a Ray task, so both executors give the
same grades. A lane builds one plugin manager from the eval's settings (with the lane's memory
database), reuses it for every run of the lane and closes its plugins at the end, so a process
that runs thousands of runs holds steady threads and file descriptors. Ontologies come from the
per-process cache, so a worker parses each one once.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rlm_core.config import Settings
from rlm_core.eval.plan import Condition, Lane, RunKey
from rlm_core.eval.results import RunRecord
from rlm_core.eval.tasks import Task, TaskSet
from rlm_core.events import GradeCheck, RunInfo
from rlm_core.hookspecs import hookimpl

__all__ = ["EvalSpec", "close_plugins", "lane_settings", "model_for", "run_lane"]

log = logging.getLogger("rlm.eval")


@dataclasses.dataclass(frozen=True)
class EvalSpec:
    """Everything a worker needs to run lanes of an eval (picklable, for Ray)."""

    eval_id: str
    tasks: TaskSet
    settings: Settings
    out: Path
    query_timeout: float = 10.0
    memory_pack: Path | None = None


def model_for(spec: str, task: Task) -> str:
    """The model of ``task``'s runs: ``scripted:DIR`` replays ``DIR/<task id>.jsonl``."""
    from rlm_core.engine.lm import SCRIPTED_PREFIX

    if spec.startswith(SCRIPTED_PREFIX):
        path = Path(spec[len(SCRIPTED_PREFIX) :]).expanduser()
        if path.is_dir():
            return f"{SCRIPTED_PREFIX}{path / (task.id + '.jsonl')}"
    return spec


def lane_settings(spec: EvalSpec, condition: Condition, trial: int) -> Settings:
    """The eval's settings for one lane: its model, memory switch and memory database."""
    settings = spec.settings
    memory = settings.memory
    if condition.memory is not None:
        memory = dataclasses.replace(memory, enabled=condition.memory)
    database = spec.out / "memory" / condition.slug / f"trial-{trial}.db"
    memory = dataclasses.replace(memory, path=str(database))
    return dataclasses.replace(settings, model=condition.model or settings.model, memory=memory)


class _RunNotes:
    """Keeps each run's :class:`RunInfo` until its record is built, to ask the trackers where
    they put the run (``run_location``)."""

    name = "eval-runs"

    def __init__(self) -> None:
        self.runs: dict[str, RunInfo] = {}
        self._lock = threading.Lock()

    @hookimpl
    def run_start(self, run: RunInfo) -> None:
        with self._lock:
            self.runs[run.run_id] = run

    def pop(self, run_id: str) -> RunInfo | None:
        with self._lock:
            return self.runs.pop(run_id, None)


def run_lane(
    spec: EvalSpec,
    lane: Lane,
    done: frozenset[str],
    on_record: Callable[[RunRecord], None],
    stop: threading.Event | None = None,
) -> int:
    """Run the lane's tasks that are not ``done``, in order; hand each record to ``on_record``
    as its run ends. Returns how many runs it ran."""
    from rlm_core.memory.packs import import_pack
    from rlm_core.plugins import get_plugin_manager

    settings = lane_settings(spec, lane.condition, lane.trial)
    pending = [key for key in lane.run_keys() if str(key) not in done]
    if not pending:
        return 0
    if settings.memory.enabled:
        _prepare_memory(Path(settings.memory.path), spec.memory_pack, import_pack)
    notes = _RunNotes()
    manager = get_plugin_manager(settings, plugins=[notes])
    ran = 0
    try:
        for key in pending:
            if stop is not None and stop.is_set():
                break
            on_record(_run_task(spec, settings, manager, notes, key, lane.condition))
            ran += 1
    finally:
        close_plugins(manager)
    return ran


def _prepare_memory(database: Path, pack: Path | None, import_pack: Any) -> None:
    """Create the lane's memory database, seeded from the pack the first time."""
    from rlm_core.memory import SQLiteMemoryStore

    if database.exists():
        return
    database.parent.mkdir(parents=True, exist_ok=True)
    store = SQLiteMemoryStore(str(database))
    try:
        if pack is not None:
            import_pack(store, pack)
    finally:
        store.close()


def _run_task(
    spec: EvalSpec,
    settings: Settings,
    manager: Any,
    notes: _RunNotes,
    key: RunKey,
    condition: Condition,
) -> RunRecord:
    from rlm_core.engine.runner import run

    task = spec.tasks.task(key.task)
    assert settings.model is not None  # checked before the eval starts
    model = model_for(settings.model, task)
    grades: list[Mapping[str, Any]] = []

    def grade(answer: str | None, sparql: str | None, error: str | None) -> Mapping[str, Any]:
        fields = _grade(task, model, settings, spec.query_timeout, answer, sparql, error)
        grades.append(fields)
        return fields

    tags = {
        "eval.id": spec.eval_id,
        "eval.task": task.id,
        "eval.condition": condition.name,
        "eval.trial": str(key.trial),
    }
    if settings.memory.enabled:
        # Which memory database the run used: trackers that read memories read this lane's.
        tags["eval.memory_db"] = settings.memory.path
    result = run(
        task.question,
        task.ontology,
        model=model,
        sub_model=model_for(settings.sub_model, task) if settings.sub_model else None,
        config=settings,
        manager=manager,
        tags=tags,
        grade=grade,
    )
    graded: Mapping[str, Any] = (
        grades[0] if grades else {"success": False, "score": 0.0, "checks": ()}
    )
    checks: tuple[GradeCheck, ...] = graded["checks"]
    return RunRecord(
        key=str(key),
        condition=condition.name,
        task=task.id,
        trial=key.trial,
        run_id=result.run_id,
        success=bool(graded["success"]),
        score=float(graded["score"]),
        checks=[dataclasses.asdict(check) for check in checks],
        answer=result.answer,
        error=result.error,
        iterations=result.iterations,
        llm_calls=result.llm_calls,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        cost=result.cost,
        duration=result.duration,
        locations=_locations(manager, notes.pop(result.run_id)),
    )


def _grade(
    task: Task,
    model: str,
    settings: Settings,
    timeout: float,
    answer: str | None,
    sparql: str | None,
    error: str | None,
) -> dict[str, Any]:
    """The grade's fields; a grader that breaks fails the run's grade, never the run."""
    from rlm_core.eval.graders import RUBRIC_ROLE, grade_answer

    try:
        from rlm_core.engine.lm import build_role_lm
        from rlm_core.ontology.cache import cached_ontology

        rubric_lm = None
        if task.rubric is not None:
            rubric_lm = build_role_lm(model_for(settings.sub_model or model, task), RUBRIC_ROLE)
        success, score, checks = grade_answer(
            task,
            answer,
            sparql,
            error,
            loaded=cached_ontology(task.ontology) if task.expected_sparql else None,
            timeout=timeout,
            rubric_lm=rubric_lm,
        )
    except Exception as exc:
        log.warning("task %s: grading failed: %s", task.id, exc)
        failed = GradeCheck(grader="error", passed=False, score=0.0, detail=f"{exc}")
        return {"task": task.id, "success": False, "score": 0.0, "checks": (failed,)}
    return {"task": task.id, "success": success, "score": score, "checks": checks}


def _locations(manager: Any, run: RunInfo | None) -> dict[str, str]:
    """Where each tracker put the run (a run log, a tracking server's run), for the report's
    links."""
    if run is None:
        return {}
    return {
        name: str(location.where) for name, location in manager.collect("run_location", run=run)
    }


def close_plugins(manager: Any) -> None:
    """Close every plugin that can be closed (their worker threads stop)."""
    for name, plugin in manager.list_name_plugin():
        close = getattr(plugin, "close", None)
        if callable(close):
            try:
                close()
            except Exception as exc:
                log.warning("plugin %s failed to close: %s", name, exc)
