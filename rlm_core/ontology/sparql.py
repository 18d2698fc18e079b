"""Decide whether model-written SPARQL may run, before it touches the graph.

Only read queries that stay inside the loaded graph are allowed: SELECT and ASK. Refused, each
with a message the model can act on: SPARQL Update (the ontology is read-only), ``SERVICE`` and
``FROM``/``FROM NAMED`` (rdflib would fetch those IRIs over the network), and CONSTRUCT/DESCRIBE
(they return graphs; a SELECT over ``?s ?p ?o`` or ``describe_entity`` gives the same facts as
a bounded table).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from pyparsing import ParseBaseException
from rdflib.plugins.sparql.algebra import translateQuery
from rdflib.plugins.sparql.parser import parseQuery, parseUpdate
from rdflib.plugins.sparql.parserutils import CompValue
from rdflib.plugins.sparql.sparql import Query

__all__ = ["MAX_QUERY_CHARS", "QueryRefused", "VettedQuery", "vet_query"]

MAX_QUERY_CHARS = 20_000
_UPDATE_KEYWORDS = frozenset(
    {"INSERT", "DELETE", "LOAD", "CLEAR", "DROP", "CREATE", "ADD", "MOVE", "COPY", "WITH"}
)
_PROLOGUE = re.compile(
    r"\s*(?:(?:#[^\n]*\n|PREFIX\s+[^\s:]*:\s*<[^>]*>|BASE\s*<[^>]*>)\s*)*(\w+)", re.IGNORECASE
)
_FORMS = {"SelectQuery": "SELECT", "AskQuery": "ASK"}


class QueryRefused(ValueError):
    """The query will not be run; the message says why and what to do instead."""


@dataclasses.dataclass(frozen=True)
class VettedQuery:
    """A query that passed the checks, translated to rdflib's algebra with prefixes bound."""

    query: Query
    form: str  # "SELECT" or "ASK"
    limit: int | None  # the query's own LIMIT, if it has one


def vet_query(text: str, namespaces: Mapping[str, str]) -> VettedQuery:
    """Parse and check ``text``; ``namespaces`` are prefixes usable without declaring them."""
    if len(text) > MAX_QUERY_CHARS:
        raise QueryRefused(f"the query is longer than {MAX_QUERY_CHARS:,} characters")
    if _is_update(text):
        raise QueryRefused(
            "SPARQL Update (INSERT, DELETE, LOAD, CLEAR, DROP, CREATE...) is not allowed: "
            "the ontology is read-only. Use SELECT or ASK."
        )
    try:
        parsed = parseQuery(text)
    except ParseBaseException as exc:
        raise QueryRefused(_syntax_error(exc)) from None
    try:
        query = translateQuery(parsed, initNs=dict(namespaces))
    except Exception as exc:  # rdflib raises bare Exception, e.g. for an unknown prefix
        raise QueryRefused(_translation_error(exc, namespaces)) from None
    algebra = query.algebra
    form = _FORMS.get(algebra.name)
    if form is None:
        raise QueryRefused(
            f"{algebra.name.removesuffix('Query').upper()} queries are not supported; use "
            "SELECT (e.g. SELECT ?p ?o WHERE { <iri> ?p ?o }) or describe_entity()."
        )
    # dict.get: CompValue.get returns the key itself for a missing key.
    if dict.get(algebra, "datasetClause"):
        raise QueryRefused(
            "FROM / FROM NAMED would load other graphs from the network; the loaded ontology "
            "is the only dataset, so drop the FROM clause."
        )
    if _uses_service(algebra):
        raise QueryRefused(
            "SERVICE (federated query) would reach the network and is not allowed; query the "
            "loaded ontology only."
        )
    return VettedQuery(query=query, form=form, limit=_own_limit(algebra))


def _is_update(text: str) -> bool:
    keyword = _PROLOGUE.match(text)
    if keyword and keyword.group(1).upper() in _UPDATE_KEYWORDS:
        return True
    try:
        parseUpdate(text)
    except ParseBaseException:
        return False
    return True


def _syntax_error(exc: ParseBaseException) -> str:
    column = max(exc.column, 1)
    start = max(column - 60, 1)
    line = exc.line[start - 1 : start + 99]
    pointer = " " * (column - start) + "^"
    return (
        f"SPARQL syntax error at line {exc.lineno}, column {column}: {exc.msg}\n"
        f"  {line}\n  {pointer}"
    )


def _translation_error(exc: Exception, namespaces: Mapping[str, str]) -> str:
    message = str(exc)
    if message.startswith("Unknown namespace prefix"):
        prefix = message.rsplit(":", 1)[-1].strip()
        known = ", ".join(sorted(p + ":" for p in namespaces if p))
        return (
            f"unknown prefix {prefix}: in the query. Declare it with PREFIX {prefix}: <...> or "
            f"use a known one: {known}"
        )
    return f"the query cannot be prepared: {message}"


def _uses_service(algebra: CompValue) -> bool:
    pending: list[object] = [algebra]
    while pending:
        node = pending.pop()
        if isinstance(node, CompValue) and node.name == "ServiceGraphPattern":
            return True
        if isinstance(node, dict):
            pending.extend(node.values())
        elif isinstance(node, list | tuple):
            pending.extend(node)
    return False


def _own_limit(algebra: CompValue) -> int | None:
    top = algebra["p"]
    if isinstance(top, CompValue) and top.name == "Slice" and "length" in top:
        return int(top["length"])
    return None
