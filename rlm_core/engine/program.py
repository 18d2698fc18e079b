"""The DSPy program of a run: the signature and the ``dspy.RLM`` built around the ontology."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dspy

__all__ = ["OntologyQuestion", "build_program"]


class OntologyQuestion(dspy.Signature):  # type: ignore[misc]
    """Answer a question about an RDF ontology by exploring it with the tools.

    Start from the ontology summary and the strategies from earlier runs, find the relevant
    entities with search_entity and describe_entity, confirm the answer with a SPARQL query
    through sparql_select, then SUBMIT the answer, the SPARQL query that supports it and the
    evidence (IRIs, labels or rows).
    """

    question: str = dspy.InputField(desc="the question to answer")
    ontology: str = dspy.InputField(
        desc="summary of the ontology: namespaces, key classes and properties, SPARQL templates"
    )
    memories: str = dspy.InputField(
        desc="strategies that worked on earlier questions; use them when they fit"
    )
    answer: str = dspy.OutputField(desc="a concise answer in plain language")
    sparql: str = dspy.OutputField(
        desc="the SPARQL SELECT query whose results support the answer (runs with sparql_select)"
    )
    evidence: list[str] = dspy.OutputField(
        desc="IRIs, labels or result rows from the ontology that support the answer"
    )


def build_program(
    *,
    tools: list[Callable[..., str]],
    sub_lm: Any,
    max_iterations: int,
    max_llm_calls: int,
    max_output_chars: int,
    interpreter_factory: Callable[[], Any],
) -> Any:
    """A fresh ``dspy.RLM`` for one run (modules hold no state we share between runs)."""
    return dspy.RLM(
        OntologyQuestion,
        max_iters=max_iterations,
        max_llm_calls=max_llm_calls,
        max_output_chars=max_output_chars,
        tools=tools,
        sub_lm=sub_lm,
        interpreter_factory=interpreter_factory,
    )
