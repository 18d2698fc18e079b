from __future__ import annotations

import pytest
from rdflib import RDFS, Graph, Literal, Namespace

from rlm_core.ontology import LoadedOntology, build_sense_card
from rlm_core.ontology.render import ELLIPSIS

EX = Namespace("http://example.org/plain#")


def test_demo_card_states_name_title_counts_and_formalism(demo: LoadedOntology) -> None:
    card = build_sense_card(demo)

    assert len(card) <= 1000
    assert card.startswith("Ontology: coffee <https://example.org/rlm-core/coffee>")
    assert "Coffee roasting and brewing" in card
    assert "About: A small ontology of the coffee chain" in card
    assert f"{demo.triples:,} triples" in card
    assert "41 classes, 20 object properties, 10 datatype properties, 32 individuals" in card
    assert "Formalism: OWL; features: restrictions 1" in card
    assert "coffee: <https://example.org/rlm-core/coffee#>" in card
    assert "Labels: rdfs:label" in card
    assert "Descriptions: rdfs:comment" in card


def test_demo_card_names_key_classes_and_properties(demo: LoadedOntology) -> None:
    card = build_sense_card(demo, max_chars=3000)

    assert "Key classes: coffee:Beverage (coffee beverage), coffee:Process" in card
    assert "Key properties: coffee:hasFlavourNote" in card
    assert "disjointWith 3" in card
    assert "inverseOf 2" in card
    assert "TransitiveProperty 1" in card


def test_sparql_templates_use_the_ontologys_prefixes(demo: LoadedOntology) -> None:
    card = build_sense_card(demo, max_chars=3000)

    assert "SELECT ?class ?label WHERE { ?class a owl:Class ; rdfs:label ?label }" in card
    assert "coffee:Beverage rdfs:subClassOf* ?d" in card
    assert "?sub rdfs:subClassOf+ coffee:Beverage" in card


def test_prov_card_is_bounded_and_mentions_activity(prov: LoadedOntology) -> None:
    card = build_sense_card(prov)

    assert len(card) <= 1000
    assert "prov:Activity" in card
    assert "prov: <http://www.w3.org/ns/prov#>" in card
    assert "W3C PROVenance Interchange" in card
    assert "propertyChainAxiom" in build_sense_card(prov, max_chars=3000)


def test_sio_card_shows_labels_of_opaque_ids_and_owl_features(sio: LoadedOntology) -> None:
    card = build_sense_card(sio)

    assert len(card) <= 1000
    assert "Semanticscience Integrated Ontology (SIO)" in card
    assert "sio:SIO_000000 (entity)" in card
    assert "restrictions 524" in card
    assert "dct:description" in card  # SIO describes with dcterms, not rdfs:comment


def test_generated_prefixes_are_replaced_by_conventional_ones(sio: LoadedOntology) -> None:
    card = build_sense_card(sio, max_chars=4000)

    assert "skos: <http://www.w3.org/2004/02/skos/core#>" in card
    assert "ns2:" not in card


@pytest.mark.parametrize("max_chars", [40, 120, 300, 600, 1000, 2000])
def test_card_never_exceeds_max_chars_and_marks_cuts(prov: LoadedOntology, max_chars: int) -> None:
    card = build_sense_card(prov, max_chars=max_chars)

    assert len(card) <= max_chars
    if len(build_sense_card(prov, max_chars=100_000)) > max_chars:
        assert card.endswith(ELLIPSIS)
    assert all(line for line in card.splitlines())


def test_shrinking_drops_list_items_before_whole_lines(prov: LoadedOntology) -> None:
    card = build_sense_card(prov, max_chars=1000)

    assert "SPARQL (prefixes above are pre-bound):" in card
    assert f", {ELLIPSIS}" in card  # some list lost its tail, marked


def test_rdfs_only_graph_is_described_as_rdfs() -> None:
    graph = Graph()
    graph.bind("ex", EX)
    graph.add((EX.Dog, RDFS.subClassOf, EX.Animal))
    graph.add((EX.Dog, RDFS.label, Literal("dog")))
    card = build_sense_card(LoadedOntology("plain", "/x/plain.ttl", graph, len(graph)))

    assert "Formalism: RDFS (no OWL constructs)" in card
    assert "Key classes: ex:Animal" in card
    assert "Ontology: plain" in card


def test_tiny_budget_is_refused_with_a_clear_message(demo: LoadedOntology) -> None:
    with pytest.raises(ValueError, match="at least 40"):
        build_sense_card(demo, max_chars=10)
