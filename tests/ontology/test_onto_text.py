"""Prefix table and text rendering: what the model reads must be valid SPARQL and bounded."""

from __future__ import annotations

from rdflib import OWL, RDF, RDFS, XSD, BNode, Graph, Literal, Namespace, URIRef
from rdflib.collection import Collection

from rlm_core.ontology.prefixes import PrefixMap
from rlm_core.ontology.render import ELLIPSIS, TermRenderer, clip_lines, clip_text

EX = Namespace("http://example.org/onto#")
SKOS_NS = "http://www.w3.org/2004/02/skos/core#"


def graph_with(*bindings: tuple[str, str]) -> Graph:
    graph = Graph(bind_namespaces="core")
    for prefix, namespace in bindings:
        graph.bind(prefix, namespace)
    return graph


def test_file_prefixes_are_kept_and_generated_ones_renamed() -> None:
    prefixes = PrefixMap.from_graph(graph_with(("ex", str(EX)), ("ns2", SKOS_NS)), "onto")

    assert prefixes.compact(str(EX.Thing)) == "ex:Thing"
    assert prefixes.compact(SKOS_NS + "exactMatch") == "skos:exactMatch"
    assert prefixes.expand("ns2:exactMatch") == URIRef(SKOS_NS + "exactMatch")  # still works


def test_empty_prefix_namespace_is_named_after_the_ontology() -> None:
    prefixes = PrefixMap.from_graph(graph_with(("", str(EX))), "DUL")

    assert prefixes.compact(str(EX.Agent)) == "dul:Agent"
    assert prefixes.expand(":Agent") == EX.Agent
    assert prefixes.expand("dul:Agent") == EX.Agent


def test_well_known_prefixes_are_offered_when_free() -> None:
    prefixes = PrefixMap.from_graph(graph_with(("prov", "http://example.org/not-prov#")), "x")

    assert prefixes.namespaces["prov"] == "http://example.org/not-prov#"  # the file wins
    assert prefixes.namespaces["skos"] == SKOS_NS


def test_iris_that_are_not_valid_prefixed_names_stay_full() -> None:
    prefixes = PrefixMap.from_graph(graph_with(("ex", str(EX))), "x")

    assert prefixes.compact(str(EX) + "a/b") == f"<{EX}a/b>"
    assert prefixes.compact(str(EX) + "-lead") == f"<{EX}-lead>"
    assert prefixes.compact("http://elsewhere.org/x") == "<http://elsewhere.org/x>"
    assert prefixes.expand("unknown:x") is None


def test_clip_text_marks_cuts_and_flattens_whitespace() -> None:
    assert clip_text("a  b\nc", 10) == "a b c"
    assert clip_text("x" * 50, 10) == "x" * 9 + ELLIPSIS
    assert len(clip_text("y\n" * 5_000_000, 200)) == 200


def test_clip_lines_keeps_whole_lines_and_counts_the_rest() -> None:
    lines = [f"line {i}" for i in range(100)]
    text = clip_lines(lines, 100)

    assert len(text) <= 100
    assert text.splitlines()[0] == "line 0"
    assert text.splitlines()[-1].startswith(f"{ELLIPSIS} (")
    assert "more lines not shown" in text
    assert clip_lines(["short"], 100) == "short"
    assert len(clip_lines(["z" * 1000, "b"], 100)) <= 100


def test_literals_show_language_datatype_and_length_when_cut() -> None:
    render = TermRenderer(Graph(), PrefixMap.from_graph(graph_with(), "x"))

    assert render.term(Literal("chat", lang="fr")) == '"chat"@fr'
    assert render.term(Literal(42)) == "42"
    assert render.term(Literal("2024-01-02", datatype=XSD.date)) == '"2024-01-02"^^xsd:date'
    assert render.term(Literal('say "hi"')) == '"say \\"hi\\""'
    long = render.term(Literal("w" * 1000), 50)
    assert long.startswith('"' + "w" * 49 + ELLIPSIS + ' (1,000 chars)"')
    assert render.term(None) == "-"


def test_class_expressions_read_like_manchester_syntax() -> None:
    graph = graph_with(("ex", str(EX)))
    restriction, union, members = BNode(), BNode(), BNode()
    graph.add((restriction, RDF.type, OWL.Restriction))
    graph.add((restriction, OWL.onProperty, EX.hasPart))
    graph.add((restriction, OWL.someValuesFrom, union))
    graph.add((union, OWL.unionOf, members))
    Collection(graph, members, [EX.Wheel, EX.Pedal])
    counted = BNode()
    graph.add((counted, OWL.onProperty, EX.hasPart))
    graph.add((counted, OWL.minQualifiedCardinality, Literal(2)))
    graph.add((counted, OWL.onClass, EX.Wheel))
    render = TermRenderer(graph, PrefixMap.from_graph(graph, "x"))

    assert render.term(restriction) == "(ex:hasPart some (ex:Wheel or ex:Pedal))"
    assert render.term(counted) == "(ex:hasPart min 2 ex:Wheel)"


def test_cyclic_lists_do_not_hang_the_renderer() -> None:
    graph = Graph()
    head, tail = BNode(), BNode()
    graph.add((head, RDF.first, EX.a))
    graph.add((head, RDF.rest, tail))
    graph.add((tail, RDF.first, EX.b))
    graph.add((tail, RDF.rest, head))
    render = TermRenderer(graph, PrefixMap.from_graph(graph_with(("ex", str(EX))), "x"))

    assert render.term(head) == "(ex:a ex:b)"


def test_labelled_adds_labels_only_where_names_are_opaque() -> None:
    prefixes = PrefixMap.from_graph(graph_with(("ex", str(EX))), "x")
    render = TermRenderer(Graph(), prefixes, {EX.SIO_000006: "process", EX.hasPart: "has part"})

    assert render.labelled(EX.SIO_000006) == "ex:SIO_000006 (process)"
    assert render.labelled(EX.hasPart) == "ex:hasPart"
    assert render.labelled(RDFS.label) == "rdfs:label"
