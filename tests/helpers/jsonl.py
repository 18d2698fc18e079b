"""Shared by the jsonl, runlog and replay tests: a realistic run as hook calls, emitting helpers,
and a distribution (a real ``.dist-info`` on ``sys.path``) whose entry points ``rlm replay --to``
can select. No tests here."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rlm_core import cli
from rlm_core.config import Settings
from rlm_core.events import (
    ExtractedMemory,
    Message,
    OntologyInfo,
    RetrievedMemory,
    RunInfo,
    RunResult,
)
from rlm_core.hookspecs import hookimpl
from rlm_core.plugins import PluginManager, get_plugin_manager
from rlm_core.testing import RunBuilder
from rlm_plugins.jsonl import JsonlTracker

HookCalls = list[tuple[str, dict[str, Any]]]
START = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)


def realistic_run(run_id: str = "run-rt", *, iterations: int = 2) -> HookCalls:
    """Every hook, in the order a real run emits them, with the awkward values real runs have:
    multi-line code, non-ASCII text, nested tool arguments and evidence, LM content, None where
    allowed. Built by ``RunBuilder``, so the spans form a tree; the same ``run_id`` gives equal
    calls."""
    run = RunBuilder(
        run_id,
        start=START,
        question="Which properties have prov:Activity as their domain? («Aktivität»)",
        ontology=OntologyInfo(name="prov", path="/data/prov-o.ttl", triples=1664, format="turtle"),
        model="anthropic/claude-sonnet-4-5",
        sub_model="anthropic/claude-haiku-4-5",
        tags={"experiment": "baseline", "owner": "ödön"},
    )
    run.setup()
    run.memory_retrieved(
        (
            RetrievedMemory(memory_id="m-1", title="Use rdfs:domain", rank=1, score=3.25),
            RetrievedMemory(memory_id="m-2", title="Check inverse properties", rank=2, score=1.5),
        ),
        query="properties domain prov:Activity",
        duration=0.004,
    )
    for index in range(iterations):
        with run.iteration(
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
        ):
            run.llm_call(
                prompt_tokens=900 + index,
                latency=0.83,
                cost=0.0042,
                messages=(
                    Message(role="system", text="Answer with «code».\nUse the tools."),
                    Message(role="user", text="Which properties… (Aktivität)?"),
                ),
                output="[[ ## code ## ]]\nprint(sparql_select('…'))",
                response_id=f"chatcmpl-{index}",
                request_params={"temperature": 0.0, "max_tokens": 4000},
                cached_tokens=512,
            )
            run.tool_call(
                "sparql_select",
                {
                    "query": "SELECT ?p WHERE { ?p rdfs:domain prov:Activity }",
                    "limit": 50,
                    "options": {"timeout": 5.0, "prefixes": ["prov", "rdfs"]},
                },
                "prov:used\nprov:wasAssociatedWith\nprov:startedAtTime",
                result_size=412,
                duration=0.012,
            )
            run.llm_call(
                "sub",
                model="anthropic/claude-haiku-4-5",
                prompt_tokens=None,
                completion_tokens=None,
                latency=0.31,
                output=None,
                finish_reason=None,
                error="RateLimitError: slow down" if index else None,
            )
        run.metrics({"tokens_so_far": 1020.0 * (index + 1)}, step=index)
    run.judgment(
        success=True, reason="The answer lists the properties with evidence.", confidence=0.9
    )
    run.memory_extracted(
        (
            ExtractedMemory(memory_id="m-3", title="Domain lookups", duplicate=False),
            ExtractedMemory(memory_id="m-1", title="Use rdfs:domain", duplicate=True),
        )
    )
    run.metrics({"memory_hit_rate": 0.5, "memories": 2.0})
    run.end(
        answer="prov:used, prov:wasAssociatedWith and prov:startedAtTime.",
        sparql="SELECT ?p WHERE { ?p rdfs:domain prov:Activity }",
        evidence=[{"p": "prov:used", "rank": 1}, {"p": None, "nested": [1, 2.5]}],
        llm_calls=2 * iterations,
        prompt_tokens=1800,
        completion_tokens=240,
        duration=12.0,
    )
    return run.calls


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
