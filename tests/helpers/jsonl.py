"""Shared by the jsonl, runlog and replay tests: a realistic run as hook calls, emitting helpers,
and a distribution (a real ``.dist-info`` on ``sys.path``) whose entry points ``rlm replay --to``
can select. No tests here."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rlm_core import cli
from rlm_core.config import Settings
from rlm_core.events import (
    ExtractedMemory,
    Iteration,
    Judgment,
    Limits,
    LLMCall,
    MemoryExtraction,
    MemoryRetrieval,
    OntologyInfo,
    RetrievedMemory,
    RunInfo,
    RunResult,
    ToolCall,
)
from rlm_core.hookspecs import hookimpl
from rlm_core.plugins import PluginManager, get_plugin_manager
from rlm_plugins.jsonl import JsonlTracker

HookCalls = list[tuple[str, dict[str, Any]]]
START = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)


def realistic_run(run_id: str = "run-rt", *, iterations: int = 2) -> HookCalls:
    """Every hook, in the order a real run emits them, with the awkward values real runs have:
    multi-line code, non-ASCII text, nested tool arguments and evidence, None where allowed."""
    seq = itertools.count()

    def at(seconds: float) -> datetime:
        return START + timedelta(seconds=seconds)

    run = RunInfo(
        run_id=run_id,
        seq=next(seq),
        timestamp=at(0),
        question="Which properties have prov:Activity as their domain? («Aktivität»)",
        ontology=OntologyInfo(name="prov", path="/data/prov-o.ttl", triples=1664),
        model="anthropic/claude-sonnet-4-5",
        sub_model="anthropic/claude-haiku-4-5",
        limits=Limits(
            max_iterations=20, max_llm_calls=50, step_timeout=30.0, max_output_chars=10_000
        ),
        tags={"experiment": "baseline", "owner": "ödön"},
    )
    calls: HookCalls = [("run_start", {"run": run})]
    retrieval = MemoryRetrieval(
        run_id=run_id,
        seq=next(seq),
        timestamp=at(0.01),
        query="properties domain prov:Activity",
        k=3,
        items=(
            RetrievedMemory(memory_id="m-1", title="Use rdfs:domain", rank=1, score=3.25),
            RetrievedMemory(memory_id="m-2", title="Check inverse properties", rank=2, score=1.5),
        ),
        duration=0.004,
    )
    calls.append(("memory_retrieved", {"run": run, "retrieval": retrieval}))
    for index in range(iterations):
        base = 1.0 + index * 2
        calls.append(
            (
                "llm_call",
                {
                    "run": run,
                    "call": LLMCall(
                        run_id=run_id,
                        seq=next(seq),
                        timestamp=at(base),
                        model=run.model,
                        role="root",
                        prompt_tokens=900 + index,
                        completion_tokens=120,
                        latency=0.83,
                        cost=0.0042,
                    ),
                },
            )
        )
        calls.append(
            (
                "tool_call",
                {
                    "run": run,
                    "call": ToolCall(
                        run_id=run_id,
                        seq=next(seq),
                        timestamp=at(base + 0.2),
                        name="sparql_select",
                        arguments={
                            "query": "SELECT ?p WHERE { ?p rdfs:domain prov:Activity }",
                            "limit": 50,
                            "options": {"timeout": 5.0, "prefixes": ["prov", "rdfs"]},
                        },
                        result_size=412,
                        result_preview="prov:used\nprov:wasAssociatedWith\nprov:startedAtTime",
                        duration=0.012,
                    ),
                },
            )
        )
        calls.append(
            (
                "llm_call",
                {
                    "run": run,
                    "call": LLMCall(
                        run_id=run_id,
                        seq=next(seq),
                        timestamp=at(base + 0.5),
                        model="anthropic/claude-haiku-4-5",
                        role="sub",
                        prompt_tokens=None,
                        completion_tokens=None,
                        latency=0.31,
                        error="RateLimitError: slow down" if index else None,
                    ),
                },
            )
        )
        step = Iteration(
            run_id=run_id,
            seq=next(seq),
            timestamp=at(base + 0.9),
            index=index,
            reasoning=f"Step {index}: list the properties whose domain is prov:Activity.",
            code=(
                "rows = sparql_select('SELECT ?p WHERE { ?p rdfs:domain prov:Activity }')\n"
                "for row in rows[:5]:\n    print(row['p'])\n"
            ),
            output="prov:used\nprov:wasAssociatedWith\nprov:startedAtTime\n… 3 more",
            error=None if index == 0 else "NameError: name 'rowz' is not defined",
            duration=0.05,
            llm_calls_used=index + 1,
        )
        calls.append(("iteration", {"run": run, "step": step}))
        calls.append(
            (
                "metrics",
                {"run": run, "values": {"tokens_so_far": 1020.0 * (index + 1)}, "step": index},
            )
        )
    calls.append(
        (
            "judgment",
            {
                "run": run,
                "verdict": Judgment(
                    run_id=run_id,
                    seq=next(seq),
                    timestamp=at(10),
                    success=True,
                    reason="The answer lists the properties with evidence.",
                    confidence=0.9,
                ),
            },
        )
    )
    calls.append(
        (
            "memory_extracted",
            {
                "run": run,
                "extraction": MemoryExtraction(
                    run_id=run_id,
                    seq=next(seq),
                    timestamp=at(11),
                    items=(
                        ExtractedMemory(memory_id="m-3", title="Domain lookups", duplicate=False),
                        ExtractedMemory(memory_id="m-1", title="Use rdfs:domain", duplicate=True),
                    ),
                ),
            },
        )
    )
    calls.append(
        ("metrics", {"run": run, "values": {"memory_hit_rate": 0.5, "memories": 2.0}, "step": None})
    )
    calls.append(
        (
            "run_end",
            {
                "run": run,
                "result": RunResult(
                    run_id=run_id,
                    seq=next(seq),
                    timestamp=at(12),
                    answer="prov:used, prov:wasAssociatedWith and prov:startedAtTime.",
                    sparql="SELECT ?p WHERE { ?p rdfs:domain prov:Activity }",
                    evidence=[{"p": "prov:used", "rank": 1}, {"p": None, "nested": [1, 2.5]}],
                    converged=True,
                    iterations=iterations,
                    llm_calls=2 * iterations,
                    prompt_tokens=1800,
                    completion_tokens=240,
                    duration=12.0,
                ),
            },
        )
    )
    return calls


def emit(manager: PluginManager, calls: Iterable[tuple[str, dict[str, Any]]]) -> None:
    for hook, kwargs in calls:
        getattr(manager.hook, hook)(**kwargs)


def strict_manager(*plugins: object) -> PluginManager:
    """Only these plugins, no entry points; a plugin's exception fails the test."""
    return get_plugin_manager(Settings(strict=True), plugins=plugins, entry_points=[])


def write_log(directory: Path, calls: HookCalls, template: str = "{run_id}.jsonl") -> Path:
    """Emit ``calls`` through a JsonlTracker writing under ``directory``; the file written."""
    tracker = JsonlTracker(path=str(directory / template))
    emit(strict_manager(tracker), calls)
    return tracker.destination(calls[0][1]["run"])


class FailingTracker:
    """A tracker whose backend is down: every run_start raises."""

    @hookimpl
    def run_start(self, run: RunInfo) -> None:
        raise ConnectionError("tracking server unreachable")


class QuietTracker:
    """A tracker that accepts everything and does nothing, for ``--to`` selections."""

    @hookimpl
    def run_end(self, run: RunInfo, result: RunResult) -> None:
        pass


def install_replay_trackers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A distribution on ``sys.path`` with trackers ``quiet`` and ``failing``, found by real
    entry-point discovery beside rlm-core's own (``jsonl`` among them); the working directory is
    an empty one, without RLM_* variables."""
    site = tmp_path / "site"
    dist_info = site / "rlm_replay_fixture-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: rlm-replay-fixture\nVersion: 1.0\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text(
        "[rlm]\n"
        "quiet = tests.helpers.jsonl:QuietTracker\n"
        "failing = tests.helpers.jsonl:FailingTracker\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(site))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for variable in ("RLM_TRACKERS", "RLM_DISABLE", "RLM_CONFIG"):
        monkeypatch.delenv(variable, raising=False)
    return work


def rlm_main(*argv: str) -> int:
    """``rlm ARGS...`` in process, through the real ``main``."""
    return cli.main(list(argv))
