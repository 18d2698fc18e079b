"""The whole plugin contract, project name ``rlm``: every hook, and what else a plugin may have.

*Event hooks* (:data:`EVENT_HOOKS`) are notifications: return values are ignored. Each receives
the run it belongs to (:class:`~rlm_core.events.RunInfo`) plus one payload. Two more
notifications belong to no run: :func:`eval_start` and :func:`eval_end` (an ``rlm eval``
experiment as a whole). Three hooks return something: :func:`run_metrics` (derived numbers,
published before trackers close a run), :func:`run_location` (where a plugin put a run) and
:func:`register_commands` (``rlm`` subcommands). An implementation may accept any subset of a
hook's arguments, so adding an argument to a hook later never breaks a plugin.

Implementations are called on the engine thread: do no I/O there. A tracker with a slow backend
hands events to :class:`rlm_core.delivery.BackgroundDelivery` and returns.

Every payload is a span of the run's trace (``span_id``, ``parent_span_id``, ``started_at``,
``timestamp``; see :class:`~rlm_core.events.Event`). The order is part of the contract: a hook is
called when its operation ends, so a child (an LM call of a step) arrives before its parent (the
step's ``iteration``), and the parent's ``span_id`` is fixed before its children start.

Besides hooks, a plugin may have the attributes of :class:`PluginAttributes`; nothing else of a
plugin is read by rlm-core.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

import pluggy

from rlm_core.events import (
    EvalInfo,
    EvalSummary,
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
)

PROJECT_NAME = "rlm"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

EVENT_HOOKS = (
    "run_start",
    "setup",
    "memory_retrieved",
    "iteration",
    "llm_call",
    "tool_call",
    "judgment",
    "memory_extracted",
    "graded",
    "metrics",
    "run_end",
)
"""The notification hooks of a run, in the order a run first emits them."""


class PluginAttributes(Protocol):
    """The optional attributes of a plugin; rlm-core reads no other.

    Every one is optional: a plugin is any object (or module) with :func:`hookimpl` methods.

    * ``name``: the name it is registered under when handed over directly
      (``run(plugins=[...])``); entry-point plugins are registered under the entry point's name.
    * ``rlm_dispatch``: ``"inline"`` (default: hooks run on the engine thread) or ``"thread"``
      (hook calls are queued to a worker thread of its own, with ``hook_timeout`` at run end);
      ``[plugins.NAME] dispatch`` overrides it.
    * ``flush(timeout)``: wait at most ``timeout`` seconds for everything handed to the plugin so
      far to be delivered (or definitively fail); True when it was, False when time ran out.
    * ``close(timeout)``: like ``flush``, then release resources; called at process exit.

    A plugin class is instantiated with its ``[plugins.NAME]`` section as keyword arguments and
    must do no I/O in its constructor (``rlm plugins`` constructs every plugin). A plugin whose
    backend is missing raises :class:`ImportError` when imported, with a message that says how to
    install it from a path, never by its name from the index (:mod:`rlm_core.install_hints`
    writes such hints); rlm-core shows that message as the reason the plugin is unavailable. A
    plugin with nothing to do until it is configured (a tracker without an endpoint) raises
    :class:`rlm_core.errors.PluginNotConfiguredError` from its constructor: it is then disabled
    with that message as the reason, and asking for it by name is a usage error.
    """

    name: str
    rlm_dispatch: Literal["inline", "thread"]

    def flush(self, timeout: float) -> bool:
        """Deliver what is buffered within ``timeout`` seconds; True when all of it was."""
        ...

    def close(self, timeout: float) -> bool:
        """Flush within ``timeout`` seconds, then release resources."""
        ...


@dataclasses.dataclass(frozen=True)
class RunLocation:
    """Where a plugin records a run, as :func:`run_location` returns it.

    :param where: for people: a path, a URL, or a sentence (``rlm run`` prints it).
    :param run_log: the file, when the run goes to a run log (:mod:`rlm_core.runlog` format):
        ``rlm replay`` refuses to append a run to a log that already holds it.
    :param delivered: False when some of the run's events did not reach the plugin's backend
        (asked after a flush); ``where`` then says where they are kept. ``rlm run`` and ``rlm
        replay`` exit with 1 for it.
    """

    where: str
    run_log: Path | None = None
    delivered: bool = True


class CommandAdder(Protocol):
    """What :func:`register_commands` adds subcommands to: an argparse subparsers action."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        """A new subcommand ``name``; ``kwargs`` as for :class:`argparse.ArgumentParser`."""
        ...


@hookspec
def run_start(run: RunInfo) -> None:
    """A run is about to start: called once, before the first LM call.

    :param run: the question, the ontology (name, path, triples, format), the models, the
        limits, the user's tags; the run's span: ``span_id`` (the same in ``run_end``),
        ``trace_id``, ``started_at`` (the true start, before the ontology was loaded),
        ``parent_span_id`` (None unless the run joined a caller's trace or is nested),
        ``depth`` (0 for a top-level run, +1 per nesting) and, for nested runs,
        ``parent_run_id``.
    """


@hookspec
def setup(run: RunInfo, setup: Setup) -> None:
    """The run's setup, before the first LM call: called once, right after ``run_start``.

    Setup happens before ``run_start`` (a run whose ontology does not load never reaches its
    LM), so this span starts with the run and ends when it is emitted.

    :param run: the run.
    :param setup: the ontology (name, path, triples, format), how long loading it, building
        its search index and its sense card took, the sense card's length, and the error when
        the ontology could not be loaded (the run then ends without an LM call).
    """


@hookspec
def memory_retrieved(run: RunInfo, retrieval: MemoryRetrieval) -> None:
    """Memories were fetched for the question, before the first LM call.

    :param run: the run.
    :param retrieval: the query, ``k``, the items (memory_id, title, rank, score) and how long
        retrieval took. ``items`` is empty when nothing matched.
    """


@hookspec
def iteration(run: RunInfo, step: Iteration) -> None:
    """One REPL step of the RLM loop has finished.

    :param run: the run.
    :param step: the step's index (from 0), the model's reasoning, the code it wrote, the output
        or the error, the step's duration and the sub-LM calls used so far.
    """


@hookspec
def llm_call(run: RunInfo, call: LLMCall) -> None:
    """An LM call has returned (or failed), by the root model or a sub-LM.

    :param run: the run.
    :param call: the model, the role ("root", "sub", "judge", "extract"), ``depth`` (the run's
        depth, +1 for a sub-LM), token counts when the provider reports them (also
        ``cached_tokens`` and ``reasoning_tokens``), latency, cost when known, the error if the
        call failed; ``messages`` (role and text sent) and ``output`` (text returned),
        redacted, empty and None when ``capture_content`` is off; ``provider``,
        ``response_model``, ``finish_reason``, ``response_id`` and ``request_params`` where
        the provider reports them. Its parent: the step's iteration (root and sub-LM calls of
        a step), the judgment or the extraction.
    """


@hookspec
def tool_call(run: RunInfo, call: ToolCall) -> None:
    """An ontology tool called from LM-written code has returned (or failed).

    :param run: the run.
    :param call: the tool name, its arguments, the size and a preview of its result, duration and
        the error if it failed. Its parent is the step's iteration.
    """


@hookspec
def judgment(run: RunInfo, verdict: Judgment) -> None:
    """The run's trajectory has been judged.

    :param run: the run.
    :param verdict: success (None when the judge's answer was unusable), the reason and the
        judge's confidence; ``started_at`` to ``timestamp`` is how long judging took (the
        judge's LM call is its child).
    """


@hookspec
def graded(run: RunInfo, grade: Grade) -> None:
    """An eval graded the run's answer against its task; emitted before ``run_end``.

    Every run of ``rlm eval run`` is graded, with memory on or off, so trackers can compare
    success across conditions; plain ``rlm run`` runs are not graded.

    :param run: the run; its tags hold ``eval.id``, ``eval.task``, ``eval.condition`` and
        ``eval.trial``.
    :param grade: the task id, ``success`` (the run ended without error and every check passed),
        ``score`` (the mean of the checks' scores, 0..1) and ``checks``, one per grader
        (``expected_sparql``, ``answer_contains``, ``rubric``) with its verdict and detail.
    """


@hookspec
def memory_extracted(run: RunInfo, extraction: MemoryExtraction) -> None:
    """New memories were extracted from the run and stored.

    :param run: the run.
    :param extraction: the items (memory_id, title, and whether it was a duplicate);
        ``started_at`` to ``timestamp`` is how long extraction took (the extractor's LM call is
        its child).
    """


@hookspec
def metrics(run: RunInfo, values: Mapping[str, float], step: int | None) -> None:
    """A plugin published derived numbers for the run.

    :param run: the run.
    :param values: metric name to value.
    :param step: the iteration the numbers belong to, or None for run-level numbers.
    """


@hookspec
def run_end(run: RunInfo, result: RunResult) -> None:
    """The run is over. Always called, also when the run failed (like ``finally``).

    :param run: the run.
    :param result: the answer, SPARQL and evidence, whether the run converged, iteration, LM-call
        and token counts, total ``cost`` when the provider priced the calls, duration (from the
        true start, ``run.started_at``), and the error when the run failed. It closes the run's
        span: its ``span_id`` is ``run.span_id``.
    """


@hookspec
def eval_start(evaluation: EvalInfo) -> None:
    """An eval is about to start its runs (called on the process that runs ``rlm eval run``).

    A tracker can open a parent record here, under which it nests every run tagged with the
    same ``eval.id``.

    :param evaluation: the eval id, the task file's path and SHA-256, the task ids, the
        conditions and the number of trials.
    """


@hookspec
def eval_end(evaluation: EvalInfo, summary: EvalSummary) -> None:
    """An eval is over (also when it was interrupted); called once after its last run.

    :param evaluation: the eval, as passed to ``eval_start``.
    :param summary: how many runs ended and failed, whether it was interrupted, and aggregate
        metrics per condition (``CONDITION.success_rate``, ``CONDITION.tokens_mean``...).
    """


@hookspec
def run_metrics(run: RunInfo, result: RunResult) -> Mapping[str, float] | None:
    """Derived numbers for a run that is over, published before trackers close it.

    The engine calls this once per run, after the run's last event and before ``run_end``, and
    emits every mapping returned as ``metrics(run, values, step=None)`` to all plugins, so each
    tracker records them without knowing who computed them. Not called when a run log is
    replayed: the log already holds the ``metrics`` published the first time.

    :param run: the run.
    :param result: what ``run_end`` is about to receive.
    :return: metric name to value, or None for nothing.
    """


@hookspec
def run_location(run: RunInfo) -> RunLocation | None:
    """Where this plugin records (or recorded) the run; every plugin's answer is collected.

    ``rlm run`` prints the answers after the run; ``rlm replay`` asks before replaying, to refuse
    appending a run to a log that already holds it.

    :param run: the run.
    :return: the location, or None when the plugin does not record this run.
    """


@hookspec
def register_commands(commands: CommandAdder, groups: Mapping[str, CommandAdder]) -> None:
    """Add ``rlm`` subcommands. Called on the entry point's object (the class, or the module)
    when the command line is built: no plugin is constructed, so on a class make it a
    ``@staticmethod``, and import what the commands need inside their handlers (``rlm --help``
    calls this hook of every installed plugin).

    A subcommand sets ``handler`` with ``parser.set_defaults(handler=FUNCTION)``; the function
    receives the parsed :class:`argparse.Namespace` and returns the exit code (0 ok, 1 failed,
    2 usage). Raise :class:`rlm_core.errors.RLMError` for a one-line error with exit code 2.

    :param commands: the subcommands of ``rlm``: ``commands.add_parser("NAME", help=...)``.
    :param groups: rlm-core's command groups that take subcommands from plugins, by name
        (``groups["memory"]`` adds ``rlm memory NAME``).
    """


def _payload_arguments() -> dict[str, str]:
    """Event hook name -> the keyword its one payload is passed as (``iteration`` -> ``step``).

    Read from the specifications above, so emitting and replaying code cannot drift from them.
    ``run_start`` (the run is its payload), ``metrics`` (values and step) and the eval hooks
    (no run) are not in it.
    """
    found = {}
    for name in EVENT_HOOKS:
        others = [arg for arg in inspect.signature(globals()[name]).parameters if arg != "run"]
        if len(others) == 1:
            found[name] = others[0]
    return found


PAYLOAD_ARGUMENTS: Mapping[str, str] = _payload_arguments()
