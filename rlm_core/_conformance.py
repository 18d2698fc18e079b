"""A conformance kit for plugin authors: ``check_plugin(plugin)`` before you ship.

The kit drives a plugin through every hook on a strict plugin manager, with the payloads of two
real scripted runs of the bundled demo plus the failure paths a run can take (a failed run, no
memories, an unusable judgment, metrics with and without a step, a nested run), and checks what
a tracker must get right: it raises nothing, it does not hold up the engine thread, and whatever
it buffers it flushes within a bounded time.

Flush convention: a plugin that buffers (for instance through
:class:`rlm_core.delivery.BackgroundDelivery`) exposes ``flush(timeout: float) -> bool`` and/or
``close(timeout: float) -> bool``, returning True when everything handed to it was delivered (or
definitively failed) and False when ``timeout`` seconds ran out first. The kit calls ``flush``,
or ``close`` when there is no ``flush``.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import gc
import secrets
import statistics
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from rlm_core._demo import DEMO_CASSETTE, DEMO_ONTOLOGY, DEMO_QUESTION
from rlm_core._spans import new_span_id, new_trace_id
from rlm_core._traces import RunBuilder, trace_problems
from rlm_core.config import MemorySettings, Settings
from rlm_core.engine import run as run_engine
from rlm_core.events import (
    Event,
    RunInfo,
    utc_now,
)
from rlm_core.hookspecs import EVENT_HOOKS, PAYLOAD_ARGUMENTS, RunLocation
from rlm_core.plugins import PluginManager

__all__ = ["SPIKE_FACTOR", "Check", "ConformanceReport", "HookTiming", "check_plugin"]

SPIKE_FACTOR = 20
"""A single hook call may take up to this many times the budget (a one-off fsync or a thread
switch); the typical (median) call of each hook must stay within the budget itself."""

_ROUNDS = 3  # every scenario runs this often, so each hook's median has at least three calls
_FLUSH_GRACE = 1.0  # seconds past its own timeout before a flush counts as hanging

E = TypeVar("E", bound=Event)


@dataclasses.dataclass(frozen=True)
class Check:
    """One check of the report: its name, whether it passed, and what was seen."""

    name: str
    passed: bool
    details: str

    def __str__(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.details}"


@dataclasses.dataclass(frozen=True)
class HookTiming:
    """How long the plugin's implementation of one hook took, over every call the kit made."""

    hook: str
    calls: int
    median_ms: float
    max_ms: float


@dataclasses.dataclass(frozen=True)
class ConformanceReport:
    """The outcome of :func:`check_plugin`; ``ok`` when every check passed."""

    plugin: str
    hooks: tuple[str, ...]
    checks: tuple[Check, ...]
    timings: tuple[HookTiming, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        """The checks that failed."""
        return tuple(check for check in self.checks if not check.passed)

    @property
    def slowest(self) -> HookTiming | None:
        """The hook with the slowest single call, or None when no hook was called."""
        return max(self.timings, key=lambda timing: timing.max_ms, default=None)

    def summary(self) -> str:
        """Every check on its own line, failures first, under a one-line verdict."""
        total = len(self.checks)
        verdict = (
            f"all {total} checks passed"
            if self.ok
            else f"{len(self.failures)} of {total} checks FAILED"
        )
        ordered = sorted(self.checks, key=lambda check: check.passed)
        lines = [f"rlm plugin conformance of {self.plugin!r}: {verdict}"]
        lines.extend(f"  {check}" for check in ordered)
        return "\n".join(lines)

    def raise_for_failures(self) -> None:
        """Raise AssertionError with :meth:`summary` when a check failed (for use in tests)."""
        if not self.ok:
            raise AssertionError(self.summary())

    def __str__(self) -> str:
        return self.summary()


def check_plugin(
    plugin: object,
    *,
    budget_ms: float = 5.0,
    flush_timeout: float = 10.0,
    run_end_budget_ms: float | None = None,
) -> ConformanceReport:
    """Run ``plugin`` (an instance or a module) through every hook and report how it behaved.

    :param budget_ms: how long one hook call may hold up the engine thread. Each hook's median
        call must stay within it and no single call may exceed :data:`SPIKE_FACTOR` times it.
        Hooks are called inline even for a plugin with ``rlm_dispatch = "thread"``.
    :param flush_timeout: passed to the plugin's ``flush(timeout)`` (or ``close(timeout)``),
        which must return True within that time.
    :param run_end_budget_ms: the budget of ``run_end`` alone (default: ``budget_ms``). A tracker
        that waits, bounded, for its backend at the end of a run (flushing within a timeout of
        its own) passes that bound here.
    """
    if budget_ms <= 0 or flush_timeout <= 0:
        raise ValueError("budget_ms and flush_timeout must be positive")
    manager = PluginManager(strict=True)
    try:
        # Inline, whatever the plugin's rlm_dispatch says: the kit measures the plugin's own
        # code on the calling thread, and its exceptions must reach the kit.
        name = manager.register(plugin, dispatch="inline")
    except Exception as exc:
        name = getattr(plugin, "name", None) or type(plugin).__name__
        failed = Check(
            "registers with a strict plugin manager", False, f"{type(exc).__name__}: {exc}"
        )
        return ConformanceReport(plugin=str(name), hooks=(), checks=(failed,))
    hooks = manager.statuses()[0].hooks
    checks = [Check("registers with a strict plugin manager", True, f"registered as {name!r}")]
    checks.append(_implements_hooks(hooks))
    durations: dict[str, list[float]] = collections.defaultdict(list)
    errors: dict[str, _Errors] = {}
    malformed: list[str] = []
    with _gc_paused():
        for round_number in range(_ROUNDS):
            for scenario, steps in _scenarios(round_number):
                malformed.extend(f"{scenario}: {problem}" for problem in _trace_of(steps))
                seen = errors.setdefault(scenario, _Errors())
                for hook, kwargs in _with_answering_hooks(steps):
                    elapsed, error = _call(manager, hook, kwargs)
                    if hook in hooks:
                        durations[hook].append(elapsed)
                        seen.record(hook, error)
    checks.append(
        Check(
            "every scenario is a well-formed trace (rlm_core.testing.check_trace)",
            not malformed,
            "; ".join(malformed[:3]) or "span parents, time windows and order all hold",
        )
    )
    checks.extend(
        Check(f"scenario {scenario!r} raises nothing", seen.clean, seen.describe())
        for scenario, seen in errors.items()
    )
    timings = tuple(
        HookTiming(hook, len(values), statistics.median(values), max(values))
        for hook, values in durations.items()
    )
    if run_end_budget_ms is None:
        checks.append(_within_budget(timings, budget_ms))
    else:
        others = tuple(timing for timing in timings if timing.hook != "run_end")
        ends = tuple(timing for timing in timings if timing.hook == "run_end")
        checks.append(_within_budget(others, budget_ms))
        checks.append(_within_budget(ends, run_end_budget_ms, "run_end calls stay within"))
    checks.append(_flushes(plugin, flush_timeout))
    return ConformanceReport(plugin=name, hooks=hooks, checks=tuple(checks), timings=timings)


_Step = tuple[str, dict[str, Any]]


class _Errors:
    """Exceptions one scenario raised, per hook, over every round."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()
        self.first: dict[str, str] = {}

    @property
    def clean(self) -> bool:
        return not self.failed

    def record(self, hook: str, error: Exception | None) -> None:
        self.calls[hook] += 1
        if error is not None:
            self.failed[hook] += 1
            self.first.setdefault(hook, _describe_exception(error))

    def describe(self) -> str:
        if not self.calls:
            return "implements none of the hooks this scenario calls"
        if self.clean:
            return f"{sum(self.calls.values())} calls to {', '.join(sorted(self.calls))}"
        return "; ".join(
            f"{hook} raised {self.first[hook]} ({self.failed[hook]} of {self.calls[hook]} calls)"
            for hook in sorted(self.failed)
        )


def _describe_exception(error: Exception) -> str:
    """``Type: message at file:line`` of the innermost frame, the plugin's own code."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(error).__name__}: {error}{where}"


def _with_answering_hooks(steps: list[_Step]) -> Iterator[_Step]:
    """The steps with the hooks the engine and the CLI call around ``run_end``: ``run_metrics``
    before it, ``run_location`` after it."""
    for hook, kwargs in steps:
        if hook == "run_end":
            yield "run_metrics", kwargs
        yield hook, kwargs
        if hook == "run_end":
            yield "run_location", {"run": kwargs["run"]}


def _call(
    manager: PluginManager, hook: str, kwargs: Mapping[str, Any]
) -> tuple[float, Exception | None]:
    error: Exception | None = None
    started = time.perf_counter()
    try:
        if hook in EVENT_HOOKS:
            getattr(manager.hook, hook)(**kwargs)
        else:
            for _, answer in manager.collect(hook, **kwargs):
                _check_answer(hook, answer)
    except Exception as exc:
        error = exc
    return (time.perf_counter() - started) * 1000, error


def _check_answer(hook: str, answer: object) -> None:
    """A ``run_metrics`` answer maps names to numbers; a ``run_location`` one is a RunLocation."""
    if hook == "run_metrics":
        if not isinstance(answer, Mapping) or not all(
            isinstance(value, int | float) and not isinstance(value, bool)
            for value in answer.values()
        ):
            raise TypeError(f"run_metrics returned {answer!r}, not a mapping of names to numbers")
    elif hook == "run_location" and not isinstance(answer, RunLocation):
        raise TypeError(f"run_location returned {answer!r}, not a RunLocation")


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Keep the garbage collector out of the measurements: its pauses are not the plugin's."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _implements_hooks(hooks: tuple[str, ...]) -> Check:
    name = "implements at least one hook"
    if not hooks:
        return Check(name, False, "no method is marked @rlm_core.hookimpl, so no hook reaches it")
    missing = [hook for hook in EVENT_HOOKS if hook not in hooks]
    skipped = f"; the other {len(missing)} hooks are simply not called on it" if missing else ""
    return Check(name, True, f"implements {', '.join(hooks)}{skipped}")


def _within_budget(
    timings: tuple[HookTiming, ...], budget_ms: float, label: str = "hook calls stay within"
) -> Check:
    name = f"{label} {budget_ms:g} ms"
    if not timings:
        return Check(name, True, "no hook was called")
    spike_ms = budget_ms * SPIKE_FACTOR
    slow = [t for t in timings if t.median_ms > budget_ms or t.max_ms > spike_ms]
    slowest = max(timings, key=lambda timing: timing.max_ms)
    if not slow:
        return Check(
            name,
            True,
            f"slowest call: {slowest.hook} {slowest.max_ms:.2f} ms "
            f"(median {slowest.median_ms:.2f} ms over {slowest.calls} calls)",
        )
    problems = "; ".join(
        f"{t.hook}: median {t.median_ms:.1f} ms, slowest {t.max_ms:.1f} ms over {t.calls} calls"
        for t in sorted(slow, key=lambda timing: -timing.max_ms)
    )
    return Check(
        name,
        False,
        f"{problems} (budget: median {budget_ms:g} ms, any call {spike_ms:g} ms); hooks run on "
        "the engine thread: hand slow work to rlm_core.delivery.BackgroundDelivery",
    )


def _flushes(plugin: object, timeout: float) -> Check:
    method = next(
        (name for name in ("flush", "close") if callable(getattr(plugin, name, None))), None
    )
    if method is None:
        return Check(
            "flushes in time", True, "has no flush(timeout) or close(timeout): buffers nothing"
        )
    name = f"{method}({timeout:g}) returns True in time"
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(getattr(plugin, method)(timeout))
        except Exception as exc:
            outcome.append(exc)

    started = time.monotonic()
    worker = threading.Thread(target=call, name="rlm-conformance-flush", daemon=True)
    worker.start()
    worker.join(timeout + _FLUSH_GRACE)
    elapsed = time.monotonic() - started
    if not outcome:
        return Check(
            name,
            False,
            f"still running after {elapsed:.1f} s: it must give up when its timeout is up",
        )
    result = outcome[0]
    if isinstance(result, Exception):
        return Check(name, False, f"raised {_describe_exception(result)}")
    if result is False:
        return Check(
            name, False, f"returned False after {elapsed:.2f} s: not everything was delivered"
        )
    if result is not True:
        return Check(
            name,
            False,
            f"returned {result!r}; the convention is True when everything was delivered "
            "(or failed for good), False when the timeout ran out first",
        )
    return Check(name, True, f"returned True after {elapsed:.2f} s")


_Recorded = tuple[tuple[str, dict[str, Any]], ...]


@functools.cache
def _scripted_runs() -> tuple[_Recorded, _Recorded]:
    """The hook calls of two scripted runs of the bundled demo, once per process: the first
    with empty memory, the second retrieving what the first stored.

    The runs get their own plugin manager (no entry points, no ambient plugins, so a test's
    ``rlm_events`` does not see them) and a scratch directory for what they write.
    """
    # Imported here: rlm_core.testing may re-export this module's API.
    from rlm_core.testing import RecordingPlugin

    recorded = []
    with tempfile.TemporaryDirectory(prefix="rlm-conformance-") as scratch:
        settings = Settings(
            model=f"scripted:{DEMO_CASSETTE}",
            memory=MemorySettings(path=str(Path(scratch) / "memory.db")),
        )
        for _ in range(2):
            recorder = RecordingPlugin()
            manager = PluginManager(strict=True)
            manager.register(recorder)
            run_engine(DEMO_QUESTION, DEMO_ONTOLOGY, config=settings, manager=manager)
            recorded.append(tuple((call.hook, dict(call.kwargs)) for call in recorder.calls))
    return recorded[0], recorded[1]


def _scenarios(round_number: int) -> Iterator[tuple[str, list[_Step]]]:
    """Every scenario with fresh run ids and span ids, on a timeline that starts now: the real
    runs first, then the failure paths."""
    first, remembering = _scripted_runs()
    yield "scripted demo run", _rebased(first, f"demo{round_number}")
    yield "scripted demo run with memories", _rebased(remembering, f"memories{round_number}")
    yield "failed run", _failed_run(_builder(f"failed{round_number}"))
    yield "no memories, unusable judgment", _empty_run(_builder(f"empty{round_number}"))
    yield "metrics with and without a step", _metrics_run(_builder(f"metrics{round_number}"))
    yield "nested run", _nested_run(_builder(f"parent{round_number}"))


def _trace_of(steps: list[_Step]) -> list[str]:
    """What is wrong with the span tree of a scenario's payloads (nothing, unless the kit is
    broken: a plugin may rely on the tree it is sent)."""
    payloads = [
        kwargs["run"] if hook == "run_start" else kwargs[PAYLOAD_ARGUMENTS[hook]]
        for hook, kwargs in steps
        if hook != "metrics"
    ]
    return trace_problems(payloads)


def _builder(label: str) -> RunBuilder:
    return RunBuilder(
        f"conformance-{label}-{secrets.token_hex(3)}",
        start=utc_now(),
        model=f"scripted:{DEMO_CASSETTE.name}",
        tags={"conformance": label},
    )


def _rebased(recorded: _Recorded, label: str) -> list[_Step]:
    """The recorded calls as a new run: fresh run, trace and span ids, every time shifted so the
    run starts now (the spans keep their places in the tree and their durations)."""
    first: RunInfo = recorded[0][1]["run"]
    run_id = f"conformance-{label}-{secrets.token_hex(3)}"
    shift = utc_now() - first.started_at
    ids: dict[str, str] = collections.defaultdict(new_span_id)

    def move(event: E) -> E:
        return dataclasses.replace(
            event,
            run_id=run_id,
            span_id=ids[event.span_id],
            parent_span_id=None if event.parent_span_id is None else ids[event.parent_span_id],
            started_at=event.started_at + shift,
            timestamp=event.timestamp + shift,
        )

    run = dataclasses.replace(
        move(first), trace_id=new_trace_id(), tags={**first.tags, "conformance": label}
    )
    steps: list[_Step] = []
    for hook, kwargs in recorded:
        moved = {
            key: run if key == "run" else move(value) if isinstance(value, Event) else value
            for key, value in kwargs.items()
        }
        steps.append((hook, moved))
    return steps


def _failed_run(run: RunBuilder) -> list[_Step]:
    """An LM call, a tool call and a step that failed, then a run that ended with an error."""
    error = "ParseException: Expected SelectQuery"
    run.setup()
    with run.iteration(code="sparql_select('SELECT * WHERE { ?s ?p }')", output="", error=error):
        run.llm_call(
            prompt_tokens=None,
            completion_tokens=None,
            latency=30.0,
            error="RateLimitError: too many requests",
            output=None,
        )
        run.tool_call("sparql_select", {"query": "SELECT * WHERE { ?s ?p }"}, "", error=error)
    run.end(
        answer=None,
        sparql=None,
        evidence=None,
        converged=False,
        error="RuntimeError: the LM provider is unreachable",
    )
    return run.calls


def _empty_run(run: RunBuilder) -> list[_Step]:
    """Nothing retrieved, a judge whose answer was unusable, nothing extracted, no answer."""
    run.setup()
    run.memory_retrieved()
    run.judgment(success=None, reason="", confidence=None)
    run.memory_extracted()
    run.end(converged=False, answer="", evidence=[])
    return run.calls


def _metrics_run(run: RunBuilder) -> list[_Step]:
    run.metrics({"memory.hit_rate": 0.5, "memory.retrieved": 2.0}, None)
    run.metrics({"step.tokens": 1020.0}, 0)
    run.end()
    return run.calls


def _nested_run(parent: RunBuilder) -> list[_Step]:
    """A child run started from a step of its parent, ending inside it."""
    with parent.iteration():
        parent.llm_call()
        child = parent.nested(f"{parent.run.run_id}-child")
        with child.iteration():
            child.llm_call("sub", prompt_tokens=200, completion_tokens=40)
        child.end()
    parent.end()
    return parent.calls
