"""Small, valid payloads for tests that need events but not a real run, built by
``rlm_core.testing.RunBuilder`` so their spans and times are those of a real run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rlm_core.events import Iteration, OntologyInfo, RunInfo, RunResult
from rlm_core.testing import RunBuilder

WHEN = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def builder(run_id: str = "run-1", **fields: Any) -> RunBuilder:
    """A run over PROV with a scripted model, starting at :data:`WHEN`."""
    defaults: dict[str, Any] = {
        "question": "What is prov:Activity?",
        "model": "scripted:demo.jsonl",
        "ontology": OntologyInfo(name="prov", path="/data/prov.ttl", triples=1664),
    }
    defaults.update(fields)
    return RunBuilder(run_id, **{"start": WHEN, **defaults})


def run_info(run_id: str = "run-1", **overrides: Any) -> RunInfo:
    return builder(run_id, **overrides).run


def iteration(run_id: str = "run-1", index: int = 0) -> Iteration:
    run = builder(run_id)
    with run.iteration(
        index=index,
        reasoning="look at the classes",
        code="print(search_entity('Activity'))",
        output="prov:Activity | Activity | class",
        duration=0.01,
    ):
        pass
    step = run.events()[-1]
    assert isinstance(step, Iteration)
    return step


def run_result(run_id: str = "run-1") -> RunResult:
    return builder(run_id).end(
        answer="An activity",
        sparql="SELECT ?p WHERE { ?p rdfs:domain prov:Activity }",
        evidence=[{"p": "prov:used"}],
        iterations=1,
        llm_calls=2,
        prompt_tokens=100,
        completion_tokens=20,
        duration=0.5,
    )
