"""The bundled demo ontology is complete enough to demo with: labelled, commented, connected."""

from __future__ import annotations

from rdflib import OWL, RDF, RDFS, URIRef

from rlm_core._demo import DEMO_ONTOLOGY
from rlm_core.ontology import LoadedOntology

COFFEE = "https://example.org/rlm-core/coffee#"


def named_entities(demo: LoadedOntology) -> set[URIRef]:
    return {s for s in demo.graph.subjects() if isinstance(s, URIRef) and s.startswith(COFFEE)}


def test_demo_file_ships_inside_the_package() -> None:
    assert DEMO_ONTOLOGY.is_file()
    assert DEMO_ONTOLOGY.parent.parent.parent.name == "rlm_core"


def test_every_entity_has_an_english_label_and_comment(demo: LoadedOntology) -> None:
    for entity in named_entities(demo):
        labels = list(demo.graph.objects(entity, RDFS.label))
        comments = list(demo.graph.objects(entity, RDFS.comment))
        assert len(labels) == 1, entity
        assert len(comments) == 1, entity
        assert labels[0].language == comments[0].language == "en", entity


def test_every_property_has_a_domain_and_range_or_an_inverse(demo: LoadedOntology) -> None:
    for kind in (OWL.ObjectProperty, OWL.DatatypeProperty):
        for prop in demo.graph.subjects(RDF.type, kind):
            has_signature = (prop, RDFS.domain, None) in demo.graph and (
                prop,
                RDFS.range,
                None,
            ) in demo.graph
            assert has_signature or (prop, OWL.inverseOf, None) in demo.graph, prop


def test_individuals_only_use_declared_classes_and_properties(demo: LoadedOntology) -> None:
    declared = set(demo.graph.subjects(RDF.type, OWL.Class))
    properties = set(demo.graph.subjects(RDF.type, OWL.ObjectProperty)) | set(
        demo.graph.subjects(RDF.type, OWL.DatatypeProperty)
    )
    for subject, predicate, obj in demo.graph:
        if predicate == RDF.type and str(obj).startswith(COFFEE):
            assert obj in declared, (subject, obj)
        if str(predicate).startswith(COFFEE):
            assert predicate in properties, predicate


def test_demo_has_hierarchies_and_owl_features(demo: LoadedOntology) -> None:
    graph = demo.graph
    assert (URIRef(COFFEE + "Cappuccino"), RDFS.subClassOf, URIRef(COFFEE + "MilkDrink")) in graph
    assert (URIRef(COFFEE + "MilkDrink"), RDFS.subClassOf, URIRef(COFFEE + "Beverage")) in graph
    assert len(set(graph.subjects(OWL.inverseOf, None))) == 2
    assert len(set(graph.subjects(OWL.disjointWith, None))) == 3
    assert len(named_entities(demo)) > 90
