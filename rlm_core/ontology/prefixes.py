"""The prefix table the model sees: the file's own prefixes, readable names for the rest.

Files often bind well-known vocabularies to generated prefixes (``ns2:`` for SKOS in SIO) or put
the ontology's own terms under the empty prefix. A model reads and writes ``skos:exactMatch`` and
``dul:Agent`` far more reliably, so those get conventional names; the file's prefixes still work.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from rdflib import Graph, URIRef

__all__ = ["WELL_KNOWN_NAMESPACES", "PrefixMap"]

# Conventional prefixes, used for namespaces the file leaves unnamed or names with a generated
# prefix, and offered in SPARQL whenever the file does not use the prefix for something else.
WELL_KNOWN_NAMESPACES: Mapping[str, str] = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "dcterms": "http://purl.org/dc/terms/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "prov": "http://www.w3.org/ns/prov#",
    "schema": "http://schema.org/",
    "void": "http://rdfs.org/ns/void#",
    "vann": "http://purl.org/vocab/vann/",
    "dcat": "http://www.w3.org/ns/dcat#",
    "sh": "http://www.w3.org/ns/shacl#",
    "time": "http://www.w3.org/2006/time#",
    "obo": "http://purl.obolibrary.org/obo/",
    "oboInOwl": "http://www.geneontology.org/formats/oboInOwl#",
}
_GENERATED_PREFIX = re.compile(r"(ns|default)\d*|j\.\d+")
_PREFIX_SYNTAX = re.compile(r"[A-Za-z][\w.-]*")
# A conservative subset of SPARQL's PN_LOCAL: names outside it are shown as <full IRIs>.
_LOCAL_SYNTAX = re.compile(r"\w([\w.-]*[\w-])?")


class PrefixMap:
    """Prefix <-> namespace table used to show IRIs compactly and to pre-bind SPARQL prefixes."""

    def __init__(self, namespaces: Mapping[str, str], preferred: Mapping[str, str]) -> None:
        self.namespaces: Mapping[str, str] = dict(namespaces)
        self._preferred = dict(preferred)
        self._longest_first = sorted(self._preferred, key=len, reverse=True)

    @classmethod
    def from_graph(cls, graph: Graph, name: str) -> PrefixMap:
        """Prefixes of ``graph``; ``name`` (the ontology's) names an empty-prefix namespace."""
        namespaces: dict[str, str] = {}
        preferred: dict[str, str] = {}
        renamed: list[tuple[str, str]] = []
        for prefix, bound in sorted(graph.namespaces()):
            if prefix and not _GENERATED_PREFIX.fullmatch(prefix):
                namespaces[prefix] = str(bound)
                preferred.setdefault(str(bound), prefix)
            else:
                renamed.append((prefix, str(bound)))
        known = {namespace: prefix for prefix, namespace in WELL_KNOWN_NAMESPACES.items()}
        own_name = re.sub(r"\W", "", name).lower()
        for prefix, namespace in renamed:
            namespaces[prefix] = namespace
            if namespace in preferred:
                continue
            readable = known.get(namespace) or (own_name if not prefix else "")
            if _PREFIX_SYNTAX.fullmatch(readable) and readable not in namespaces:
                namespaces[readable] = namespace
                preferred[namespace] = readable
            else:
                preferred[namespace] = prefix
        for prefix, conventional in WELL_KNOWN_NAMESPACES.items():
            if prefix not in namespaces:
                namespaces[prefix] = conventional
                preferred.setdefault(conventional, prefix)
        return cls(namespaces, preferred)

    def prefix_of(self, namespace: str) -> str | None:
        """The prefix shown for ``namespace``, if it has one."""
        return self._preferred.get(namespace)

    def split(self, iri: str) -> tuple[str, str] | None:
        """``(prefix, local name)`` when ``iri`` can be written as a valid prefixed name."""
        for namespace in self._longest_first:
            if iri.startswith(namespace):
                local = iri[len(namespace) :]
                if local == "" or _LOCAL_SYNTAX.fullmatch(local):
                    return self._preferred[namespace], local
                return None
        return None

    def compact(self, iri: str) -> str:
        """``prefix:local`` when possible, else ``<iri>``: both are valid SPARQL."""
        parts = self.split(iri)
        return f"{parts[0]}:{parts[1]}" if parts else f"<{iri}>"

    def expand(self, name: str) -> URIRef | None:
        """The IRI of a prefixed name such as ``prov:Activity``; None for an unknown prefix."""
        prefix, sep, local = name.partition(":")
        namespace = self.namespaces.get(prefix)
        if not sep or namespace is None:
            return None
        return URIRef(namespace + local)
