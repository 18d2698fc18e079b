"""``rlm eval run``: check everything, then run the lanes that are not done, and summarize.

Everything that can be wrong with the task file, the models or the output directory is found
before the first run, so a usage error records nothing. Results are appended to the output
directory as each run ends; running again with the same ``--out`` skips the finished runs.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import secrets
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from rlm_core.config import Settings
from rlm_core.errors import ConfigError
from rlm_core.eval.lanes import EvalSpec, model_for, run_lane
from rlm_core.eval.plan import Condition, Lane, parse_vary, plan_lanes
from rlm_core.eval.progress import Progress
from rlm_core.eval.results import ResultLog, RunRecord, read_records, write_manifest
from rlm_core.eval.summary import Summary, summarize
from rlm_core.eval.tasks import Task, TaskFileError, TaskSet, load_tasks
from rlm_core.events import EvalInfo, EvalSummary, utc_now

__all__ = ["EXECUTORS", "EvalOptions", "EvalOutcome", "run_eval"]

EXECUTORS = ("local", "ray")

log = logging.getLogger("rlm.eval")

LaneExecutor = Callable[
    [EvalSpec, Sequence[Lane], frozenset[str], Callable[[RunRecord], None], threading.Event],
    None,
]


@dataclasses.dataclass(frozen=True)
class EvalOptions:
    """What ``rlm eval run`` was asked to do."""

    tasks: Path
    out: Path
    trials: int = 1
    vary: tuple[str, ...] = ()
    workers: int = 1
    executor: str = "local"
    ray_address: str | None = None
    memory_pack: Path | None = None
    query_timeout: float = 10.0


@dataclasses.dataclass(frozen=True)
class EvalOutcome:
    """How an eval invocation ended."""

    out: Path
    eval_id: str
    total: int
    ran: int
    skipped: int
    records: list[RunRecord]
    summary: Summary
    interrupted: bool


def run_eval(
    options: EvalOptions, settings: Settings, *, progress: TextIO | None = None
) -> EvalOutcome:
    """Run the eval; raise an :class:`~rlm_core.RLMError` before any run when it cannot start."""
    tasks = load_tasks(options.tasks)
    conditions = parse_vary(options.vary)
    lanes = plan_lanes(conditions, [task.id for task in tasks.tasks], options.trials)
    if options.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {options.workers}")
    if options.executor not in EXECUTORS:
        raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)}")
    if options.memory_pack is not None and not options.memory_pack.is_file():
        raise ConfigError(f"--memory-pack: {options.memory_pack} does not exist")
    _check_references(tasks)
    _check_models(tasks, conditions, settings)
    manifest = write_manifest(
        options.out,
        {
            "eval_id": f"eval-{utc_now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}",
            "tasks_path": str(tasks.path),
            "tasks_sha256": tasks.sha256,
            "tasks": [task.id for task in tasks.tasks],
            "conditions": [condition.name for condition in conditions],
            "trials": options.trials,
        },
    )
    spec = EvalSpec(
        eval_id=str(manifest["eval_id"]),
        tasks=tasks,
        settings=settings,
        out=options.out.resolve(),
        query_timeout=options.query_timeout,
        memory_pack=options.memory_pack.resolve() if options.memory_pack else None,
    )
    done = frozenset(record.key for record in read_records(options.out)[0])
    total = sum(len(lane.tasks) for lane in lanes)
    todo = [lane for lane in lanes if any(str(key) not in done for key in lane.run_keys())]
    pending = sum(str(key) not in done for lane in todo for key in lane.run_keys())
    info = EvalInfo(
        eval_id=spec.eval_id,
        tasks_path=str(tasks.path),
        tasks_sha256=tasks.sha256,
        tasks=tuple(task.id for task in tasks.tasks),
        conditions=tuple(condition.name for condition in conditions),
        trials=options.trials,
        started_at=utc_now(),
    )
    return _execute(options, settings, spec, info, todo, done, total, pending, progress)


def _execute(
    options: EvalOptions,
    settings: Settings,
    spec: EvalSpec,
    info: EvalInfo,
    lanes: Sequence[Lane],
    done: frozenset[str],
    total: int,
    pending: int,
    stream: TextIO | None,
) -> EvalOutcome:
    from rlm_core.eval.lanes import close_plugins
    from rlm_core.plugins import get_plugin_manager

    manager = get_plugin_manager(settings)
    manager.hook.eval_start(evaluation=info)
    progress = Progress(pending, stream)
    results = ResultLog(options.out)
    stop = threading.Event()
    ran = 0
    counter = threading.Lock()

    def on_record(record: RunRecord) -> None:
        nonlocal ran
        results.append(record)
        with counter:
            ran += 1
        progress.update(record.success)

    interrupted = False
    try:
        executor = _executor(options)
        executor(spec, lanes, done, on_record, stop)
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
    finally:
        progress.finish()
        results.close()
        records, _ = read_records(options.out)
        summary = summarize(records, info.conditions, info.tasks)
        interrupted = interrupted or stop.is_set()
        manager.hook.eval_end(
            evaluation=info,
            summary=EvalSummary(
                runs=len(records),
                failed=sum(not record.success for record in records),
                metrics=summary.metrics(),
                interrupted=interrupted,
            ),
        )
        close_plugins(manager)
    return EvalOutcome(
        out=options.out,
        eval_id=spec.eval_id,
        total=total,
        ran=ran,
        skipped=total - pending,
        records=records,
        summary=summary,
        interrupted=interrupted,
    )


def _executor(options: EvalOptions) -> LaneExecutor:
    if options.executor == "ray":
        from rlm_core.eval.ray_executor import ray_executor

        executor: LaneExecutor = ray_executor(options.ray_address, options.workers)
        return executor
    return _local_executor(options.workers)


def _local_executor(workers: int) -> LaneExecutor:
    def execute(
        spec: EvalSpec,
        lanes: Sequence[Lane],
        done: frozenset[str],
        on_record: Callable[[RunRecord], None],
        stop: threading.Event,
    ) -> None:
        pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="rlm-eval")
        futures = [pool.submit(run_lane, spec, lane, done, on_record, stop) for lane in lanes]
        try:
            for future in concurrent.futures.as_completed(futures):
                future.result()
        except BaseException:
            stop.set()  # running runs finish (their results are kept); no new run starts
            print("rlm eval: stopping after the running runs end", file=sys.stderr)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    return execute


def _check_models(tasks: TaskSet, conditions: Sequence[Condition], settings: Settings) -> None:
    """Every condition has a model, and every model can be built (keys, cassettes)."""
    from rlm_core.engine.lm import build_language_models

    for condition in conditions:
        model = condition.model or settings.model
        if not model:
            raise ConfigError(
                "no model given: pass --lm MODEL or --vary model=A,B, set RLM_MODEL, or set "
                "model in [rlm]"
            )
        for task in tasks.tasks:
            chosen = model_for(model, task)
            sub = model_for(settings.sub_model, task) if settings.sub_model else None
            _check_cassette(chosen, task)
            build_language_models(chosen, sub)


def _check_cassette(model: str, task: Task) -> None:
    """A cassette that says which question and ontology it was recorded for must be the
    task's: checked for every task before the first run, so a mix-up stops the eval early."""
    from rlm_core.engine.cassette import Cassette, CassetteMismatch
    from rlm_core.engine.lm import SCRIPTED_PREFIX

    if not model.startswith(SCRIPTED_PREFIX):
        return
    cassette = Cassette.load(Path(model[len(SCRIPTED_PREFIX) :]).expanduser())
    try:
        cassette.check(task.question, task.ontology)
    except CassetteMismatch as exc:
        raise CassetteMismatch(f"task {task.id!r}: {exc}") from None


def _check_references(tasks: TaskSet) -> None:
    """Every ontology loads and every reference query passes the read-only checks."""
    from rlm_core.ontology import OntologyError
    from rlm_core.ontology.cache import cached_ontology
    from rlm_core.ontology.prefixes import PrefixMap
    from rlm_core.ontology.sparql import QueryRefused, vet_query

    for task in tasks.tasks:
        where = f"{tasks.path}:{task.line}: task {task.id!r}"
        try:
            loaded = cached_ontology(task.ontology)
        except OntologyError as exc:
            raise TaskFileError(f"{where}: ontology: {exc}") from None
        if task.expected_sparql is None:
            continue
        try:
            vet_query(
                task.expected_sparql, PrefixMap.from_graph(loaded.graph, loaded.name).namespaces
            )
        except QueryRefused as exc:
            first = str(exc).splitlines()[0]
            raise TaskFileError(f"{where}: expected_sparql: {first}") from None
