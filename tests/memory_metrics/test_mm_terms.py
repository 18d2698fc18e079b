"""The "used" heuristic: which terms of a memory are distinctive, and when code contains them."""

from __future__ import annotations

import pytest

from rlm_plugins.memory_metrics.terms import distinctive_terms, used_terms


def test_terms_are_iris_prefixed_names_paths_and_capitalised_keywords() -> None:
    text = (
        "List properties whose rdfs:domain is coffee:Brewing or a superclass "
        "(coffee:Brewing rdfs:subClassOf* ?d), then ^prov:used and skos:broader+; "
        "see <https://example.org/coffee#Roast> or https://example.org/x#Lot. "
        "Use FILTER NOT EXISTS and GROUP  BY; an optional step is fine. Note: rdfs:label helps."
    )
    assert distinctive_terms(text) == {
        "coffee:Brewing",
        "rdfs:subClassOf*",
        "^prov:used",
        "skos:broader+",
        "https://example.org/coffee#Roast",
        "https://example.org/x#Lot",
        "NOT EXISTS",
        "GROUP BY",
    }


def test_common_names_and_plain_words_are_not_distinctive() -> None:
    text = "Call search_entity, then describe_entity; rdf:type and rdfs:label are everywhere."
    assert distinctive_terms(text) == frozenset()


def test_a_path_of_several_steps_is_one_term() -> None:
    assert distinctive_terms("Use rdf:type/rdfs:subClassOf* to get all classes.") == {
        "rdf:type/rdfs:subClassOf*"
    }


@pytest.mark.parametrize(
    ("term", "code", "found"),
    [
        ("coffee:Brewing", "q = 'SELECT ?p WHERE { coffee:Brewing ?p ?o }'", True),
        ("coffee:Brew", "q = 'SELECT ?p WHERE { coffee:Brewing ?p ?o }'", False),
        ("coffee:Brewing", "q = 'SELECT ?p WHERE { xcoffee:Brewing ?p ?o }'", False),
        ("rdfs:subClassOf*", "?c rdfs:subClassOf* coffee:Process", True),
        ("rdfs:subClassOf*", "?c rdfs:subClassOf coffee:Process", False),
        ("https://example.org/x#Lot", "describe_entity('<https://example.org/x#Lot>')", True),
        ("GROUP BY", "q = '''SELECT ?x (COUNT(?y) AS ?n) WHERE {} GROUP\n  BY ?x'''", True),
        ("GROUP BY", "q = 'SELECT ?x WHERE {} group by ?x'", False),
        ("OPTIONAL", "print('OPTIONALLY')", False),
        ("VALUES", "for v in rows.values(): print(v)", False),
        ("VALUES", "q = 'SELECT ?x WHERE { VALUES ?x { coffee:Roast } }'", True),
    ],
)
def test_terms_match_whole_in_code(term: str, code: str, found: bool) -> None:
    assert bool(used_terms([term], code)) is found
