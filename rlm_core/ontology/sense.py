"""The sense card: a short, computed orientation to an ontology for the model's first prompt.

No LLM is involved: every line is counted or looked up in the graph, so the card is cheap,
deterministic and cannot invent a class. It is bounded by ``max_chars``; long lists lose their
tail items first (marked ``…``), then whole trailing lines go, replaced by a final ``…`` line.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator

from rdflib import DC, DCTERMS, OWL, RDF, RDFS, SKOS, BNode, Literal, URIRef
from rdflib.term import Node

from rlm_core.ontology.catalog import (
    DESCRIPTION_PREDICATES,
    LABEL_PREDICATES,
    EntityCatalog,
    build_catalog,
)
from rlm_core.ontology.loading import LoadedOntology
from rlm_core.ontology.prefixes import WELL_KNOWN_NAMESPACES, PrefixMap
from rlm_core.ontology.render import ELLIPSIS, TermRenderer, clip_text, says_more

__all__ = ["build_sense_card"]

_TITLE_PREDICATES = (DCTERMS.title, DC.title, RDFS.label, SKOS.prefLabel)
_ABOUT_PREDICATES = (DCTERMS.description, DC.description, RDFS.comment, SKOS.definition)
_SCHEMA_NAMESPACES = frozenset(
    WELL_KNOWN_NAMESPACES[prefix] for prefix in ("rdf", "rdfs", "owl", "xsd")
)
# (label in the card, predicate or type whose use is counted)
_OWL_FEATURES: tuple[tuple[str, URIRef], ...] = (
    ("restrictions", OWL.Restriction),
    ("someValuesFrom", OWL.someValuesFrom),
    ("allValuesFrom", OWL.allValuesFrom),
    ("hasValue", OWL.hasValue),
    ("cardinality", OWL.cardinality),
    ("qualifiedCardinality", OWL.qualifiedCardinality),
    ("minCardinality", OWL.minCardinality),
    ("maxCardinality", OWL.maxCardinality),
    ("equivalentClass", OWL.equivalentClass),
    ("disjointWith", OWL.disjointWith),
    ("AllDisjointClasses", OWL.AllDisjointClasses),
    ("inverseOf", OWL.inverseOf),
    ("propertyChainAxiom", OWL.propertyChainAxiom),
    ("unionOf", OWL.unionOf),
    ("intersectionOf", OWL.intersectionOf),
    ("complementOf", OWL.complementOf),
    ("oneOf", OWL.oneOf),
    ("equivalentProperty", OWL.equivalentProperty),
    ("hasKey", OWL.hasKey),
    ("imports", OWL.imports),
    ("TransitiveProperty", OWL.TransitiveProperty),
    ("SymmetricProperty", OWL.SymmetricProperty),
    ("FunctionalProperty", OWL.FunctionalProperty),
    ("InverseFunctionalProperty", OWL.InverseFunctionalProperty),
)
_CLASS_TARGETS = (
    RDFS.domain,
    RDFS.range,
    RDFS.subClassOf,
    OWL.someValuesFrom,
    OWL.allValuesFrom,
)
_COUNTED_KINDS = (
    ("class", "classes"),
    ("object property", "object properties"),
    ("datatype property", "datatype properties"),
    ("annotation property", "annotation properties"),
    ("property", "other properties"),
    ("individual", "individuals"),
)
_MAX_TITLE_CHARS = 100
_MAX_ABOUT_CHARS = 120
_MAX_ITEMS = 8
_MIN_CHARS = 40


@dataclasses.dataclass
class _Line:
    """One card line: ``head`` then ``items``, of which the last ones can be dropped to fit."""

    head: str
    items: list[str] = dataclasses.field(default_factory=list)
    min_items: int = 1
    separator: str = ", "
    shown: int = -1

    def __post_init__(self) -> None:
        self.shown = len(self.items)

    def render(self) -> str:
        if not self.items:
            return self.head
        tail = [ELLIPSIS] if self.shown < len(self.items) else []
        return self.head + self.separator.join(self.items[: self.shown] + tail)

    def width(self) -> int:
        """Length of the longest physical line: multi-line blocks are not "wide"."""
        return max(len(part) for part in self.render().split("\n"))

    def can_shrink(self) -> bool:
        return self.shown > self.min_items


def build_sense_card(onto: LoadedOntology, max_chars: int = 1000) -> str:
    """A plain-text summary of ``onto`` of at most ``max_chars`` (>= 40) characters."""
    if max_chars < _MIN_CHARS:
        raise ValueError(f"max_chars must be at least {_MIN_CHARS}, got {max_chars}")
    catalog = build_catalog(onto.graph)
    prefixes = PrefixMap.from_graph(onto.graph, onto.name)
    lines = _Card(onto, catalog, prefixes).lines()
    return _fit(lines, max_chars)


class _Card:
    """Computes the card's lines; one method per line keeps each fact's source visible."""

    def __init__(self, onto: LoadedOntology, catalog: EntityCatalog, prefixes: PrefixMap) -> None:
        self.onto = onto
        self.graph = onto.graph
        self.catalog = catalog
        self.prefixes = prefixes
        self.render = TermRenderer(onto.graph, prefixes)
        self.header = self._ontology_header()
        self.key_classes = self._key_classes()

    def lines(self) -> list[_Line]:
        lines = [self._title(), self._about(), self._size(), self._namespaces()]
        lines += [self._formalism(), self._label_predicates(), self._description_predicates()]
        lines += [self._classes(), self._properties()]
        lines += [_Line("SPARQL (prefixes above are pre-bound):\n  ", self._templates(), 2, "\n  ")]
        return [line for line in lines if line.head or line.items]

    def _ontology_header(self) -> Node | None:
        """The owl:Ontology node with the most annotations (a file may declare several)."""
        headers = list(self.graph.subjects(RDF.type, OWL.Ontology))
        if not headers:
            return None
        return max(
            headers, key=lambda node: (len(list(self.graph.triples((node, None, None)))), str(node))
        )

    def _first_text(self, predicates: tuple[URIRef, ...]) -> str | None:
        if self.header is None:
            return None
        for predicate in predicates:
            values = [
                v for v in self.graph.objects(self.header, predicate) if isinstance(v, Literal)
            ]
            english = [v for v in values if (v.language or "en").startswith("en")]
            if english or values:
                return str((english or values)[0])
        return None

    def _title(self) -> _Line:
        text = f"Ontology: {self.onto.name}"
        if isinstance(self.header, URIRef):
            text += f" <{self.header}>"
        title = self._first_text(_TITLE_PREDICATES)
        if title:
            text += " — " + clip_text(title, _MAX_TITLE_CHARS)
        return _Line(text)

    def _about(self) -> _Line:
        about = self._first_text(_ABOUT_PREDICATES)
        return _Line("About: " + clip_text(about, _MAX_ABOUT_CHARS) if about else "")

    def _size(self) -> _Line:
        parts = [f"{self.onto.triples:,} triples"]
        for kind, plural in _COUNTED_KINDS:
            count = len(self.catalog.defined(kind))
            if count or kind == "class":
                parts.append(f"{count:,} {kind if count == 1 else plural}")
        return _Line("Size: " + ", ".join(parts))

    def _namespaces(self) -> _Line:
        per_namespace: Counter[str] = Counter()
        for subject in self.catalog.subjects:
            parts = self.prefixes.split(str(subject))
            if parts is not None:
                per_namespace[parts[0]] += 1
        items = [
            f"{prefix}: <{self.prefixes.namespaces[prefix]}> ({count:,})"
            for prefix, count in per_namespace.most_common(_MAX_ITEMS)
            if self.prefixes.namespaces.get(prefix) not in _SCHEMA_NAMESPACES
        ]
        return _Line("Namespaces (entities): ", items) if items else _Line("")

    def _formalism(self) -> _Line:
        used = self.catalog.predicate_counts
        types = self.catalog.type_counts
        features = [
            f"{name} {used[term] + types[term]:,}"
            for name, term in _OWL_FEATURES
            if used[term] + types[term]
        ]
        owl = any(str(term).startswith(str(OWL)) for term in (*used, *types))
        if owl:
            return _Line("Formalism: OWL; features: ", features or ["none beyond declarations"])
        rdfs = any(used[p] for p in (RDFS.subClassOf, RDFS.domain, RDFS.range)) or types[RDFS.Class]
        if rdfs:
            return _Line("Formalism: RDFS (no OWL constructs)")
        skos = types[SKOS.Concept] or used[SKOS.broader]
        return _Line("Formalism: SKOS vocabulary" if skos else "Formalism: plain RDF")

    def _label_predicates(self) -> _Line:
        counts = self.catalog.predicate_counts
        items = [
            f"{self.prefixes.compact(str(p))} {counts[p]:,}"
            + _languages(self.graph.objects(None, p))
            for p in LABEL_PREDICATES
            if counts[p]
        ]
        return _Line("Labels: ", items) if items else _Line("Labels: none (use local names)")

    def _description_predicates(self) -> _Line:
        counts = self.catalog.predicate_counts
        items = [
            f"{self.prefixes.compact(str(p))} {counts[p]:,}"
            for p in DESCRIPTION_PREDICATES
            if counts[p]
        ]
        return _Line("Descriptions: ", items) if items else _Line("")

    def _key_classes(self) -> list[URIRef]:
        score: Counter[URIRef] = Counter()
        for predicate in _CLASS_TARGETS:
            for target in self.graph.objects(None, predicate):
                for member in self._named_members(target):
                    if self.catalog.kind(member) == "class" and not _is_builtin(member):
                        score[member] += 1
        ranked = sorted(score.items(), key=lambda item: (-item[1], str(item[0])))
        return [cls for cls, _count in ranked[:_MAX_ITEMS]]

    def _named_members(self, node: Node) -> list[URIRef]:
        """``node`` itself, or the named classes of a union/intersection."""
        if isinstance(node, URIRef):
            return [node]
        if isinstance(node, BNode):
            for predicate in (OWL.unionOf, OWL.intersectionOf):
                members = self.graph.value(node, predicate)
                if members is not None:
                    return [m for m in self.graph.items(members) if isinstance(m, URIRef)]
        return []

    def _named(self, iri: URIRef, extra: str = "") -> str:
        """The prefixed name, with the label when the name alone does not say it, and ``extra``."""
        name = self.prefixes.compact(str(iri))
        label = self.catalog.label(iri)
        notes = [extra] if extra else []
        if label and says_more(label, name):
            notes.insert(0, clip_text(label, 40))
        return f"{name} ({'; '.join(notes)})" if notes else name

    def _classes(self) -> _Line:
        items = [self._named(cls) for cls in self.key_classes]
        return _Line("Key classes: ", items, min_items=3) if items else _Line("")

    def _properties(self) -> _Line:
        ranked = sorted(self._property_scores().items(), key=lambda item: (-item[1], str(item[0])))
        items = []
        for prop, _score in ranked[:_MAX_ITEMS]:
            domain = self.graph.value(prop, RDFS.domain)
            range_ = self.graph.value(prop, RDFS.range)
            signature = ""
            if domain is not None or range_ is not None:
                signature = f"{self.render.term(domain, 40)} → {self.render.term(range_, 40)}"
            items.append(self._named(prop, signature))
        return _Line("Key properties: ", items) if items else _Line("")

    def _property_scores(self) -> Counter[URIRef]:
        """Declared object/datatype properties, weighted by use in data, axioms and signatures."""
        scores: Counter[URIRef] = Counter()
        for kind in ("object property", "datatype property"):
            for declared in self.catalog.defined(kind):
                if not _is_builtin(declared):
                    scores[declared] = self.catalog.predicate_counts[declared] + 1
        mentions = [
            *self.graph.objects(None, OWL.onProperty),
            *self.graph.objects(None, RDFS.subPropertyOf),
            *self.graph.subjects(RDFS.domain, None),
            *self.graph.subjects(RDFS.range, None),
        ]
        for mentioned in mentions:
            if isinstance(mentioned, URIRef) and mentioned in scores:
                scores[mentioned] += 1
        return scores

    def _templates(self) -> list[str]:
        compact = self.prefixes.compact
        owl = self.catalog.type_counts[OWL.Class] > 0
        class_type = compact(str(OWL.Class if owl else RDFS.Class))
        label = next(
            (compact(str(p)) for p in LABEL_PREDICATES if self.catalog.predicate_counts[p]), None
        )
        label_part = f" ; {label} ?label" if label else ""
        label_var = " ?label" if label else ""
        templates = [f"SELECT ?class{label_var} WHERE {{ ?class a {class_type}{label_part} }}"]
        if not self.key_classes:
            return templates
        key = compact(str(self.key_classes[0]))
        sub = compact(str(RDFS.subClassOf))
        if self.catalog.predicate_counts[RDFS.domain]:
            templates.append(
                f"SELECT ?p ?range WHERE {{ ?p {compact(str(RDFS.domain))} ?d ; "
                f"{compact(str(RDFS.range))} ?range . {key} {sub}* ?d }}"
            )
        elif self.catalog.type_counts[OWL.Restriction]:
            templates.append(
                f"SELECT ?p ?filler WHERE {{ {key} {sub} ?r . ?r {compact(str(OWL.onProperty))} ?p"
                f" ; {compact(str(OWL.someValuesFrom))} ?filler }}"
            )
        templates.append(f"SELECT ?sub{label_var} WHERE {{ ?sub {sub}+ {key}{label_part} }}")
        return templates


def _languages(values: Iterator[Node]) -> str:
    """`` [en, fr]``: the language tags of label literals, most common first, at most three."""
    tags: Counter[str] = Counter(
        v.language for v in values if isinstance(v, Literal) and v.language
    )
    return f" [{', '.join(tag for tag, _n in tags.most_common(3))}]" if tags else ""


def _is_builtin(iri: URIRef) -> bool:
    return any(str(iri).startswith(namespace) for namespace in _SCHEMA_NAMESPACES)


def _fit(lines: list[_Line], max_chars: int) -> str:
    """Join lines within ``max_chars``: trim the longest lists first, then drop trailing lines."""
    while len(_joined(lines)) > max_chars and any(line.can_shrink() for line in lines):
        widest = max((line for line in lines if line.can_shrink()), key=_Line.width)
        widest.shown -= 1
    rendered = [line.render() for line in lines]
    if len("\n".join(rendered)) <= max_chars:
        return "\n".join(rendered)
    marker = "\n" + ELLIPSIS
    while len(rendered) > 1 and len("\n".join(rendered)) + len(marker) > max_chars:
        rendered.pop()
    text = "\n".join(rendered)
    if len(text) + len(marker) > max_chars:  # the first line alone is too long
        text = text[: max_chars - len(marker) - 1] + ELLIPSIS
    return text + marker


def _joined(lines: list[_Line]) -> str:
    return "\n".join(line.render() for line in lines)
