"""Graders: did a run answer its task? Each grader gives a check; the run passes when all do.

``expected_sparql`` runs the submitted query and the reference on the same ontology, each bounded
by the query timeout, and compares result sets. Row matching is by values: a submitted row
matches a reference row when it holds every value of that row (extra columns are allowed), so
``precision`` is the share of submitted rows that match one, ``recall`` the share of reference
rows matched, and ``exact`` says both row sets are equal. ``answer_contains`` looks for every
string (case-insensitive) or regex in the answer. ``rubric`` asks an LM judge on its own role,
``rubric``, so a cassette replays it like any other LM.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rlm_core.eval.tasks import Task
from rlm_core.events import GradeCheck

__all__ = ["RUBRIC_ROLE", "QueryOutcome", "grade_answer", "run_query", "sparql_check"]

RUBRIC_ROLE = "rubric"


@dataclasses.dataclass(frozen=True)
class QueryOutcome:
    """Rows of a query as sets of values (``ask`` for ASK queries), or why it failed."""

    rows: tuple[frozenset[str], ...] = ()
    ask: bool | None = None
    error: str | None = None


def run_query(loaded: Any, text: str, timeout: float) -> QueryOutcome:
    """Run a read-only query on ``loaded`` (a LoadedOntology) within ``timeout`` seconds."""
    from rdflib.query import ResultRow

    from rlm_core.ontology.budget import BudgetedGraph, BudgetExceeded
    from rlm_core.ontology.prefixes import PrefixMap
    from rlm_core.ontology.sparql import QueryRefused, vet_query

    try:
        vetted = vet_query(text, PrefixMap.from_graph(loaded.graph, loaded.name).namespaces)
    except QueryRefused as exc:
        return QueryOutcome(error=f"refused: {str(exc).splitlines()[0]}")
    graph = BudgetedGraph(loaded.graph, timeout, max_scanned=10**12)
    try:
        result = graph.query(vetted.query, use_store_provided=False)
        if vetted.form == "ASK":
            return QueryOutcome(ask=bool(result.askAnswer))
        rows = tuple(
            frozenset(str(value) for value in row if value is not None)
            for row in result
            if isinstance(row, ResultRow)
        )
    except BudgetExceeded as exc:
        return QueryOutcome(error=f"stopped: {exc}")
    except Exception as exc:  # rdflib evaluation errors are of many kinds
        return QueryOutcome(error=f"failed: {type(exc).__name__}: {exc}")
    return QueryOutcome(rows=rows)


def sparql_check(loaded: Any, submitted: str | None, reference: str, timeout: float) -> GradeCheck:
    """Compare the result sets of ``submitted`` and ``reference`` on the same ontology."""
    if not submitted:
        return GradeCheck(grader="expected_sparql", passed=False, score=0.0, detail="no SPARQL")
    expected = run_query(loaded, reference, timeout)
    if expected.error is not None:
        detail = f"the reference query {expected.error}"
        return GradeCheck(grader="expected_sparql", passed=False, score=0.0, detail=detail)
    got = run_query(loaded, submitted, timeout)
    if got.error is not None:
        detail = f"the submitted query {got.error}"
        return GradeCheck(grader="expected_sparql", passed=False, score=0.0, detail=detail)
    if expected.ask is not None or got.ask is not None:
        same = expected.ask == got.ask
        detail = f"ASK {got.ask} (expected {expected.ask})"
        return GradeCheck(grader="expected_sparql", passed=same, score=float(same), detail=detail)
    reference_rows, submitted_rows = set(expected.rows), set(got.rows)
    matched = sum(any(r <= s for s in submitted_rows) for r in reference_rows)
    relevant = sum(any(r <= s for r in reference_rows) for s in submitted_rows)
    recall = matched / len(reference_rows) if reference_rows else float(not submitted_rows)
    precision = relevant / len(submitted_rows) if submitted_rows else float(not reference_rows)
    exact = reference_rows == submitted_rows
    passed = precision == 1.0 and recall == 1.0
    return GradeCheck(
        grader="expected_sparql",
        passed=passed,
        score=recall if passed else 2 * precision * recall / (precision + recall or 1.0),
        detail=f"exact={exact} precision={precision:.3f} recall={recall:.3f} "
        f"({len(submitted_rows)} rows, {len(reference_rows)} expected)",
    )


def contains_check(task: Task, answer: str | None) -> GradeCheck:
    """Every ``answer_contains`` item must be found in the answer."""
    text = answer or ""
    missing = [p.text for p in task.answer_contains if not p.found_in(text)]
    found = len(task.answer_contains) - len(missing)
    detail = "all found" if not missing else "missing: " + ", ".join(repr(m) for m in missing)
    return GradeCheck(
        grader="answer_contains",
        passed=not missing,
        score=found / len(task.answer_contains),
        detail=detail,
    )


def rubric_check(task: Task, answer: str | None, sparql: str | None, lm: Any) -> GradeCheck:
    """Ask the rubric judge; an answer it cannot parse fails the check (and says so)."""
    from rlm_core.eval.rubric import judge_rubric

    assert task.rubric is not None
    passed, reason = judge_rubric(lm, task.question, task.rubric, answer, sparql)
    return GradeCheck(grader="rubric", passed=passed, score=float(passed), detail=reason)


def grade_answer(
    task: Task,
    answer: str | None,
    sparql: str | None,
    error: str | None,
    *,
    loaded: Any,
    timeout: float,
    rubric_lm: Any = None,
) -> tuple[bool, float, tuple[GradeCheck, ...]]:
    """Run every grader of ``task``: (success, mean score, the checks).

    A run that failed (``error``) or gave no answer fails whatever its graders say.
    """
    checks: list[GradeCheck] = []
    if task.expected_sparql is not None:
        checks.append(sparql_check(loaded, sparql, task.expected_sparql, timeout))
    if task.answer_contains:
        checks.append(contains_check(task, answer))
    if task.rubric is not None:
        checks.append(rubric_check(task, answer, sparql, rubric_lm))
    success = error is None and answer is not None and all(check.passed for check in checks)
    score = sum(check.score for check in checks) / len(checks)
    return success, score, tuple(checks)
