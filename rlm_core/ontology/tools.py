"""The ontology tools that LM-written REPL code calls: search, describe, SPARQL, result paging.

Everything expensive (entity catalog, prefix table, search index) is built once in
``OntologyTools.__init__``, so a call is a lookup plus formatting. Every tool returns bounded
text and never raises on bad input: the caller is a model, and an ``Error: ...`` line it can
read and act on is worth more to it than a traceback.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
import sys
import threading
from collections.abc import Callable, Iterable, Sized
from typing import ParamSpec

from rdflib import OWL, RDF, RDFS, BNode, URIRef
from rdflib.query import ResultRow
from rdflib.term import Node

from rlm_core.ontology.budget import BudgetedGraph, BudgetExceeded
from rlm_core.ontology.catalog import (
    DESCRIPTION_PREDICATES,
    LABEL_PREDICATES,
    EntityCatalog,
    build_catalog,
)
from rlm_core.ontology.killable import ChildFailed, TimedOut, run_killable
from rlm_core.ontology.loading import LoadedOntology
from rlm_core.ontology.prefixes import PrefixMap
from rlm_core.ontology.render import ELLIPSIS, TermRenderer, clip_lines, clip_text
from rlm_core.ontology.search import MATCH_TIERS, SearchIndex
from rlm_core.ontology.sparql import QueryRefused, VettedQuery, vet_query

__all__ = ["OntologyTools", "ResultHandle"]

_P = ParamSpec("_P")
_Row = tuple[Node | None, ...]
# The query process gets this much longer than its own budget, so a query that the budget stops
# says how (time or triples) before the process is killed.
_GRACE_SECONDS = 0.5
_MAX_SEARCH_HITS = 50
_MAX_DESCRIBE_TRIPLES = 100
_SUMMARY_ITEMS = 10
_CELL_CHARS = 120
_FOOTER_CHARS = 80
_LITERAL_CHARS = 200
_COUNT_CAP = 10_000
# How far describe_entity climbs from a blank node to the named entity that uses it.
_MAX_CLIMB = 8
_IRI_SCHEMES = ("urn:", "mailto:", "tag:", "file:")
# Shown in describe_entity's summary, so left out of its triple listings.
_SUMMARIZED_OUT = frozenset(
    {
        RDF.type,
        RDFS.subClassOf,
        RDFS.subPropertyOf,
        RDFS.domain,
        RDFS.range,
        OWL.equivalentClass,
        OWL.inverseOf,
        *LABEL_PREDICATES,
        *DESCRIPTION_PREDICATES,
    }
)
_SUMMARIZED_IN = frozenset({RDF.type, RDFS.subClassOf, RDFS.domain, RDFS.range})


class _ToolInputError(ValueError):
    """Bad input from the model; becomes the ``Error: ...`` text the tool returns."""


def _model_facing(method: Callable[_P, str]) -> Callable[_P, str]:
    """Return failures as ``Error: ...`` text instead of raising: the caller is a model."""

    @functools.wraps(method)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> str:
        try:
            return method(*args, **kwargs)
        except _ToolInputError as exc:
            return f"Error: {exc}"
        except Exception as exc:  # a bug or an rdflib failure must not end the model's step
            reason = clip_text(str(exc), 300)
            return f"Error: {method.__name__} failed ({type(exc).__name__}: {reason})"

    return guarded


@dataclasses.dataclass(frozen=True)
class ResultHandle:
    """The rows of one ``sparql_select`` call, kept so the model can page through them."""

    id: str
    query: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Node | None, ...], ...]
    complete: bool  # False when the query had more rows than were kept


@dataclasses.dataclass(frozen=True)
class OntologyIndex:
    """What the tools derive from the graph alone: read-only once built, so runs over the same
    ontology can share it (see :mod:`rlm_core.ontology.cache`)."""

    catalog: EntityCatalog
    prefixes: PrefixMap
    search: SearchIndex

    @classmethod
    def build(cls, onto: LoadedOntology) -> OntologyIndex:
        catalog = build_catalog(onto.graph)
        prefixes = PrefixMap.from_graph(onto.graph, onto.name)
        return cls(catalog, prefixes, SearchIndex(onto.graph, catalog, prefixes))


class OntologyTools:
    """Bounded, read-only tools over one loaded ontology, for a model's REPL code.

    ``derived`` is the ontology's :class:`OntologyIndex` when one was built already."""

    def __init__(
        self,
        onto: LoadedOntology,
        *,
        max_rows: int = 100,
        max_chars: int = 2000,
        describe_max_chars: int = 4000,
        query_timeout: float = 10.0,
        max_scanned: int = 1_000_000,
        max_handles: int = 50,
        derived: OntologyIndex | None = None,
    ) -> None:
        self.onto = onto
        self.graph = onto.graph
        self.max_rows = max_rows
        self.max_chars = max_chars
        self.describe_max_chars = describe_max_chars
        self.query_timeout = query_timeout
        self.max_scanned = max_scanned
        self.max_handles = max_handles
        derived = derived or OntologyIndex.build(onto)
        self.catalog = derived.catalog
        self.prefixes = derived.prefixes
        self.render = TermRenderer(onto.graph, self.prefixes, self.catalog.labels)
        self.index = derived.search
        self.results: dict[str, ResultHandle] = {}
        self._handle_numbers = itertools.count(1)
        self._lock = threading.Lock()

    def tool_functions(self) -> dict[str, Callable[..., str]]:
        """The tools by the names REPL code calls them; their docstrings are shown to the model."""
        return {
            "search_entity": self.search_entity,
            "describe_entity": self.describe_entity,
            "sparql_select": self.sparql_select,
            "result_rows": self.result_rows,
        }

    @_model_facing
    def search_entity(self, text: str, limit: int = 10) -> str:
        """Find classes, properties and individuals by label, local name or part of the IRI.

        Args:
            text: what to look for, e.g. "activity" or "generated by" (case-insensitive).
            limit: how many matches to list, 1 to 50.

        Returns:
            One line per match, best first (exact, then prefix, then substring matches):
            "prefixed_name | label | kind". Use the prefixed name in describe_entity or SPARQL.
        """
        needle = _text_arg(text, "text")
        count = _int_arg(limit, "limit", 1, _MAX_SEARCH_HITS)
        hits, total = self.index.find(needle, count)
        if not hits:
            return f"No entity matches {needle!r}. Try a shorter word, a synonym or a local name."
        lines = [f"{total} match{'es' if total != 1 else ''} for {needle!r}, best first:"]
        for hit in hits:
            label = clip_text(hit.label, 80) if hit.label else "-"
            lines.append(f"{hit.name} | {label} | {hit.kind}")
        if total > len(hits):
            lines.append(
                f"{ELLIPSIS} {total - len(hits)} more ({MATCH_TIERS[hits[-1].tier]} "
                "matches and worse); refine the text or raise limit"
            )
        return clip_lines(lines, self.max_chars, hint="; lower limit")

    @_model_facing
    def describe_entity(self, iri_or_prefixed_name: str, limit: int = 20) -> str:
        """Show what the ontology says about one entity.

        Args:
            iri_or_prefixed_name: e.g. "prov:Activity", a full IRI, or an exact label.
            limit: how many other outgoing and incoming triples to list, 0 to 100.

        Returns:
            Kind, labels, descriptions, types, superclasses, subclasses, domain and range, the
            properties that use it, then other triples (literals cut to about 200 characters).
        """
        iri = self._resolve(_text_arg(iri_or_prefixed_name, "iri_or_prefixed_name"))
        count = _int_arg(limit, "limit", 0, _MAX_DESCRIBE_TRIPLES)
        lines = self._summary(iri)
        lines += self._triples_out(iri, count)
        lines += self._triples_in(iri, count)
        return clip_lines(lines, self.describe_max_chars, hint="; lower limit")

    @_model_facing
    def sparql_select(self, query: str, limit: int = 20) -> str:
        """Run a read-only SPARQL SELECT or ASK query on the ontology.

        The ontology's prefixes (and rdf, rdfs, owl, xsd, skos, dcterms...) are pre-bound, so
        "SELECT ?c WHERE { ?c a owl:Class }" works without PREFIX lines. At most 100 rows are
        kept: a LIMIT of 100 applies when the query has none or asks for more. Slow queries are
        stopped. INSERT/DELETE and other updates, SERVICE, FROM, CONSTRUCT and DESCRIBE are
        refused.

        Args:
            query: the SPARQL query text.
            limit: how many rows to show now, 1 to 100; the rest stay in the result handle.

        Returns:
            The handle id (e.g. "r1"), the row count, the column names and the first rows as
            "value | value" lines; page on with result_rows(handle_id, offset).
        """
        text = _text_arg(query, "query")
        shown = _int_arg(limit, "limit", 1, self.max_rows)
        try:
            vetted = vet_query(text, self.prefixes.namespaces)
        except QueryRefused as exc:
            raise _ToolInputError(str(exc)) from None
        try:
            answer = run_killable(
                functools.partial(self._evaluate, vetted), self.query_timeout + _GRACE_SECONDS
            )
        except (BudgetExceeded, TimedOut) as exc:
            timed_out = isinstance(exc, TimedOut)
            why = f"it ran longer than {self.query_timeout:g} s" if timed_out else exc
            raise _ToolInputError(
                f"the query was stopped because {why}. Make it more selective: bind known "
                "IRIs or classes, avoid unconnected triple patterns, add LIMIT; a REGEX "
                "with nested repetition such as (a+)+ can take forever."
            ) from None
        except ChildFailed as exc:
            raise _ToolInputError(f"the query was stopped: {exc}") from None
        if isinstance(answer, bool):
            return f"ASK result: {'true' if answer else 'false'}"
        variables, rows = answer
        columns = tuple(f"?{variable}" for variable in variables)
        complete = len(rows) <= self.max_rows
        handle = self._keep(text, columns, rows[: self.max_rows], complete)
        note = ""
        if not complete:
            asked = f"LIMIT {vetted.limit} was reduced to" if vetted.limit else "applied LIMIT"
            note = f"(more rows exist: {asked} {self.max_rows}; add filters or ORDER BY/OFFSET)"
        return self._page(handle, 0, shown, note)

    def _evaluate(self, vetted: VettedQuery) -> bool | tuple[list[str], list[_Row]]:
        """The ASK answer, or the variables and up to ``max_rows + 1`` rows of a SELECT.

        Runs in the query's own process (see :mod:`rlm_core.ontology.killable`); what it returns
        is pickled back, so it holds plain values and rdflib terms only.
        """
        budgeted = BudgetedGraph(self.graph, self.query_timeout, self.max_scanned)
        result = budgeted.query(vetted.query, use_store_provided=False)
        if vetted.form == "ASK":
            return bool(result.askAnswer)
        rows: list[_Row] = [
            tuple(row)
            for row in itertools.islice(result, self.max_rows + 1)
            if isinstance(row, ResultRow)
        ]
        return [str(variable) for variable in result.vars or ()], rows

    @_model_facing
    def result_rows(self, handle_id: str, offset: int = 0, limit: int = 20) -> str:
        """Show more rows of an earlier sparql_select result.

        Args:
            handle_id: the id sparql_select returned, e.g. "r1".
            offset: index of the first row to show (0 is the first row).
            limit: how many rows to show, 1 to 100.

        Returns:
            The same table format as sparql_select, for the requested rows.
        """
        key = _text_arg(handle_id, "handle_id").strip()
        start = _int_arg(offset, "offset", 0, sys.maxsize)
        count = _int_arg(limit, "limit", 1, self.max_rows)
        handle = self.results.get(key)
        if handle is None:
            known = ", ".join(self.results) or "none yet"
            raise _ToolInputError(
                f"no result handle {key!r}; handles from sparql_select so far: {known}"
            )
        return self._page(handle, start, count, "")

    def _resolve(self, text: str) -> URIRef:
        """The IRI meant by a full IRI, ``<IRI>``, a prefixed name or an exact label."""
        name = text.strip().removeprefix("<").removesuffix(">").strip()
        if "://" in name or name.lower().startswith(_IRI_SCHEMES):
            iri = URIRef(name)
        elif ":" in name:
            expanded = self.prefixes.expand(name)
            if expanded is None:
                known = ", ".join(sorted(f"{p}:" for p in self.prefixes.namespaces if p))
                raise _ToolInputError(f"unknown prefix in {name!r}; known prefixes: {known}")
            iri = expanded
        else:
            iri = self._by_name(name)
        mentioned = (iri, None, None) in self.graph or (None, None, iri) in self.graph
        if not mentioned and (None, iri, None) not in self.graph:
            local = re.split(r"[/#:]", name.rstrip("/#"))[-1]
            raise _ToolInputError(
                f"{self.prefixes.compact(str(iri))} does not occur in the ontology; try "
                f"search_entity({local!r})"
            )
        return iri

    def _by_name(self, name: str) -> URIRef:
        """The one entity whose label or local name is ``name`` (same case wins a tie)."""
        matches = self.index.exact(name)
        same_case = [m for m in matches if name in (self.catalog.label(m), _local_name(m))]
        if len(matches) > 1 and len(same_case) == 1:
            return same_case[0]
        if len(matches) > 1:
            names = ", ".join(self.prefixes.compact(str(m)) for m in matches[:_SUMMARY_ITEMS])
            raise _ToolInputError(f"{name!r} names {len(matches)} entities: {names}; pick one")
        if not matches:
            raise _ToolInputError(
                f"nothing is named {name!r}; try search_entity({name!r}) to find its prefixed name"
            )
        return matches[0]

    def _summary(self, iri: URIRef) -> list[str]:
        graph, term = self.graph, self.render.term
        lines = [f"{self.render.labelled(iri)}: {self.catalog.kind(iri)}", f"IRI: <{iri}>"]
        for predicate in (*LABEL_PREDICATES, *DESCRIPTION_PREDICATES):
            values = list(itertools.islice(graph.objects(iri, predicate), 3))
            for value in values:
                lines.append(f"{self.prefixes.compact(str(predicate))}: {term(value, 300)}")
        listed = (
            ("types", graph.objects(iri, RDF.type)),
            ("superclasses", graph.objects(iri, RDFS.subClassOf)),
            ("equivalent classes", graph.objects(iri, OWL.equivalentClass)),
            ("subclasses", graph.subjects(RDFS.subClassOf, iri)),
            ("superproperties", graph.objects(iri, RDFS.subPropertyOf)),
            ("domain", graph.objects(iri, RDFS.domain)),
            ("range", graph.objects(iri, RDFS.range)),
            ("inverse", graph.objects(iri, OWL.inverseOf)),
            ("properties with this domain", graph.subjects(RDFS.domain, iri)),
            ("properties with this range", graph.subjects(RDFS.range, iri)),
            ("instances", graph.subjects(RDF.type, iri)),
        )
        for title, nodes in listed:
            line = self._listing(title, nodes)
            if line:
                lines.append(line)
        return lines

    def _listing(self, title: str, nodes: Iterable[Node]) -> str:
        """``title (n): a, b, …`` for up to ``_SUMMARY_ITEMS`` nodes; empty when there are none."""
        found = list(itertools.islice(nodes, _COUNT_CAP))
        if not found:
            return ""
        shown = ", ".join(self.render.labelled(node, 160) for node in found[:_SUMMARY_ITEMS])
        more = f", {ELLIPSIS}" if len(found) > _SUMMARY_ITEMS else ""
        return f"{title} ({_count(found)}): {shown}{more}"

    def _triples_out(self, iri: URIRef, limit: int) -> list[str]:
        found = [
            (p, o)
            for p, o in itertools.islice(self.graph.predicate_objects(iri), _COUNT_CAP)
            if p not in _SUMMARIZED_OUT
        ]
        if not found:
            return []
        found.sort(key=lambda pair: (str(pair[0]), str(pair[1])[:_LITERAL_CHARS]))
        named = self.render.labelled
        lines = [f"other outgoing triples ({_count(found)}, showing {min(limit, len(found))}):"]
        lines += [f"  {named(p)} {named(o, _LITERAL_CHARS)}" for p, o in found[:limit]]
        return lines

    def _triples_in(self, iri: URIRef, limit: int) -> list[str]:
        found = [
            self._named_context(s, p, iri)
            for s, p in itertools.islice(self.graph.subject_predicates(iri), _COUNT_CAP)
            if p not in _SUMMARIZED_IN
        ]
        if not found:
            return []
        named = self.render.labelled
        rendered = sorted({f"  {named(s)} {named(p)} {named(o)}" for s, p, o in found})
        lines = [f"other incoming triples ({_count(found)}, showing {min(limit, len(rendered))}):"]
        return lines + rendered[:limit]

    def _named_context(self, subject: Node, predicate: Node, obj: Node) -> tuple[Node, Node, Node]:
        """The triple by which a named entity uses the anonymous node holding ``obj``.

        ``(_:list rdf:first prov:Activity)`` says little; the triple that holds the union it
        belongs to, ``prov:used rdfs:domain (prov:Activity or ...)``, says where it is used.
        """
        triple = (subject, predicate, obj)
        seen: set[Node] = set()
        while isinstance(triple[0], BNode) and triple[0] not in seen and len(seen) < _MAX_CLIMB:
            seen.add(triple[0])
            parent = next(self.graph.subject_predicates(triple[0]), None)
            if parent is None:
                break
            triple = (parent[0], parent[1], triple[0])
        return triple

    def _keep(
        self,
        query: str,
        columns: tuple[str, ...],
        rows: list[tuple[Node | None, ...]],
        complete: bool,
    ) -> ResultHandle:
        with self._lock:
            handle = ResultHandle(
                id=f"r{next(self._handle_numbers)}",
                query=query,
                columns=columns,
                rows=tuple(rows),
                complete=complete,
            )
            self.results[handle.id] = handle
            while len(self.results) > self.max_handles:
                del self.results[next(iter(self.results))]
        return handle

    def _page(self, handle: ResultHandle, offset: int, limit: int, note: str) -> str:
        total = len(handle.rows)
        count = f"{total}" if handle.complete else f"{total}+"
        columns = clip_text(" | ".join(handle.columns), self.max_chars // 4)
        lines = [f"Result {handle.id}: {count} row{'s' if total != 1 else ''}; columns: {columns}"]
        if note:
            lines.append(note)
        if total == 0:
            return "\n".join([*lines, "(no rows; check the IRIs with search_entity)"])
        if offset >= total:
            raise _ToolInputError(
                f"offset {offset} is past the last row of {handle.id} ({total} rows)"
            )
        lines.append(columns)
        room = self.max_chars - len("\n".join(lines)) - _FOOTER_CHARS
        shown = 0
        for row in handle.rows[offset : offset + limit]:
            cells = " | ".join(self.render.term(value, _CELL_CHARS) for value in row)
            line = clip_text(cells, self.max_chars // 3)
            if shown and len(line) + 1 > room:
                break
            lines.append(line)
            room -= len(line) + 1
            shown += 1
        end = offset + shown
        footer = f"rows {offset + 1}-{end} of {count}"
        if end < total:
            footer += f"; next: result_rows({handle.id!r}, offset={end})"
        return "\n".join([*lines, footer])


def _local_name(iri: URIRef) -> str:
    return re.split(r"[/#]", str(iri).rstrip("/#"))[-1]


def _count(found: Sized) -> str:
    return f"{len(found):,}+" if len(found) >= _COUNT_CAP else f"{len(found):,}"


def _text_arg(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise _ToolInputError(f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise _ToolInputError(f"{name} is empty")
    return value


def _int_arg(value: object, name: str, low: int, high: int) -> int:
    """An integer argument, clamped to [low, high]: a model asking for 500 rows gets the most."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _ToolInputError(f"{name} must be an integer, got {type(value).__name__}")
    try:
        number = int(value)
    except ValueError:
        raise _ToolInputError(f"{name} must be an integer, got {value!r}") from None
    return min(max(number, low), high)
