"""``rlm_core.run()``: one observable RLM run over an ontology.

The order is fixed by the hook contract: ``run_start`` before the first LM call, one
``iteration`` per REPL step with ``llm_call`` and ``tool_call`` as they happen, and ``run_end``
always, like ``finally``. Problems of the user's making that are known before the run starts (no
model, a missing API key, a bad config) raise; anything that goes wrong once the run has started
ends up in ``RunResult.error``.

DSPy and rdflib are imported inside :func:`run`, so importing ``rlm_core`` stays cheap.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rlm_core._health_file import record_health
from rlm_core.config import CliOptions, Selection, Settings, load_settings
from rlm_core.engine.emitter import RunEmitter
from rlm_core.events import (
    JSONValue,
    Judgment,
    Limits,
    MemoryExtraction,
    MemoryRetrieval,
    OntologyInfo,
    RunInfo,
    RunResult,
    utc_now,
)
from rlm_core.logs import get_logger
from rlm_core.plugins import PluginManager, get_plugin_manager

__all__ = ["new_run_id", "run"]

log = get_logger("rlm.run")


def new_run_id() -> str:
    """A run id that sorts by start time: ``20261126-203746-1a2b3c4d``."""
    return f"{utc_now():%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"


def run(
    question: str,
    ontology: str | os.PathLike[str],
    *,
    model: str | None = None,
    sub_model: str | None = None,
    max_iterations: int | None = None,
    max_llm_calls: int | None = None,
    memory: bool | None = None,
    trackers: Sequence[str] | None = None,
    plugins: Iterable[object] = (),
    tags: Mapping[str, str] | None = None,
    parent_run_id: str | None = None,
    config: Settings | str | os.PathLike[str] | None = None,
    record: str | os.PathLike[str] | None = None,
    manager: PluginManager | None = None,
) -> RunResult:
    """Answer ``question`` over the ontology file ``ontology`` and return how the run ended.

    :param model: LiteLLM model string, or ``scripted:PATH`` to replay a cassette; default from
        the config (``[rlm] model`` / ``RLM_MODEL``).
    :param sub_model: the LM behind ``llm_query``; default: the model.
    :param memory: use procedural memory (retrieve before, judge and extract after); default
        from ``[memory] enabled``.
    :param trackers: names of the trackers to enable (an allow-list above every other layer).
    :param plugins: extra plugin objects for this run, always enabled.
    :param config: settings, or a config file to read them from; default: the usual lookup.
    :param record: write every LM response of this run to a cassette at this path.
    :param manager: emit to this plugin manager instead of one built from the settings (whose
        tracker selection, ``trackers`` and ``plugins`` are then not used).
    :raises rlm_core.RLMError: the run cannot start (no model, missing API key, bad config, a
        memory database that cannot be opened).
    """
    settings = _settings(config, model, sub_model, max_iterations, max_llm_calls, trackers, memory)
    from rlm_core.engine.interpreter import interpreter_factory
    from rlm_core.engine.lm import build_language_models

    lms = build_language_models(settings.model, settings.sub_model)
    factory = interpreter_factory(settings.interpreter, settings.step_timeout)
    if manager is None:
        manager = get_plugin_manager(settings, plugins=plugins)
    store, problems = _open_memory(settings)
    try:
        return _run(
            question,
            Path(ontology),
            settings,
            lms,
            factory,
            manager,
            store,
            parent_run_id,
            tags,
            record,
            problems,
        )
    finally:
        if store is not None:
            store.close()


def _run(
    question: str,
    path: Path,
    settings: Settings,
    lms: Any,
    factory: Any,
    manager: PluginManager,
    store: Any,
    parent_run_id: str | None,
    tags: Mapping[str, str] | None,
    record: str | os.PathLike[str] | None,
    problems: list[str],
) -> RunResult:
    emitter = RunEmitter(manager, new_run_id())
    started = time.perf_counter()
    loaded, load_error = _load(path)
    info = emitter.start(
        question=question,
        ontology=OntologyInfo(
            name=loaded.name if loaded else path.name.split(".")[0],
            path=str(path.resolve()),
            triples=loaded.triples if loaded else 0,
        ),
        model=lms.root_name,
        sub_model=lms.sub_name if lms.sub_name != lms.root_name else None,
        limits=Limits(
            max_iterations=settings.max_iterations,
            max_llm_calls=settings.max_llm_calls,
            step_timeout=settings.step_timeout,
            max_output_chars=settings.max_output_chars,
        ),
        parent_run_id=parent_run_id,
        tags=dict(tags or {}),
    )
    outcome = _Outcome(error=load_error, problems=problems)
    try:
        if loaded is not None:
            memory, memories = (
                (None, "") if store is None else _recall(store, emitter, info, settings, outcome)
            )
            _execute(
                outcome, emitter, settings, lms, factory, loaded, question, record, memory, memories
            )
    except BaseException as exc:  # KeyboardInterrupt too: run_end still fires, then re-raise
        outcome.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        totals = outcome.totals
        manager.drain()
        plugin_errors, blocked = emitter.plugin_trouble()
        result = emitter.emit(
            "run_end",
            RunResult,
            answer=outcome.answer,
            sparql=outcome.sparql,
            evidence=outcome.evidence,
            converged=outcome.converged and outcome.error is None,
            iterations=totals.iterations if totals else 0,
            llm_calls=totals.llm_calls if totals else 0,
            prompt_tokens=totals.prompt_tokens if totals else 0,
            completion_tokens=totals.completion_tokens if totals else 0,
            duration=time.perf_counter() - started,
            error=outcome.error,
            problems=(
                *outcome.problems,
                *(f"plugin {name} is blocked: {reason}" for name, reason in blocked.items()),
            ),
            plugin_errors=plugin_errors,
        )
        # Once more after run_end, whose own failures the result could not include.
        record_health(emitter.run_id, *emitter.plugin_trouble())
    assert result is not None  # run_end is always built
    return result


@dataclasses.dataclass
class _Outcome:
    """What the run produced so far; filled in as far as it got."""

    error: str | None = None
    answer: str | None = None
    sparql: str | None = None
    evidence: JSONValue = None
    converged: bool = False
    totals: Any = None
    problems: list[str] = dataclasses.field(default_factory=list)


def _settings(
    config: Settings | str | os.PathLike[str] | None,
    model: str | None,
    sub_model: str | None,
    max_iterations: int | None,
    max_llm_calls: int | None,
    trackers: Sequence[str] | None,
    memory: bool | None,
) -> Settings:
    if isinstance(config, Settings):
        settings = config
    else:
        settings = load_settings(CliOptions(config=None if config is None else os.fspath(config)))
    overrides: dict[str, Any] = {
        key: value
        for key, value in (
            ("model", model),
            ("sub_model", sub_model),
            ("max_iterations", max_iterations),
            ("max_llm_calls", max_llm_calls),
        )
        if value is not None
    }
    if memory is not None:
        overrides["memory"] = dataclasses.replace(settings.memory, enabled=memory)
    if trackers is not None:
        chosen = Selection(source="run(trackers=...)", allow=tuple(trackers), allow_flag="trackers")
        overrides["selections"] = (chosen, *settings.selections)
    return dataclasses.replace(settings, **overrides)


def _open_memory(settings: Settings) -> tuple[Any, list[str]]:
    """The memory store (None when memory is off) and the problems met opening it.

    A database that is corrupt or too new is the user's to fix: it raises before the run. One
    that another process holds locked past the timeout is passing trouble: the run goes on
    without memory, and says so.
    """
    if not settings.memory.enabled:
        return None, []
    from rlm_core.memory import MemoryStoreError, SQLiteMemoryStore

    try:
        return SQLiteMemoryStore(settings.memory.path, timeout=settings.memory.timeout), []
    except MemoryStoreError as exc:
        if "locked" in str(exc):
            problem = f"memory unavailable, the run went on without it: {exc}"
            log.warning(problem)
            return None, [problem]
        raise MemoryStoreError(f"{exc} (run with --no-memory to go on without memory)") from None


def _recall(
    store: Any, emitter: RunEmitter, info: RunInfo, settings: Settings, outcome: _Outcome
) -> tuple[Any, str]:
    """Record the run in memory, retrieve strategies for it and emit ``memory_retrieved``.

    A store that fails now (e.g. locked by another process) costs the run its memory, not its
    answer.
    """
    from rlm_core.memory import MemoryStoreError

    try:
        return _recall_from(store, emitter, info, settings)
    except MemoryStoreError as exc:
        problem = f"memory unavailable, the run went on without it: {exc}"
        log.warning("run %s: %s", info.run_id, problem)
        outcome.problems.append(problem)
        return None, ""


def _recall_from(
    store: Any, emitter: RunEmitter, info: RunInfo, settings: Settings
) -> tuple[Any, str]:
    from rlm_core._redact import Redactor
    from rlm_core.memory import RunMemory

    memory = RunMemory(
        store,
        run_id=info.run_id,
        question=info.question,
        ontology=info.ontology.name,
        started_at=info.started_at,
        redact=Redactor.from_environment().text,
    )
    recall = memory.recall(settings.memory.retrieve)
    emitter.emit(
        "memory_retrieved",
        MemoryRetrieval,
        query=recall.query,
        k=recall.k,
        items=tuple(item.as_event() for item in recall.items),
        duration=recall.duration,
    )
    return memory, recall.context


def _learn_safely(
    memory: Any, outcome: _Outcome, emitter: RunEmitter, settings: Settings, lms: Any, steps: Any
) -> None:
    """:func:`_learn`, with a failing store reported as a problem instead of failing the run."""
    from rlm_core.memory import MemoryStoreError

    try:
        _learn(memory, outcome, emitter, settings, lms, steps)
    except MemoryStoreError as exc:
        problem = f"memory could not learn from this run: {exc}"
        log.warning("run %s: %s", emitter.run_id, problem)
        outcome.problems.append(problem)


def _learn(
    memory: Any, outcome: _Outcome, emitter: RunEmitter, settings: Settings, lms: Any, steps: Any
) -> None:
    """Judge the run, extract memories, emit ``judgment`` and ``memory_extracted``.

    Failures here never fail the run: they become ``RunResult.problems`` and a warning.
    """
    judge = settings.memory.judge
    extract = settings.memory.extract
    learning = memory.learn(
        answer=outcome.answer,
        sparql=outcome.sparql,
        steps=steps,
        judge_lm=lms.judge if judge else None,
        extract_lm=lms.extract if extract else None,
    )
    if learning.verdict is not None:
        emitter.emit(
            "judgment",
            Judgment,
            success=learning.verdict.success,
            reason=learning.verdict.reason,
            confidence=learning.verdict.confidence,
        )
    extraction_failed = any(problem.startswith("extract:") for problem in learning.problems)
    if extract and not extraction_failed:
        emitter.emit(
            "memory_extracted",
            MemoryExtraction,
            items=tuple(added.as_event() for added in learning.added),
        )
    for problem in learning.problems:
        log.warning("run %s: memory: %s", emitter.run_id, problem)
    outcome.problems.extend(f"memory {problem}" for problem in learning.problems)


def _load(path: Path) -> tuple[Any, str | None]:
    from rlm_core.ontology import OntologyError, load_ontology

    try:
        return load_ontology(path), None
    except OntologyError as exc:
        return None, f"OntologyError: {exc}"


def _execute(
    outcome: _Outcome,
    emitter: RunEmitter,
    settings: Settings,
    lms: Any,
    factory: Any,
    loaded: Any,
    question: str,
    record: str | os.PathLike[str] | None,
    memory: Any,
    memories: str,
) -> None:
    import dspy

    from rlm_core.engine.bridge import HookBridge
    from rlm_core.engine.cassette import CassetteWriter, Response
    from rlm_core.engine.program import build_program
    from rlm_core.ontology import OntologyTools, build_sense_card

    tools = OntologyTools(loaded)
    functions = tools.tool_functions()
    program = build_program(
        tools=list(functions.values()),
        sub_lm=lms.sub,
        max_iterations=settings.max_iterations,
        max_llm_calls=settings.max_llm_calls,
        max_output_chars=settings.max_output_chars,
        interpreter_factory=factory,
    )
    writer = (
        None if record is None else CassetteWriter(os.fspath(record), recorded_with=lms.root_name)
    )
    bridge = HookBridge(
        emitter,
        action_module=program.generate_action,
        extract_module=program.extract,
        role_of=lms.role_of,
        tool_names=functions,
        max_output_chars=settings.max_output_chars,
        on_response=None
        if writer is None
        else lambda r: writer.write(
            Response(r.role, r.text, r.prompt_tokens, r.completion_tokens, r.model)
        ),
    )
    outcome.totals = bridge.totals
    callbacks = [*dspy.settings.get("callbacks", []), bridge]
    context = memories or "(none yet)"
    try:
        with dspy.context(lm=lms.root, callbacks=callbacks):
            try:
                prediction = program(
                    question=question, ontology=build_sense_card(loaded), memories=context
                )
            except Exception as exc:
                outcome.error = f"{type(exc).__name__}: {exc}"
                return
            outcome.answer = _text(prediction.answer)
            outcome.sparql = _text(prediction.sparql)
            outcome.evidence = _evidence(prediction.evidence)
            outcome.converged = not bridge.totals.fell_back_to_extract
            if memory is not None:
                _learn_safely(memory, outcome, emitter, settings, lms, list(bridge.steps))
    finally:
        if writer is not None:
            writer.close()


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _evidence(value: Any) -> JSONValue:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return [item if isinstance(item, str | int | float | bool) else str(item) for item in value]
    return str(value)
