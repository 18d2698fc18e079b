"""The MLflow tracker: one MLflow run per rlm run, with params, step metrics, tags and artifacts.

Hooks run on the engine thread and only build small records for the store's shared worker
(:mod:`rlm_plugins.mlflow.channel`), which makes every MLflow call
(:mod:`rlm_plugins.mlflow.writer`). ``run_end`` hands over the last records and returns;
``flush(timeout)`` (``rlm_core.flush``, and ``rlm run`` before it prints where the run went)
waits for them. A run that did not reach MLflow is kept in a spool file that ``rlm replay FILE
--to mlflow`` sends later. Importing this module does not import mlflow (it only checks that
mlflow is installed), so listing plugins stays fast.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import string
import threading
from collections.abc import Mapping
from datetime import UTC
from pathlib import Path
from typing import Any

from rlm_core.events import (
    EvalInfo,
    EvalSummary,
    Event,
    Grade,
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
from rlm_core.hookspecs import CommandAdder, RunLocation, hookimpl
from rlm_core.logs import get_logger
from rlm_core.runlog import MetricsPoint
from rlm_plugins.mlflow.channel import Channel, Spooled, channel_for
from rlm_plugins.mlflow.evals import EvalRuns
from rlm_plugins.mlflow.location import (
    DEFAULT_EXPERIMENT,
    DEFAULT_TRACKING_URI,
    artifact_location_for,
    is_server,
    quiet_mlflow_logging,
    resolve_artifact_location,
    resolve_tracking_uri,
)
from rlm_plugins.mlflow.records import (
    Artifact,
    End,
    MetricPoint,
    Record,
    Start,
    Values,
    millis,
)
from rlm_plugins.mlflow.writer import describe

__all__ = ["MlflowTracker"]

# Checked, not imported: a missing mlflow makes the plugin unavailable, with the install hint.
if importlib.util.find_spec("mlflow") is None:
    from rlm_core.install_hints import install_hint as _install_hint

    raise ImportError(
        "the mlflow tracker needs the mlflow package; install it with: "
        + _install_hint(extra="mlflow"),
        name="mlflow",
    )


log = get_logger("rlm.mlflow")

_PLACEHOLDERS = ("run_id", "date", "ontology", "question")
_QUESTION_CHARS = 60


@dataclasses.dataclass
class _RunState:
    """What the engine thread keeps per run: its events (for the spool) and step counters."""

    run: RunInfo
    events: list[Event | MetricsPoint]
    step_llm_calls: int = 0
    step_prompt_tokens: int = 0
    step_completion_tokens: int = 0
    step_tool_calls: int = 0
    tool_calls: int = 0
    cost: float | None = None


class MlflowTracker:
    """Logs every rlm run as an MLflow run, off the engine thread.

    :param tracking_uri: where to log; a relative ``sqlite:///`` path is resolved against the
        working directory when the tracker is built.
    :param experiment: experiment name, created on first use.
    :param artifact_location: artifact root when the experiment is created; default
        ``mlartifacts/`` beside a SQLite store, the server's choice for a tracking server.
    :param run_name: template with ``{question}`` (its first 60 characters), ``{ontology}``,
        ``{run_id}``, ``{date}``; what differs between runs first, so a cut name still tells
        runs apart.
    :param tags: extra tags on every run.
    :param flush_timeout: seconds ``flush`` (and the exit) waits for the data to reach MLflow;
        creating a new SQLite store is not counted.
    :param log_traces: write each run's spans as an MLflow trace linked to its MLflow run, in the
        same store, from the worker (:mod:`rlm_plugins.mlflow.traces`).
    :param spool_dir: where the events of runs that did not reach MLflow are kept.
    """

    name = "mlflow"

    @staticmethod
    @hookimpl
    def register_commands(commands: CommandAdder) -> None:
        """``rlm mlflow experiments|search|export|close``."""
        from rlm_plugins.mlflow.cli import register

        register(commands)

    def __init__(
        self,
        tracking_uri: str = DEFAULT_TRACKING_URI,
        experiment: str = DEFAULT_EXPERIMENT,
        artifact_location: str | None = None,
        run_name: str = "{question} · {ontology} · {run_id}",
        tags: Mapping[str, str] | None = None,
        flush_timeout: float = 10.0,
        log_traces: bool = True,
        spool_dir: str = "mlflow-spool",
    ) -> None:
        cwd = Path.cwd()
        quiet_mlflow_logging()
        self.tracking_uri = resolve_tracking_uri(tracking_uri, cwd)
        _check_str("experiment", experiment)
        _check_template("run_name", run_name)
        _check_str("spool_dir", spool_dir)
        extra_tags = _check_tags(tags or {})
        if isinstance(flush_timeout, bool) or not isinstance(flush_timeout, int | float):
            raise ValueError(f"mlflow: flush_timeout must be a number, got {flush_timeout!r}")
        if not flush_timeout > 0:
            raise ValueError(f"mlflow: flush_timeout must be positive, got {flush_timeout!r}")
        if not isinstance(log_traces, bool):
            raise ValueError(f"mlflow: log_traces must be true or false, got {log_traces!r}")
        if artifact_location is not None:
            _check_str("artifact_location", artifact_location)
            artifact_location = resolve_artifact_location(artifact_location, cwd)
        self.experiment = experiment
        self.flush_timeout = float(flush_timeout)
        self._run_name = run_name
        self._cwd = cwd
        self._spool_dir = cwd / Path(spool_dir).expanduser()
        self._artifact_location = artifact_location or artifact_location_for(self.tracking_uri)
        self._tags = tuple(extra_tags.items())
        self._log_traces = log_traces
        self._channel_: Channel | None = None
        self._evals = EvalRuns(self.tracking_uri, experiment, self._artifact_location)
        self._runs: dict[str, _RunState] = {}
        self._ended: set[str] = set()
        self._waited = 0.0
        self._lock = threading.Lock()

    @property
    def _channel(self) -> Channel:
        """The store's shared worker, found (or started) on first use, not when constructed."""
        if self._channel_ is None:
            self._channel_ = channel_for(
                tracking_uri=self.tracking_uri,
                experiment=self.experiment,
                artifact_location=self._artifact_location,
                spool_dir=self._spool_dir,
                flush_timeout=self.flush_timeout,
            )
        return self._channel_

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until what this tracker handed over reached MLflow or was spooled (at most
        ``timeout`` seconds, default ``flush_timeout``; creating the store is not counted).
        True when nothing is left on its way."""
        if self._channel_ is None:
            return True
        wait = self.flush_timeout if timeout is None else timeout
        self._waited = max(self._waited, wait)
        return self._channel_.flush(wait)

    def close(self, timeout: float | None = None) -> bool:
        """Flush, then spool what is still on its way, saying it was not delivered within the
        time. The shared worker stays for other trackers of the store (it ends at exit). True
        when nothing was left behind."""
        if self._channel_ is None:
            return True
        flushed = self.flush(timeout)
        if not flushed:
            # Said as it is: the longest this tracker was given (a preceding flush counts).
            self._channel_.give_up(self._ended, f"not delivered within {self._waited:g} s")
        return flushed

    @hookimpl
    def run_location(self, run: RunInfo) -> RunLocation | None:
        """The MLflow run (a UI link for a server); for a run that did not (yet) reach MLflow,
        the spool file to replay, or that it is still on its way, with ``delivered=False``."""
        if self._channel_ is None:
            return None
        outcome = self._channel_.outcomes.get(run.run_id)
        if isinstance(outcome, Spooled):
            return RunLocation(
                f"{outcome.path} (not in MLflow: {outcome.reason}; "
                f"send it with: rlm replay {outcome.path} --to mlflow)",
                delivered=False,
            )
        if outcome is None:
            if self._channel_.pending(run.run_id):
                return RunLocation(
                    f"not delivered to {self.tracking_uri} yet (still on its way; what is not "
                    f"sent by exit goes to {self._spool_dir})",
                    delivered=False,
                )
            return None
        mlflow_id = outcome.mlflow_id
        if is_server(self.tracking_uri):
            experiment_id = self._channel_.writer.experiment_id
            base = self.tracking_uri.rstrip("/")
            return RunLocation(f"{base}/#/experiments/{experiment_id}/runs/{mlflow_id}")
        return RunLocation(f"{self.tracking_uri} (experiment {self.experiment!r}, run {mlflow_id})")

    @hookimpl
    def run_start(self, run: RunInfo) -> None:
        self._state(run)

    @hookimpl
    def setup(self, run: RunInfo, setup: Setup) -> None:
        """Kept for the run log this tracker uploads (event for event what the run emitted)."""
        self._state(run).events.append(setup)

    @hookimpl
    def memory_retrieved(self, run: RunInfo, retrieval: MemoryRetrieval) -> None:
        self._state(run).events.append(retrieval)
        at = millis(retrieval.timestamp)
        self._values(
            run,
            ("memory.retrieved", len(retrieval.items), at, 0),
            ("memory.retrieval_s", retrieval.duration, at, 0),
        )

    @hookimpl
    def iteration(self, run: RunInfo, step: Iteration) -> None:
        state = self._state(run)
        state.events.append(step)
        at, index = millis(step.timestamp), step.index
        self._values(
            run,
            ("step.llm_calls", state.step_llm_calls, at, index),
            ("step.prompt_tokens", state.step_prompt_tokens, at, index),
            ("step.completion_tokens", state.step_completion_tokens, at, index),
            ("step.tool_calls", state.step_tool_calls, at, index),
            ("step.duration_s", step.duration, at, index),
            ("step.output_chars", len(step.output), at, index),
            ("step.code_chars", len(step.code), at, index),
            ("step.error", step.error is not None, at, index),
        )
        state.step_llm_calls = state.step_prompt_tokens = state.step_completion_tokens = 0
        state.step_tool_calls = 0

    @hookimpl
    def llm_call(self, run: RunInfo, call: LLMCall) -> None:
        state = self._state(run)
        state.events.append(call)
        state.step_llm_calls += 1
        state.step_prompt_tokens += call.prompt_tokens or 0
        state.step_completion_tokens += call.completion_tokens or 0
        if call.cost is not None:
            state.cost = (state.cost or 0.0) + call.cost

    @hookimpl
    def tool_call(self, run: RunInfo, call: ToolCall) -> None:
        state = self._state(run)
        state.events.append(call)
        state.step_tool_calls += 1
        state.tool_calls += 1

    @hookimpl
    def judgment(self, run: RunInfo, verdict: Judgment) -> None:
        self._state(run).events.append(verdict)
        at = millis(verdict.timestamp)
        points: list[MetricPoint] = []
        if verdict.success is not None:
            points.append(("judge.success", float(verdict.success), at, 0))
        if verdict.confidence is not None:
            points.append(("judge.confidence", verdict.confidence, at, 0))
        outcome = {True: "success", False: "failure", None: "unknown"}[verdict.success]
        self._submit(Values(run.run_id, tuple(points), (("rlm.judgment", outcome),)))

    @hookimpl
    def graded(self, run: RunInfo, grade: Grade) -> None:
        self._state(run).events.append(grade)
        at = millis(grade.timestamp)
        points: list[MetricPoint] = [
            ("eval.success", float(grade.success), at, 0),
            ("eval.score", grade.score, at, 0),
        ]
        tags = (("rlm.eval_grade", "success" if grade.success else "failure"),)
        self._submit(Values(run.run_id, tuple(points), tags))

    @hookimpl
    def eval_start(self, evaluation: EvalInfo) -> None:
        """Open the eval's parent run now, so every run of the eval nests under it."""
        self._evals.start(evaluation)

    @hookimpl
    def eval_end(self, evaluation: EvalInfo, summary: EvalSummary) -> None:
        self._evals.end(evaluation, summary)

    @hookimpl
    def memory_extracted(self, run: RunInfo, extraction: MemoryExtraction) -> None:
        self._state(run).events.append(extraction)
        at = millis(extraction.timestamp)
        duplicates = sum(item.duplicate for item in extraction.items)
        self._values(
            run,
            ("memory.extracted", len(extraction.items), at, 0),
            ("memory.duplicates", duplicates, at, 0),
        )

    @hookimpl
    def metrics(self, run: RunInfo, values: Mapping[str, float], step: int | None) -> None:
        """Published numbers, names as given. The hook carries no timestamp, so the points get
        the run's start time: a replay then reproduces them exactly."""
        state = self._state(run)
        state.events.append(MetricsPoint(run.run_id, dict(values), step, utc_now()))
        at, index = millis(run.timestamp), step or 0
        self._values(run, *((name, value, at, index) for name, value in values.items()))

    @hookimpl
    def run_end(self, run: RunInfo, result: RunResult) -> None:
        state = self._state(run)
        state.events.append(result)
        at = millis(result.timestamp)
        totals: list[MetricPoint] = [
            ("iterations", result.iterations, at, 0),
            ("llm_calls", result.llm_calls, at, 0),
            ("prompt_tokens", result.prompt_tokens, at, 0),
            ("completion_tokens", result.completion_tokens, at, 0),
            ("tokens", result.tokens, at, 0),
            ("tool_calls", state.tool_calls, at, 0),
            ("duration_s", result.duration, at, 0),
            ("converged", float(result.converged), at, 0),
        ]
        if state.cost is not None:
            totals.append(("cost_usd", state.cost, at, 0))
        tags = [("rlm.converged", str(result.converged).lower())]
        if result.error:
            tags.append(("rlm.error", result.error))
        records: list[Record] = [Values(run.run_id, _points(totals), tuple(tags))]
        if result.answer is not None:
            records.append(Artifact(run.run_id, "answer.md", result.answer))
        if result.sparql:
            records.append(Artifact(run.run_id, "query.sparql", result.sparql))
        if result.evidence is not None:
            evidence = json.dumps(result.evidence, indent=2, ensure_ascii=False)
            records.append(Artifact(run.run_id, "evidence.json", evidence))
        try:
            for record in records:
                self._submit(record)
            description = describe(run.question, result.answer)
            events = tuple(state.events)
            self._submit(End(run, _status(result), at, description, events, self._log_traces))
        finally:
            with self._lock:
                self._runs.pop(run.run_id, None)
                self._ended.add(run.run_id)

    def _state(self, run: RunInfo) -> _RunState:
        """The run's state; a run first seen now (tracker enabled late) is started first.

        A hook after the run's ``run_end`` (a plugin publishing late) gets a detached state:
        its values go to the MLflow run as it is, nothing is started again.
        """
        state = self._runs.get(run.run_id)
        if state is not None:
            return state
        with self._lock:
            state = self._runs.get(run.run_id)
            if state is not None:
                return state
            if run.run_id in self._ended:
                return _RunState(run, [])
            state = _RunState(run, [run])
            self._runs[run.run_id] = state
            self._submit(Start(run, _fill(self._run_name, run), self._tags))
        return state

    def _values(self, run: RunInfo, *points: tuple[str, float | int | bool, int, int]) -> None:
        self._submit(Values(run.run_id, _points(points)))

    def _submit(self, record: Record) -> None:
        self._channel.submit(record)


def _points(points: Any) -> tuple[MetricPoint, ...]:
    return tuple((key, float(value), at, step) for key, value, at, step in points)


# How run_end's error starts when the run was stopped from outside: Ctrl-C, or SIGTERM (which
# ends a run like Ctrl-C, with its own KeyboardInterrupt subclass).
_INTERRUPTED = ("KeyboardInterrupt", "Terminated")


def _status(result: RunResult) -> str:
    """FINISHED only for a converged run; an interrupted or terminated run is KILLED, any
    other FAILED."""
    if result.converged:
        return "FINISHED"
    if result.error and result.error.startswith(_INTERRUPTED):
        return "KILLED"
    return "FAILED"


def _fill(template: str, run: RunInfo) -> str:
    question = " ".join(run.question.split())
    if len(question) > _QUESTION_CHARS:
        question = question[: _QUESTION_CHARS - 1] + "…"
    return template.format(
        run_id=run.run_id,
        date=run.started_at.astimezone(UTC).strftime("%Y-%m-%d"),
        ontology=run.ontology.name,
        question=question,
    )


def _check_str(option: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"mlflow: {option} must be a non-empty string, got {value!r}")


def _check_template(option: str, template: object) -> None:
    _check_str(option, template)
    assert isinstance(template, str)
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"mlflow: {option} template {template!r}: {exc}") from None
    for _, name, spec, conversion in fields:
        if name is not None and (name not in _PLACEHOLDERS or spec or conversion):
            raise ValueError(
                f"mlflow: {option} template {template!r}: unknown placeholder {{{name}}} "
                f"(use {', '.join('{' + p + '}' for p in _PLACEHOLDERS)})"
            )


def _check_tags(tags: object) -> dict[str, str]:
    if not isinstance(tags, Mapping) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in tags.items()
    ):
        raise ValueError(f"mlflow: tags must be a table of strings to strings, got {tags!r}")
    return dict(tags)
