"""A read view of a graph that stops a SPARQL query once it has used up its time or scan budget.

rdflib evaluates SPARQL in pure Python by pulling triples from ``Graph.triples``, including for
property paths, so checking the budget there bounds every query: a cartesian product or an
``ORDER BY`` over millions of rows is stopped rather than holding the REPL (whose own timeout
cannot stop a tool running in the host process).
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import overload

from rdflib import Graph
from rdflib.graph import (
    _TripleOrTriplePathType,
    _TriplePathPatternType,
    _TriplePathType,
    _TriplePatternType,
    _TripleSelectorType,
    _TripleType,
)

__all__ = ["BudgetExceeded", "BudgetedGraph"]

# How many triples are yielded between two clock readings.
_CHECK_EVERY = 256


class BudgetExceeded(Exception):
    """A query scanned more triples or ran longer than its budget allows."""


class BudgetedGraph(Graph):
    """Shares ``source``'s store (no copy) and raises ``BudgetExceeded`` when over budget."""

    def __init__(self, source: Graph, seconds: float, max_scanned: int) -> None:
        super().__init__(store=source.store, identifier=source.identifier, bind_namespaces="none")
        self._seconds = seconds
        self._deadline = time.monotonic() + seconds
        self._max_scanned = max_scanned
        self.scanned = 0

    @overload
    def triples(self, triple: _TriplePatternType) -> Generator[_TripleType, None, None]: ...

    @overload
    def triples(self, triple: _TriplePathPatternType) -> Generator[_TriplePathType, None, None]: ...

    @overload
    def triples(
        self, triple: _TripleSelectorType
    ) -> Generator[_TripleOrTriplePathType, None, None]: ...

    def triples(
        self, triple: _TripleSelectorType
    ) -> Generator[_TripleOrTriplePathType, None, None]:
        """Graph.triples, counting what it yields and checking the clock as it goes."""
        self._check()
        for found in super().triples(triple):
            self.scanned += 1
            if self.scanned % _CHECK_EVERY == 0:
                self._check()
            yield found

    def _check(self) -> None:
        if self.scanned > self._max_scanned:
            raise BudgetExceeded(f"it scanned more than {self._max_scanned:,} triples")
        if time.monotonic() > self._deadline:
            raise BudgetExceeded(f"it ran longer than {self._seconds:g} s")
