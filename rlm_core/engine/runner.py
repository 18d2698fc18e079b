"""``rlm_core.run()``: one observable RLM run over an ontology.

The order is fixed by the hook contract: ``run_start`` before the first LM call, one
``iteration`` per REPL step with ``llm_call`` and ``tool_call`` as they happen, and ``run_end``
always, like ``finally``. Problems of the user's making that are known before the run starts (a
blank question, an ontology file that is missing or cannot be parsed, no model, a missing API
key, a bad config) raise before any plugin hears of the run; anything that goes wrong once the
run has started ends up in ``RunResult.error``.

DSPy and rdflib are imported inside :func:`run`, so importing ``rlm_core`` stays cheap.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from rlm_core._health_file import record_health
from rlm_core._spans import (
    SpanContext,
    TraceparentError,
    current_span,
    environment_traceparent,
    parse_traceparent,
    reset_current,
    set_current,
)
from rlm_core.config import CliOptions, Selection, Settings, load_settings
from rlm_core.engine.emitter import RunEmitter
from rlm_core.errors import UsageError
from rlm_core.events import (
    Grade,
    JSONValue,
    Judgment,
    Limits,
    MemoryExtraction,
    MemoryRetrieval,
    OntologyInfo,
    RunInfo,
    RunResult,
    Setup,
    utc_now,
)
from rlm_core.logs import get_logger
from rlm_core.plugins import PluginManager, get_plugin_manager

__all__ = ["GradeFunction", "new_run_id", "run"]

GradeFunction = Callable[[str | None, str | None, str | None], Mapping[str, Any]]
"""``(answer, sparql, error) -> Grade fields`` (task, success, score, checks): how ``rlm eval``
grades a run before ``run_end``."""

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
    traceparent: str | None = None,
    grade: GradeFunction | None = None,
    allow_cassette_mismatch: bool = False,
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
    :param traceparent: a W3C ``traceparent`` of the caller's span: the run joins that trace
        under it. Default: the span current where ``run`` is called (a nested run hangs under
        the step that started it), else the ``TRACEPARENT`` environment variable, else a new
        trace.
    :param parent_run_id: the run this one belongs to; default: the run whose step is current.
    :param grade: grade the run's answer before ``run_end`` and emit the grade (``graded``).
    :param allow_cassette_mismatch: replay a cassette recorded for another question or
        ontology (``--lm-allow-mismatch``); by default that is a
        :class:`~rlm_core.engine.cassette.CassetteMismatch`, raised before the run starts.
    :raises rlm_core.RLMError: the run cannot start (a blank question, an ontology that cannot be
        loaded, no model, missing API key, bad config, a memory database that cannot be opened,
        a malformed ``traceparent``, a cassette recorded for another question or ontology).
    """
    if not isinstance(question, str) or not question.strip():
        raise UsageError("the question is empty; say what to ask about the ontology")
    parent = _parent_span(traceparent)
    prepared = _prepare(Path(ontology))
    settings = _settings(config, model, sub_model, max_iterations, max_llm_calls, trackers, memory)
    from rlm_core.engine.interpreter import interpreter_factory, sandbox_notice
    from rlm_core.engine.lm import build_language_models

    lms = build_language_models(settings.model, settings.sub_model)
    if not allow_cassette_mismatch:
        _check_cassettes(lms.cassettes, question, ontology)
    factory = interpreter_factory(settings.interpreter, settings.step_timeout)
    notice = sandbox_notice(settings.interpreter, lms.root_name)
    if notice:
        log.warning(notice)
    if manager is None:
        manager = get_plugin_manager(settings, plugins=plugins)
    store, problems = _open_memory(settings)
    try:
        return _run(
            question,
            prepared,
            settings,
            lms,
            factory,
            manager,
            store,
            parent,
            parent_run_id,
            tags,
            record,
            problems,
            grade,
        )
    finally:
        if store is not None:
            store.close()


def _parent_span(traceparent: str | None) -> SpanContext | None:
    """The span a new run hangs under: an explicit ``traceparent``, the current span (a step of
    the run that starts this one), the ``TRACEPARENT`` variable, or none (a new trace).

    A malformed explicit value is the caller's error; a malformed variable is ignored with a
    warning, as W3C Trace Context asks of a receiver.
    """
    if traceparent is not None:
        return parse_traceparent(traceparent)
    current = current_span()
    if current is not None:
        return current
    inherited = environment_traceparent()
    if inherited is None:
        return None
    try:
        return parse_traceparent(inherited)
    except TraceparentError as exc:
        log.warning("TRACEPARENT ignored, the run starts a new trace: %s", exc)
        return None


def _run(
    question: str,
    prepared: _Prepared,
    settings: Settings,
    lms: Any,
    factory: Any,
    manager: PluginManager,
    store: Any,
    parent: SpanContext | None,
    parent_run_id: str | None,
    tags: Mapping[str, str] | None,
    record: str | os.PathLike[str] | None,
    problems: list[str],
    grade: GradeFunction | None = None,
) -> RunResult:
    emitter = RunEmitter(manager, new_run_id(), parent, started_at=prepared.started_at)
    loaded = prepared.loaded
    ontology = OntologyInfo(
        name=loaded.name,
        path=loaded.path,
        triples=loaded.triples,
        format=loaded.format,
    )
    info = emitter.start(
        question=question,
        ontology=ontology,
        model=lms.root_name,
        sub_model=lms.sub_name if lms.sub_name != lms.root_name else None,
        limits=Limits(
            max_iterations=settings.max_iterations,
            max_llm_calls=settings.max_llm_calls,
            step_timeout=settings.step_timeout,
            max_output_chars=settings.max_output_chars,
        ),
        parent_run_id=parent_run_id or emitter.parent_run_id,
        tags=dict(tags or {}),
    )
    # Setup happened before run_start (a run that cannot load its ontology never starts), inside
    # the run's span: it opened with the run.
    emitter.emit(
        "setup",
        Setup,
        emitter.open(started_at=emitter.span.started_at),
        ontology=ontology,
        load_duration=prepared.load_duration,
        index_duration=prepared.index_duration,
        sense_card_duration=prepared.sense_card_duration,
        sense_card_chars=len(prepared.sense_card),
    )
    outcome = _Outcome(problems=problems)
    token = set_current(emitter.context)
    try:
        memory, memories = (
            (None, "") if store is None else _recall(store, emitter, info, settings, outcome)
        )
        _execute(
            outcome, emitter, settings, lms, factory, prepared, question, record, memory, memories
        )
        if grade is not None:
            span = emitter.open()
            emitter.emit(
                "graded", Grade, span, **grade(outcome.answer, outcome.sparql, outcome.error)
            )
    except BaseException as exc:  # KeyboardInterrupt too: run_end still fires, then re-raise
        outcome.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        reset_current(token)
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
            duration=time.perf_counter() - prepared.clock,
            cost=totals.cost if totals else None,
            error=outcome.error,
            problems=(
                *outcome.problems,
                *(f"plugin {name} is blocked: {reason}" for name, reason in blocked.items()),
            ),
            plugin_errors=plugin_errors,
        )
        # Once more after run_end, whose own failures the result could not include, with what
        # the trackers could not deliver (they know it only once run_end has flushed).
        record_health(
            emitter.run_id, *emitter.plugin_trouble(), undelivered=_undelivered(manager, emitter)
        )
    assert result is not None  # run_end is always built
    return result


def _check_cassettes(
    cassettes: Iterable[Any], question: str, ontology: str | os.PathLike[str]
) -> None:
    from rlm_core.engine.cassette import CassetteMismatch

    try:
        for cassette in cassettes:
            cassette.check(question, ontology)
    except CassetteMismatch as exc:
        raise CassetteMismatch(
            f"{exc}; --lm-allow-mismatch (run(allow_cassette_mismatch=True)) replays it anyway"
        ) from None


def _undelivered(manager: PluginManager, emitter: RunEmitter) -> dict[str, str]:
    """Plugin -> where it kept the run it could not fully deliver (its ``run_location`` answer
    with ``delivered=False``)."""
    if emitter.run is None or not manager.hook.wants("run_location"):
        return {}
    return {
        name: location.where
        for name, location in manager.collect("run_location", run=emitter.run)
        if not getattr(location, "delivered", True)
    }


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
    span = emitter.open()
    recall = memory.recall(settings.memory.retrieve)
    emitter.emit(
        "memory_retrieved",
        MemoryRetrieval,
        span,
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

    Each is a span under the run, current while its LM works, so the judge's and the
    extractor's LM calls hang under them. Failures here never fail the run: they become
    ``RunResult.problems`` and a warning.
    """
    text = memory.keep_trajectory(steps)
    problems: list[str] = []
    verdict = None
    if settings.memory.judge:
        span = emitter.open()
        token = set_current(emitter.context_of(span))
        try:
            verdict, judged = memory.judge(text, outcome.answer, outcome.sparql, lms.judge)
        finally:
            reset_current(token)
        problems.extend(judged)
        emitter.emit(
            "judgment",
            Judgment,
            span,
            success=verdict.success,
            reason=verdict.reason,
            confidence=verdict.confidence,
        )
    if settings.memory.extract:
        span = emitter.open()
        token = set_current(emitter.context_of(span))
        try:
            added, extracted = memory.extract(text, verdict, lms.extract)
        finally:
            reset_current(token)
        problems.extend(extracted)
        if not extracted:
            emitter.emit(
                "memory_extracted",
                MemoryExtraction,
                span,
                items=tuple(item.as_event() for item in added),
            )
    for problem in problems:
        log.warning("run %s: memory: %s", emitter.run_id, problem)
    outcome.problems.extend(f"memory {problem}" for problem in problems)


@dataclasses.dataclass
class _Prepared:
    """What setup produced: the ontology, its tools (with their search index), the sense card,
    how long each took, and when setup began (the start of the run's span)."""

    loaded: Any
    started_at: datetime
    clock: float
    tools: Any = None
    sense_card: str = ""
    load_duration: float = 0.0
    index_duration: float = 0.0
    sense_card_duration: float = 0.0


def _prepare(path: Path) -> _Prepared:
    """Load the ontology (parsed once per process: a worker running many runs reuses the graph,
    its index and its sense card), build its tools; an ontology that cannot be loaded raises
    :class:`~rlm_core.ontology.OntologyError` (a usage error) before any tracker sees a run."""
    from rlm_core.ontology import OntologyTools
    from rlm_core.ontology.cache import cached_index, cached_ontology, cached_sense_card

    started_at, clock = utc_now(), time.perf_counter()
    prepared = _Prepared(loaded=cached_ontology(path), started_at=started_at, clock=clock)
    prepared.load_duration = time.perf_counter() - clock
    step = time.perf_counter()
    prepared.tools = OntologyTools(prepared.loaded, derived=cached_index(prepared.loaded))
    prepared.index_duration = time.perf_counter() - step
    step = time.perf_counter()
    prepared.sense_card = cached_sense_card(prepared.loaded)
    prepared.sense_card_duration = time.perf_counter() - step
    return prepared


def _execute(
    outcome: _Outcome,
    emitter: RunEmitter,
    settings: Settings,
    lms: Any,
    factory: Any,
    prepared: _Prepared,
    question: str,
    record: str | os.PathLike[str] | None,
    memory: Any,
    memories: str,
) -> None:
    import dspy

    from rlm_core._redact import Redactor
    from rlm_core.engine.bridge import HookBridge
    from rlm_core.engine.cassette import CassetteWriter, Response, ontology_digest
    from rlm_core.engine.program import build_program

    functions = prepared.tools.tool_functions()
    program = build_program(
        tools=list(functions.values()),
        sub_lm=lms.sub,
        max_iterations=settings.max_iterations,
        max_llm_calls=settings.max_llm_calls,
        max_output_chars=settings.max_output_chars,
        interpreter_factory=factory,
    )
    writer = (
        None
        if record is None
        else CassetteWriter(
            os.fspath(record),
            recorded_with=lms.root_name,
            question=question,
            ontology_sha256=ontology_digest(prepared.loaded.path),
        )
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
        content=Redactor.from_environment().text if settings.capture_content else None,
    )
    outcome.totals = bridge.totals
    # A nested run on this thread inherits the outer run's DSPy context: its bridge is the
    # outer run's, not this one's.
    inherited = [c for c in dspy.settings.get("callbacks", []) if not isinstance(c, HookBridge)]
    callbacks = [*inherited, bridge]
    context = memories or "(none yet)"
    try:
        with dspy.context(lm=lms.root, callbacks=callbacks):
            try:
                prediction = program(
                    question=question, ontology=prepared.sense_card, memories=context
                )
            except Exception as exc:
                outcome.error = f"{type(exc).__name__}: {exc}"
                return
            finally:
                bridge.finish()
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
