"""Bounded text for the model: RDF terms as it should write them back, and output clipping.

Everything a tool returns passes through here, so no literal, class expression or listing can
make a tool answer longer than its budget, and any cut is marked rather than silent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rdflib import OWL, RDF, XSD, BNode, Graph, Literal, URIRef
from rdflib.term import Node

from rlm_core.ontology.prefixes import PrefixMap
from rlm_core.ontology.search import normalize

__all__ = ["ELLIPSIS", "TermRenderer", "clip_lines", "clip_text", "says_more"]

ELLIPSIS = "…"

_BARE_DATATYPES = frozenset(
    {XSD.integer, XSD.int, XSD.long, XSD.decimal, XSD.double, XSD.float, XSD.boolean}
)
_VALUE_RESTRICTIONS = (
    (OWL.someValuesFrom, "some"),
    (OWL.allValuesFrom, "only"),
    (OWL.hasValue, "value"),
)
_CARDINALITIES = (
    (OWL.minQualifiedCardinality, "min"),
    (OWL.maxQualifiedCardinality, "max"),
    (OWL.qualifiedCardinality, "exactly"),
    (OWL.minCardinality, "min"),
    (OWL.maxCardinality, "max"),
    (OWL.cardinality, "exactly"),
)
_MAX_DEPTH = 3
_MAX_LIST_ITEMS = 8


def clip_text(text: str, max_chars: int) -> str:
    """``text`` on one line, cut to ``max_chars`` with a visible ellipsis when longer."""
    head = text[: max_chars * 2 + 16]  # never split a multi-megabyte string just to cut it
    flat = " ".join(head.split())
    if len(flat) <= max_chars and len(head) == len(text):
        return flat
    return flat[: max(max_chars - 1, 0)] + ELLIPSIS


def says_more(label: str, name: str) -> bool:
    """Whether ``label`` tells a reader more than the prefixed ``name`` (``sio:SIO_000006``)."""
    return normalize(label) != normalize(name.rsplit(":", 1)[-1])


def clip_lines(lines: Sequence[str], max_chars: int, hint: str = "") -> str:
    """Whole lines up to ``max_chars`` in total; a final marker line says how many were left out."""
    text = "\n".join(lines)
    if len(text) <= max_chars:
        return text
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        marker = f"{ELLIPSIS} ({len(lines) - index} more lines not shown{hint})"
        if used + len(line) + 1 + len(marker) > max_chars:
            if not kept:  # even the first line is too long: cut it, visibly
                return clip_text(line, max(max_chars - len(marker) - 1, 1)) + "\n" + marker
            return "\n".join([*kept, marker])
        kept.append(line)
        used += len(line) + 1
    return "\n".join(kept)


class TermRenderer:
    """Shows RDF terms compactly: prefixed names, short literals, class expressions as text."""

    def __init__(
        self, graph: Graph, prefixes: PrefixMap, labels: Mapping[URIRef, str] | None = None
    ) -> None:
        self.graph = graph
        self.prefixes = prefixes
        self.labels: Mapping[URIRef, str] = labels or {}

    def labelled(self, node: Node | None, max_chars: int = 200) -> str:
        """Like ``term``, adding the label of a named entity when its name alone is opaque."""
        text = self.term(node, max_chars)
        label = self.labels.get(node) if isinstance(node, URIRef) else None
        if label and says_more(label, text):
            return f"{text} ({clip_text(label, 60)})"
        return text

    def term(self, node: Node | None, max_chars: int = 200) -> str:
        """One term as text no longer than ``max_chars`` (``-`` for an unbound value)."""
        if node is None:
            return "-"
        if isinstance(node, URIRef):
            text = self.prefixes.compact(str(node))
        elif isinstance(node, Literal):
            return self.literal(node, max_chars)
        elif isinstance(node, BNode):
            text = self._expression(node, 0)
        else:
            text = str(node)
        return clip_text(text, max_chars)

    def literal(self, value: Literal, max_chars: int = 200) -> str:
        """A literal with its language or datatype; long text is cut and its length given."""
        raw = str(value)
        text = clip_text(raw, max_chars)
        if len(raw) > max_chars:
            text += f" ({len(raw):,} chars)"
        if value.datatype in _BARE_DATATYPES:
            return text
        quoted = '"' + text.replace('"', '\\"') + '"'
        if value.language:
            return f"{quoted}@{value.language}"
        if value.datatype is not None and value.datatype != XSD.string:
            return f"{quoted}^^{self.prefixes.compact(str(value.datatype))}"
        return quoted

    def _expression(self, node: BNode, depth: int) -> str:
        """An OWL class expression or RDF list in a Manchester-like syntax; else ``[a Type]``."""
        if depth > _MAX_DEPTH:
            return f"[{ELLIPSIS}]"
        graph = self.graph
        on_property = graph.value(node, OWL.onProperty)
        if on_property is not None:
            return self._restriction(node, self._inner(on_property, depth), depth)
        for predicate, joiner in ((OWL.unionOf, " or "), (OWL.intersectionOf, " and ")):
            members = graph.value(node, predicate)
            if members is not None:
                return "(" + joiner.join(self._items(members, depth)) + ")"
        complement = graph.value(node, OWL.complementOf)
        if complement is not None:
            return "not " + self._inner(complement, depth)
        one_of = graph.value(node, OWL.oneOf)
        if one_of is not None:
            return "{" + ", ".join(self._items(one_of, depth)) + "}"
        if graph.value(node, RDF.first) is not None:
            return "(" + " ".join(self._items(node, depth)) + ")"
        node_type = graph.value(node, RDF.type)
        return f"[a {self._inner(node_type, depth)}]" if node_type is not None else "[]"

    def _restriction(self, node: BNode, prop: str, depth: int) -> str:
        for predicate, word in _VALUE_RESTRICTIONS:
            filler = self.graph.value(node, predicate)
            if filler is not None:
                return f"({prop} {word} {self._inner(filler, depth)})"
        for predicate, word in _CARDINALITIES:
            count = self.graph.value(node, predicate)
            if count is not None:
                qualifier = self.graph.value(node, OWL.onClass) or self.graph.value(
                    node, OWL.onDataRange
                )
                suffix = f" {self._inner(qualifier, depth)}" if qualifier is not None else ""
                return f"({prop} {word} {count}{suffix})"
        return f"(restriction on {prop})"

    def _inner(self, node: Node, depth: int) -> str:
        if isinstance(node, BNode):
            return self._expression(node, depth + 1)
        return self.term(node, 80)

    def _items(self, head: Node, depth: int) -> list[str]:
        """Members of an RDF list, at most ``_MAX_LIST_ITEMS``, safe against cyclic lists."""
        items: list[str] = []
        seen: set[Node] = set()
        node: Node | None = head
        while node is not None and node != RDF.nil and node not in seen:
            if len(items) == _MAX_LIST_ITEMS:
                items.append(ELLIPSIS)
                break
            seen.add(node)
            first = self.graph.value(node, RDF.first)
            if first is not None:
                items.append(self._inner(first, depth))
            node = self.graph.value(node, RDF.rest)
        return items
