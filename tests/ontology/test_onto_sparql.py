from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdflib import RDF, RDFS, Graph, Literal, Namespace

from rlm_core.ontology import LoadedOntology, OntologyTools

EX = Namespace("http://example.org/big#")

LINKING_QUESTION = """
SELECT DISTINCT ?p ?label WHERE {
  ?p rdfs:domain ?d ; rdfs:range ?r ; rdfs:label ?label .
  coffee:Roasting rdfs:subClassOf* ?d .
  coffee:RoastedCoffee rdfs:subClassOf* ?r .
} ORDER BY ?p
"""


def test_demo_answers_which_properties_link_a_roasting_to_roasted_coffee(
    demo_tools: OntologyTools,
) -> None:
    answer = demo_tools.sparql_select(LINKING_QUESTION)

    assert answer.splitlines()[0] == "Result r1: 2 rows; columns: ?p | ?label"
    assert 'coffee:hasInput | "has input"@en' in answer
    assert 'coffee:hasOutput | "has output"@en' in answer
    assert answer.endswith("rows 1-2 of 2")


def test_prefixes_are_prebound_including_conventional_ones(sio_tools: OntologyTools) -> None:
    answer = sio_tools.sparql_select(
        "SELECT ?c WHERE { ?c skos:exactMatch ?m ; rdfs:label ?l } LIMIT 1"
    )
    assert answer.startswith("Result r1: 1 row; columns: ?c")


def test_query_without_limit_is_capped_and_says_so(demo_tools: OntologyTools) -> None:
    answer = demo_tools.sparql_select("SELECT ?s ?p ?o WHERE { ?s ?p ?o }", limit=5)

    assert answer.splitlines()[0] == "Result r1: 100+ rows; columns: ?s | ?p | ?o"
    assert "applied LIMIT 100" in answer
    assert answer.endswith("rows 1-5 of 100+; next: result_rows('r1', offset=5)")
    assert len(demo_tools.results["r1"].rows) == 100
    assert demo_tools.results["r1"].complete is False


def test_query_asking_for_more_than_the_cap_is_reduced(demo_tools: OntologyTools) -> None:
    answer = demo_tools.sparql_select("SELECT ?s WHERE { ?s ?p ?o } LIMIT 400")
    assert "LIMIT 400 was reduced to 100" in answer


def test_query_with_small_limit_is_left_alone(demo_tools: OntologyTools) -> None:
    answer = demo_tools.sparql_select("SELECT ?s WHERE { ?s a owl:Class } LIMIT 3")

    assert answer.splitlines()[0] == "Result r1: 3 rows; columns: ?s"
    assert "LIMIT" not in answer


def test_handles_page_through_all_kept_rows(demo_tools: OntologyTools) -> None:
    demo_tools.sparql_select("SELECT ?c WHERE { ?c a owl:Class } ORDER BY ?c", limit=10)
    handle = demo_tools.results["r1"]

    first = demo_tools.result_rows("r1", offset=0, limit=40)
    rest = demo_tools.result_rows("r1", offset=40, limit=40)

    assert len(handle.rows) == 42  # 41 named classes and the anonymous union
    assert first.endswith("rows 1-40 of 42; next: result_rows('r1', offset=40)")
    assert rest.endswith("rows 41-42 of 42")
    assert "Error: offset 42 is past the last row of r1" in demo_tools.result_rows("r1", 42)


def test_each_select_gets_a_new_handle(demo_tools: OntologyTools) -> None:
    demo_tools.sparql_select("SELECT ?c WHERE { ?c a owl:Class }")
    demo_tools.sparql_select("SELECT ?p WHERE { ?p a owl:ObjectProperty }")

    assert list(demo_tools.results) == ["r1", "r2"]
    assert demo_tools.results["r2"].columns == ("?p",)


def test_old_handles_are_dropped_beyond_max_handles(demo: LoadedOntology) -> None:
    tools = OntologyTools(demo, max_handles=2)
    for _ in range(3):
        tools.sparql_select("ASK { ?s ?p ?o }")
        tools.sparql_select("SELECT ?s WHERE { ?s a owl:Class } LIMIT 1")

    assert list(tools.results) == ["r2", "r3"]
    assert tools.result_rows("r1").startswith("Error: no result handle 'r1'; handles from")


def test_ask_answers_true_or_false(demo_tools: OntologyTools) -> None:
    assert demo_tools.sparql_select("ASK { coffee:Gesha coffee:varietyOf coffee:Arabica }") == (
        "ASK result: true"
    )
    assert demo_tools.sparql_select("ASK { coffee:Gesha coffee:varietyOf coffee:Robusta }") == (
        "ASK result: false"
    )


def test_empty_result_suggests_checking_iris(demo_tools: OntologyTools) -> None:
    answer = demo_tools.sparql_select("SELECT ?x WHERE { ?x a coffee:Teapot }")
    assert answer == (
        "Result r1: 0 rows; columns: ?x\n(no rows; check the IRIs with search_entity)"
    )


@pytest.mark.parametrize(
    "query",
    [
        "INSERT DATA { coffee:a coffee:b coffee:c }",
        "DELETE WHERE { ?s ?p ?o }",
        "PREFIX ex: <http://example.org/>\nINSERT { ?s a ex:X } WHERE { ?s ?p ?o }",
        "LOAD <http://example.org/evil.ttl>",
        "CLEAR ALL",
        "DROP GRAPH <http://example.org/g>",
        "CREATE GRAPH <http://example.org/g>",
    ],
)
def test_updates_are_refused(demo: LoadedOntology, query: str) -> None:
    tools = OntologyTools(demo)
    before = len(demo.graph)

    answer = tools.sparql_select(query)

    assert answer.startswith("Error: SPARQL Update (INSERT, DELETE, LOAD")
    assert len(demo.graph) == before


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }",
            "Error: SERVICE (federated query) would reach the network",
        ),
        (
            "SELECT * WHERE { ?a ?b ?c OPTIONAL { SERVICE SILENT <http://x/> { ?a ?d ?e } } }",
            "Error: SERVICE (federated query)",
        ),
        ("SELECT * FROM <http://example.org/g> WHERE { ?s ?p ?o }", "Error: FROM / FROM NAMED"),
        ("CONSTRUCT WHERE { ?s ?p ?o }", "Error: CONSTRUCT queries are not supported"),
        ("DESCRIBE coffee:Gesha", "Error: DESCRIBE queries are not supported"),
    ],
)
def test_network_reaching_and_graph_returning_queries_are_refused(
    demo_tools: OntologyTools, query: str, message: str
) -> None:
    assert demo_tools.sparql_select(query).startswith(message)


def test_syntax_error_shows_position_and_parser_explanation(demo_tools: OntologyTools) -> None:
    answer = demo_tools.sparql_select("SELECT ?s WHERE {\n  ?s ?p \n}")

    lines = answer.splitlines()
    assert lines[0] == "Error: SPARQL syntax error at line 2, column 3: Expected SelectQuery"
    assert lines[1] == "    ?s ?p "
    assert lines[2] == "    ^"


def test_unknown_prefix_lists_the_known_ones(demo_tools: OntologyTools) -> None:
    answer = demo_tools.sparql_select("SELECT ?s WHERE { ?s a foo:Bar }")
    assert answer.startswith("Error: unknown prefix foo: in the query. Declare it with PREFIX")
    assert "coffee:" in answer


def test_runaway_query_is_stopped_by_the_time_budget(sio: LoadedOntology) -> None:
    tools = OntologyTools(sio, query_timeout=0.5)
    started = time.monotonic()

    answer = tools.sparql_select(
        "SELECT ?a ?b WHERE { ?a ?p ?o . ?b ?q ?r } ORDER BY ?a ?b"  # 15k x 15k rows
    )

    assert time.monotonic() - started < 5
    assert answer.startswith("Error: the query was stopped because it ran longer than 0.5 s")


def test_runaway_query_is_stopped_by_the_scan_budget(demo: LoadedOntology) -> None:
    tools = OntologyTools(demo, max_scanned=1000)
    answer = tools.sparql_select("SELECT (COUNT(*) AS ?n) WHERE { ?a ?p ?o . ?b ?q ?r }")
    assert answer.startswith("Error: the query was stopped because it scanned more than 1,000")


@pytest.fixture(scope="module")
def huge_literal_tools() -> OntologyTools:
    graph = Graph()
    graph.bind("ex", EX)
    graph.add((EX.Big, RDF.type, RDFS.Class))
    graph.add((EX.Big, RDFS.label, Literal("big " + "x" * 10_000_000)))
    graph.add((EX.Big, RDFS.comment, Literal("line\n" * 2_000_000)))
    for index in range(300):
        graph.add((EX[f"item{index}"], RDF.type, EX.Big))
        graph.add((EX[f"item{index}"], EX.note, Literal("y" * 50_000)))
    return OntologyTools(LoadedOntology("big", "/x/big.ttl", graph, len(graph)))


def test_every_tool_stays_bounded_with_a_ten_megabyte_literal(
    huge_literal_tools: OntologyTools,
) -> None:
    tools = huge_literal_tools
    answers = [
        tools.search_entity("big"),
        tools.search_entity("x" * 50),
        tools.describe_entity("ex:Big", limit=100),
        tools.describe_entity("ex:item7"),
        tools.sparql_select("SELECT ?s ?l WHERE { ?s ?p ?l }", limit=100),
        tools.sparql_select("SELECT ?l WHERE { ex:Big rdfs:label ?l }"),
    ]
    handle = next(iter(tools.results))
    answers.append(tools.result_rows(handle, offset=10, limit=100))

    for answer in answers:
        assert len(answer) <= tools.describe_max_chars
    assert "(10,000,004 chars)" in tools.sparql_select("SELECT ?l WHERE { ex:Big rdfs:label ?l }")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(max_size=200),
    number=st.one_of(st.integers(-(10**6), 10**6), st.text(max_size=5), st.none(), st.floats()),
)
def test_tools_never_raise_and_stay_bounded_on_arbitrary_input(
    demo_tools: OntologyTools, text: str, number: object
) -> None:
    calls = [
        lambda: demo_tools.search_entity(text, number),  # type: ignore[arg-type]
        lambda: demo_tools.describe_entity(text, number),  # type: ignore[arg-type]
        lambda: demo_tools.sparql_select(text, number),  # type: ignore[arg-type]
        lambda: demo_tools.sparql_select("SELECT ?s WHERE { ?s ?p ?o }", number),  # type: ignore[arg-type]
        lambda: demo_tools.result_rows(text, number),  # type: ignore[arg-type]
    ]
    for call in calls:
        answer = call()
        assert isinstance(answer, str)
        assert answer
        assert len(answer) <= demo_tools.describe_max_chars


def test_non_string_arguments_are_reported_not_raised(demo_tools: OntologyTools) -> None:
    assert demo_tools.search_entity(42) == "Error: text must be a string, got int"  # type: ignore[arg-type]
    assert demo_tools.sparql_select(None).startswith("Error: query must be a string")  # type: ignore[arg-type]
    assert demo_tools.search_entity("roast", limit="many").startswith(  # type: ignore[arg-type]
        "Error: limit must be an integer"
    )
