"""The graders on right, wrong, partial and non-terminating SPARQL, and answer patterns."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlm_core.eval.graders import contains_check, run_query, sparql_check
from rlm_core.eval.tasks import AnswerPattern, Task
from rlm_core.ontology import load_ontology
from rlm_core.testing import DEMO_ONTOLOGY

LEVELS = "SELECT ?level WHERE { ?level a coffee:RoastLevel }"


@pytest.fixture(scope="module")
def coffee():  # type: ignore[no-untyped-def]
    return load_ontology(DEMO_ONTOLOGY)


def test_the_same_rows_pass_exactly(coffee) -> None:  # type: ignore[no-untyped-def]
    check = sparql_check(coffee, LEVELS, LEVELS, timeout=10)
    assert check.passed
    assert check.score == 1.0
    assert check.detail.startswith("exact=True precision=1.000 recall=1.000 (3 rows")


def test_extra_columns_pass_but_are_not_exact(coffee) -> None:  # type: ignore[no-untyped-def]
    submitted = "SELECT ?level ?label WHERE { ?level a coffee:RoastLevel ; rdfs:label ?label }"
    check = sparql_check(coffee, submitted, LEVELS, timeout=10)
    assert check.passed
    assert "exact=False precision=1.000 recall=1.000" in check.detail


def test_a_wrong_query_fails_with_precision_and_recall(coffee) -> None:  # type: ignore[no-untyped-def]
    wrong = "SELECT ?note WHERE { ?note a coffee:FlavourNote }"
    check = sparql_check(coffee, wrong, LEVELS, timeout=10)
    assert not check.passed
    assert check.score == 0.0
    assert "precision=0.000 recall=0.000 (4 rows, 3 expected)" in check.detail


def test_a_partial_answer_scores_its_f1(coffee) -> None:  # type: ignore[no-untyped-def]
    # Two of the three levels (the ones with a recommended device): precision 1, recall 2/3.
    partial = "SELECT ?level WHERE { ?level a coffee:RoastLevel ; coffee:recommendedDevice ?d }"
    check = sparql_check(coffee, partial, LEVELS, timeout=10)
    assert not check.passed
    assert "precision=1.000 recall=0.667" in check.detail
    assert check.score == pytest.approx(0.8)  # 2 * 1 * 2/3 / (1 + 2/3)


def test_a_non_terminating_query_is_stopped_by_the_timeout(coffee) -> None:  # type: ignore[no-untyped-def]
    endless = "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"
    check = sparql_check(coffee, endless, LEVELS, timeout=0.3)
    assert not check.passed
    assert check.detail.startswith("the submitted query stopped:")


def test_ask_queries_compare_their_answers(coffee) -> None:  # type: ignore[no-untyped-def]
    ask = "ASK { coffee:LightRoast a coffee:RoastLevel }"
    assert sparql_check(coffee, ask, ask, timeout=5).passed
    wrong = "ASK { coffee:LightRoast a coffee:Farm }"
    assert not sparql_check(coffee, wrong, ask, timeout=5).passed


def test_no_query_and_refused_queries_fail(coffee) -> None:  # type: ignore[no-untyped-def]
    assert sparql_check(coffee, None, LEVELS, timeout=5).detail == "no SPARQL"
    update = "DELETE WHERE { ?s ?p ?o }"
    assert run_query(coffee, update, 5).error is not None
    assert sparql_check(coffee, update, LEVELS, timeout=5).detail.startswith(
        "the submitted query refused:"
    )


def test_answer_contains_strings_case_insensitively_and_regexes() -> None:
    task = Task(
        id="t",
        question="q",
        ontology=Path(DEMO_ONTOLOGY),
        line=1,
        answer_contains=(AnswerPattern("Light Roast"), AnswerPattern(r"\b18\d0\b", regex=True)),
    )
    assert contains_check(task, "the light roast at 1850 m").passed
    check = contains_check(task, "a light roast at 1500 m")
    assert not check.passed
    assert check.score == 0.5
    assert check.detail == "missing: '\\\\b18\\\\d0\\\\b'"
