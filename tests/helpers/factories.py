"""Small, valid payloads for tests that need events but not a real run."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from rlm_core.events import Iteration, Limits, OntologyInfo, RunInfo, RunResult

_seq = itertools.count(1)
WHEN = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def run_info(run_id: str = "run-1", **overrides: object) -> RunInfo:
    fields: dict[str, object] = {
        "run_id": run_id,
        "seq": 0,
        "timestamp": WHEN,
        "question": "What is prov:Activity?",
        "ontology": OntologyInfo(name="prov", path="/data/prov.ttl", triples=1664),
        "model": "scripted:demo.jsonl",
        "sub_model": None,
        "limits": Limits(
            max_iterations=20, max_llm_calls=50, step_timeout=30.0, max_output_chars=10_000
        ),
    }
    fields.update(overrides)
    return RunInfo(**fields)  # type: ignore[arg-type]


def iteration(run_id: str = "run-1", index: int = 0) -> Iteration:
    return Iteration(
        run_id=run_id,
        seq=next(_seq),
        timestamp=WHEN,
        index=index,
        reasoning="look at the classes",
        code="print(search_entity('Activity'))",
        output="prov:Activity | Activity | class",
        error=None,
        duration=0.01,
        llm_calls_used=0,
    )


def run_result(run_id: str = "run-1") -> RunResult:
    return RunResult(
        run_id=run_id,
        seq=next(_seq),
        timestamp=WHEN,
        answer="An activity",
        sparql="SELECT ?p WHERE { ?p rdfs:domain prov:Activity }",
        evidence=[{"p": "prov:used"}],
        converged=True,
        iterations=1,
        llm_calls=2,
        prompt_tokens=100,
        completion_tokens=20,
        duration=0.5,
    )
