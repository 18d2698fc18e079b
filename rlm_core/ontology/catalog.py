"""What each IRI of an ontology is (class, property, individual...) and what it is called.

Computed once per ontology, from a handful of indexed lookups and one pass over the triples, so
the sense card and every tool call can answer "what kind of thing is this" without a query.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping

from rdflib import DC, DCTERMS, FOAF, OWL, PROV, RDF, RDFS, SDO, SKOS, XSD, Graph, Literal, URIRef
from rdflib.term import Node

__all__ = [
    "DESCRIPTION_PREDICATES",
    "KINDS",
    "LABEL_PREDICATES",
    "EntityCatalog",
    "build_catalog",
]

_SCHEMA_HTTP = "http://schema.org/"
_OBO_DEFINITION = URIRef("http://purl.obolibrary.org/obo/IAO_0000115")

# Best first: the first of these an entity has is its label.
LABEL_PREDICATES: tuple[URIRef, ...] = (
    RDFS.label,
    SKOS.prefLabel,
    DCTERMS.title,
    DC.title,
    URIRef(_SCHEMA_HTTP + "name"),
    SDO.name,
    FOAF.name,
    SKOS.altLabel,
)
DESCRIPTION_PREDICATES: tuple[URIRef, ...] = (
    RDFS.comment,
    SKOS.definition,
    _OBO_DEFINITION,
    PROV.definition,
    DCTERMS.description,
    DC.description,
    URIRef(_SCHEMA_HTTP + "description"),
    SDO.description,
    SKOS.scopeNote,
)

# Highest priority first: an IRI that is both a class and an individual (punning) is a class.
KINDS: tuple[str, ...] = (
    "ontology",
    "class",
    "object property",
    "datatype property",
    "annotation property",
    "property",
    "datatype",
    "individual",
)

_TYPE_KINDS: Mapping[Node, str] = {
    OWL.Ontology: "ontology",
    OWL.Class: "class",
    RDFS.Class: "class",
    OWL.ObjectProperty: "object property",
    OWL.DatatypeProperty: "datatype property",
    OWL.AnnotationProperty: "annotation property",
    RDF.Property: "property",
    OWL.FunctionalProperty: "property",
    OWL.InverseFunctionalProperty: "object property",
    OWL.TransitiveProperty: "object property",
    OWL.SymmetricProperty: "object property",
    OWL.AsymmetricProperty: "object property",
    OWL.ReflexiveProperty: "object property",
    OWL.IrreflexiveProperty: "object property",
    RDFS.Datatype: "datatype",
}
# Types that describe the schema itself; anything typed otherwise is an individual.
_SCHEMA_TYPES = frozenset(_TYPE_KINDS) | {
    OWL.Restriction,
    OWL.AllDisjointClasses,
    OWL.AllDisjointProperties,
    OWL.AllDifferent,
    OWL.Axiom,
    OWL.NegativePropertyAssertion,
    OWL.DeprecatedClass,
    OWL.DeprecatedProperty,
    RDF.List,
    RDF.Statement,
}
# Labels are for display and search; a pathological multi-megabyte label is cut to this.
_MAX_LABEL_CHARS = 300
_DATATYPE_TERMS = frozenset({RDFS.Literal, RDF.langString, RDF.PlainLiteral, RDF.XMLLiteral})


@dataclasses.dataclass(frozen=True)
class EntityCatalog:
    """Kinds, labels and usage counts of the named entities of one graph."""

    kinds: Mapping[URIRef, str]
    labels: Mapping[URIRef, str]
    subjects: frozenset[URIRef]
    predicate_counts: Counter[Node]
    type_counts: Counter[Node]

    def kind(self, iri: Node) -> str:
        """The kind of ``iri`` (one of ``KINDS``), or ``"entity"`` when the graph does not say."""
        return self.kinds.get(iri, "entity") if isinstance(iri, URIRef) else "entity"

    def label(self, iri: Node) -> str | None:
        """The preferred label of ``iri`` (English or untagged first), if it has one."""
        return self.labels.get(iri) if isinstance(iri, URIRef) else None

    def defined(self, kind: str) -> list[URIRef]:
        """Entities of ``kind`` that this graph says something about, in IRI order."""
        return sorted(iri for iri, k in self.kinds.items() if k == kind and iri in self.subjects)


def build_catalog(graph: Graph) -> EntityCatalog:
    """Classify and label every named entity of ``graph``."""
    predicate_counts: Counter[Node] = Counter()
    subjects: set[URIRef] = set()
    for subject, predicate, _obj in graph:
        predicate_counts[predicate] += 1
        if isinstance(subject, URIRef):
            subjects.add(subject)
    type_counts: Counter[Node] = Counter(graph.objects(None, RDF.type))
    return EntityCatalog(
        kinds=_classify(graph, predicate_counts),
        labels=_best_labels(graph),
        subjects=frozenset(subjects),
        predicate_counts=predicate_counts,
        type_counts=type_counts,
    )


def _classify(graph: Graph, predicate_counts: Counter[Node]) -> dict[URIRef, str]:
    rank = {kind: index for index, kind in enumerate(KINDS)}
    kinds: dict[URIRef, str] = {}

    def assign(terms: Iterable[Node], kind: str) -> None:
        for term in terms:
            if isinstance(term, URIRef):
                current = kinds.get(term)
                if current is None or rank[kind] < rank[current]:
                    kinds[term] = kind

    for subject, rdf_type in graph.subject_objects(RDF.type):
        kind = _TYPE_KINDS.get(rdf_type)
        if kind is not None:
            assign([subject], kind)
        elif rdf_type not in _SCHEMA_TYPES:
            assign([subject], "individual")
            assign([rdf_type], "class")
    assign(predicate_counts, "property")
    for predicate in (RDFS.domain, RDFS.range, RDFS.subPropertyOf):
        assign(graph.subjects(predicate, None), "property")
    # Only object properties have inverses and chains in OWL 2.
    assign(graph.subjects(OWL.inverseOf, None), "object property")
    assign(graph.objects(None, OWL.inverseOf), "object property")
    assign(graph.subjects(OWL.propertyChainAxiom, None), "object property")
    assign(graph.objects(None, OWL.onProperty), "property")
    assign(graph.objects(None, RDFS.subPropertyOf), "property")
    for predicate in (RDFS.subClassOf, OWL.equivalentClass, OWL.disjointWith):
        assign(graph.subjects(predicate, None), "class")
        assign(graph.objects(None, predicate), "class")
    assign(graph.objects(None, RDFS.domain), "class")
    for obj in graph.objects(None, RDFS.range):
        is_datatype = obj in _DATATYPE_TERMS or str(obj).startswith(str(XSD))
        assign([obj], "datatype" if is_datatype else "class")
    return kinds


def _best_labels(graph: Graph) -> dict[URIRef, str]:
    best: dict[URIRef, tuple[int, int, str]] = {}
    for priority, predicate in enumerate(LABEL_PREDICATES):
        for subject, value in graph.subject_objects(predicate):
            if not isinstance(subject, URIRef) or not isinstance(value, Literal):
                continue
            text = " ".join(str(value)[:_MAX_LABEL_CHARS].split())
            language = (value.language or "en").lower()
            candidate = (priority, 0 if language.startswith("en") else 1, text)
            if text and (subject not in best or candidate < best[subject]):
                best[subject] = candidate
    return {subject: text for subject, (_p, _l, text) in best.items()}
