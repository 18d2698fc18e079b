"""Parse each ontology file once per process: a worker running many runs reuses the graph.

Entries are keyed by the resolved path, the file's size and its modification time, so an edited
file is parsed again. Runs only read the graph (SPARQL is vetted read-only and evaluated through
:class:`~rlm_core.ontology.budget.BudgetedGraph`), so concurrent runs share it. The sense card,
computed from the graph alone, is kept with it, and so is the tools' index (catalog, prefixes,
search index; per-run state such as result handles stays in each run's tools).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from rlm_core.ontology.loading import LoadedOntology, load_ontology
from rlm_core.ontology.tools import OntologyIndex

__all__ = [
    "MAX_CACHED",
    "cached_index",
    "cached_ontology",
    "cached_sense_card",
    "clear_ontology_cache",
]

MAX_CACHED = 8
"""Ontologies kept at once; the least recently used is dropped first."""

_Key = tuple[str, int, int]
_lock = threading.Lock()
_entries: OrderedDict[_Key, LoadedOntology] = OrderedDict()
_loading: dict[_Key, threading.Lock] = {}
_cards: dict[int, tuple[LoadedOntology, str]] = {}
_indexes: dict[int, tuple[LoadedOntology, OntologyIndex]] = {}


def cached_ontology(path: str | Path) -> LoadedOntology:
    """:func:`load_ontology`, parsed once per process while the file is unchanged."""
    # Loaded by the name it was given (a link named x.ttl says the format, and what it points to
    # must be a regular file), keyed by what it resolves to.
    given = Path(path).expanduser()
    resolved = given.resolve()
    try:
        stat = resolved.stat()
    except OSError:
        return load_ontology(given)  # raises the usual OntologyError
    key = (str(resolved), stat.st_size, stat.st_mtime_ns)
    with _lock:
        loaded = _entries.get(key)
        if loaded is not None:
            _entries.move_to_end(key)
            return loaded
        gate = _loading.setdefault(key, threading.Lock())
    with gate:  # one thread parses, the others wait for its graph
        with _lock:
            loaded = _entries.get(key)
        if loaded is None:
            loaded = load_ontology(given)
            with _lock:
                _entries[key] = loaded
                _loading.pop(key, None)
                while len(_entries) > MAX_CACHED:
                    _, dropped = _entries.popitem(last=False)
                    _cards.pop(id(dropped), None)
                    _indexes.pop(id(dropped), None)
    return loaded


def cached_sense_card(loaded: LoadedOntology) -> str:
    """The ontology's sense card, computed once per cached graph."""
    from rlm_core.ontology.sense import build_sense_card

    with _lock:
        kept = _cards.get(id(loaded))
    if kept is not None and kept[0] is loaded:
        return kept[1]
    card = build_sense_card(loaded)
    with _lock:
        if any(entry is loaded for entry in _entries.values()):
            _cards[id(loaded)] = (loaded, card)
    return card


def cached_index(loaded: LoadedOntology) -> OntologyIndex:
    """The tools' catalog, prefixes and search index of the ontology, built once per cached
    graph."""
    with _lock:
        kept = _indexes.get(id(loaded))
    if kept is not None and kept[0] is loaded:
        return kept[1]
    derived = OntologyIndex.build(loaded)
    with _lock:
        if any(entry is loaded for entry in _entries.values()):
            _indexes[id(loaded)] = (loaded, derived)
    return derived


def clear_ontology_cache() -> None:
    """Forget every parsed ontology (benchmarks measure a cold run with it)."""
    with _lock:
        _entries.clear()
        _cards.clear()
        _indexes.clear()
