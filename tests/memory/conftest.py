"""Fixtures for the memory tests: real SQLite files in tmp_path, real DSPy with scripted LMs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from rlm_core.engine.cassette import Cassette, Response, ScriptedEngine
from rlm_core.memory import MemoryDraft, SQLiteMemoryStore

# Strategies over a few ontologies, varied enough for BM25 to tell them apart.
CORPUS: list[tuple[str | None, MemoryDraft]] = [
    (
        "prov",
        MemoryDraft(
            "Find the properties that link a class to agents",
            "When asked which properties connect a class such as prov:Activity to agents",
            "List the properties whose rdfs:domain is the class, then keep those whose "
            "rdfs:range is prov:Agent or a subclass; confirm with sparql_select.",
            ("properties", "agents", "domain", "range"),
        ),
    ),
    (
        "prov",
        MemoryDraft(
            "Count the instances of a class",
            "When a question asks how many things of a kind exist",
            "Run SELECT (COUNT(DISTINCT ?s) AS ?n) WHERE { ?s a <Class> } with sparql_select.",
            ("sparql", "count"),
        ),
    ),
    (
        "prov",
        MemoryDraft(
            "Explain a qualified relation",
            "When the question is about prov:qualifiedAssociation or other qualified forms",
            "Describe the qualified property, then the class in its range, and name the "
            "unqualified shortcut property it refines.",
            ("qualified", "properties"),
        ),
    ),
    (
        "foaf",
        MemoryDraft(
            "Find the agents a person knows",
            "When asked about social links between people",
            "Use foaf:knows with sparql_select; agents and persons share the foaf:Agent class.",
            ("agents", "sparql"),
        ),
    ),
    (
        "foaf",
        MemoryDraft(
            "Look up labels before IRIs",
            "When the user names a term in plain words",
            "Call search_entity with the words first; only then describe_entity on the IRI.",
            ("search",),
        ),
    ),
    (
        None,
        MemoryDraft(
            "Check the SPARQL query returns rows before answering",
            "Always, before SUBMIT",
            "Run the final query through sparql_select and cite the rows as evidence; an empty "
            "result means the query or the answer is wrong.",
            ("sparql", "evidence"),
        ),
    ),
    (
        None,
        MemoryDraft(
            "Read the sense card first",
            "At the start of every run",
            "The ontology summary lists namespaces, key classes and SPARQL templates; start "
            "from them instead of searching blindly.",
            ("start",),
        ),
    ),
    (
        "skos",
        MemoryDraft(
            "Walk broader concepts",
            "When asked for the parents or ancestors of a concept",
            "Follow skos:broader transitively with a property path skos:broader+.",
            ("hierarchy", "sparql"),
        ),
    ),
    (
        "skos",
        MemoryDraft(
            "Find a concept scheme's top concepts",
            "When asked where a thesaurus starts",
            "Query skos:hasTopConcept on the scheme, or skos:topConceptOf on concepts.",
            ("hierarchy",),
        ),
    ),
    (
        "prov",
        MemoryDraft(
            "Trace what an entity was derived from",
            "When asked about the origin or lineage of an entity",
            "Follow prov:wasDerivedFrom, prov:wasGeneratedBy and prov:used from the entity.",
            ("lineage",),
        ),
    ),
]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "memory.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SQLiteMemoryStore]:
    with SQLiteMemoryStore(db_path) as opened:
        yield opened


@pytest.fixture
def corpus_store(store: SQLiteMemoryStore) -> SQLiteMemoryStore:
    """The store holding :data:`CORPUS`, each memory with its scope."""
    for scope, draft in CORPUS:
        store.add_memories([draft], run_id=None, scope=scope, source="test")
    return store


@pytest.fixture
def scripted_lm() -> Callable[[str, Sequence[Response]], Any]:
    """A real ``dspy.LM`` that answers from the given responses of ``role``."""
    import dspy

    def build(role: str, responses: Sequence[Response]) -> Any:
        engine = ScriptedEngine(Cassette(responses), role)
        return dspy.LM(f"scripted/{role}", engine=engine, cache=False, num_retries=0)

    return build


@pytest.fixture
def corpus() -> list[tuple[str | None, MemoryDraft]]:
    """:data:`CORPUS` as (scope, draft) pairs."""
    return list(CORPUS)
