"""Was a retrieved memory used? A heuristic: its distinctive terms show up in the model's code.

Retrieval only says that a memory was put in the prompt. A memory that helped usually leaves a
trace in what the model then wrote: the IRIs, prefixed names or SPARQL constructs it recommends.
A memory counts as *used* when at least one of its distinctive terms appears in the code of the
run's REPL steps or in the SPARQL it submitted. Distinctive terms are:

- IRIs, written ``<...>`` or bare ``http(s)://...`` (matched without the angle brackets);
- prefixed names such as ``coffee:Brewing``, except the few that nearly every query uses
  (:data:`COMMON_NAMES`), which say nothing about a memory;
- SPARQL fragments: property paths (``rdfs:subClassOf*``, ``skos:broader+``, ``^prov:used``,
  ``rdf:type/rdfs:subClassOf``) and the less common keywords (:data:`SPARQL_KEYWORDS`), in
  capitals, in the memory and in the code (a lower-case "optional" in prose is not SPARQL, and
  ``d.values()`` in Python is not ``VALUES``).

Names match whole (``coffee:Brew`` does not match ``coffee:Brewing``), keywords as whole words
with any spacing (``GROUP\n  BY``). A prefixed name and the full IRI it abbreviates are
different terms. A memory that names no such term is never counted as used. The heuristic sees
consistency, not cause: a term the question itself suggests counts too; compare success rates
(``rlm memory report``) for effect.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["COMMON_NAMES", "SPARQL_KEYWORDS", "distinctive_terms", "used_terms"]

COMMON_NAMES = frozenset(
    {
        "rdf:type",
        "rdf:Property",
        "rdfs:label",
        "rdfs:comment",
        "rdfs:subClassOf",
        "rdfs:subPropertyOf",
        "rdfs:domain",
        "rdfs:range",
        "rdfs:Class",
        "owl:Class",
        "owl:Thing",
        "owl:ObjectProperty",
        "owl:DatatypeProperty",
        "owl:NamedIndividual",
        "xsd:string",
        "xsd:integer",
    }
)
"""Prefixed names too common to tell memories apart (their property paths still count)."""

SPARQL_KEYWORDS = (
    "NOT EXISTS",
    "MINUS",
    "OPTIONAL",
    "VALUES",
    "UNION",
    "GROUP BY",
    "HAVING",
    "GROUP_CONCAT",
    "STRSTARTS",
    "REGEX",
    "LANGMATCHES",
    "SERVICE",
)
"""SPARQL constructs distinctive enough to count, in capitals (Python's ``dict.values()`` and
``set.union`` are not SPARQL)."""

_IRI_CHARS = r"[^\s<>\"'{}|\\^`()\[\],;]"
_IRI = re.compile(rf"<((?:https?|urn|file):{_IRI_CHARS}+)>|\b(https?://{_IRI_CHARS}+)")
_NAME = r"[A-Za-z][\w-]*:[A-Za-z_][\w-]*(?:\.[\w-]+)*"
# A prefixed name, optionally inverted (^) and followed by a path operator or a path step.
_PATH = re.compile(rf"(?<![\w:/#.^-])(\^?{_NAME}(?:/\^?{_NAME})*[*+?]?)(?![\w:-])")
_NOT_PREFIXES = ("http:", "https:", "urn:", "file:", "mailto:")
_KEYWORDS = {
    keyword: re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, keyword.split())) + r"(?!\w)")
    for keyword in SPARQL_KEYWORDS
}


def distinctive_terms(text: str) -> frozenset[str]:
    """The IRIs, prefixed names, property paths and SPARQL keywords of a memory's text."""
    terms: set[str] = set()
    for match in _IRI.finditer(text):
        terms.add(match.group(1) or match.group(2).rstrip("."))
    for match in _PATH.finditer(_IRI.sub(" ", text)):
        term = match.group(1)
        if term.startswith(_NOT_PREFIXES) or term in COMMON_NAMES:
            continue
        terms.add(term)
    terms.update(keyword for keyword, pattern in _KEYWORDS.items() if pattern.search(text))
    return frozenset(terms)


def used_terms(terms: Iterable[str], code: str) -> frozenset[str]:
    """The terms that occur in ``code``: names whole, keywords in capitals with any spacing."""
    found = set()
    for term in terms:
        pattern = _KEYWORDS.get(term) or re.compile(rf"(?<![\w:/#.-]){re.escape(term)}(?![\w-])")
        if pattern.search(code):
            found.add(term)
    return frozenset(found)
