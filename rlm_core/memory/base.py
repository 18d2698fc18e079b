"""The memory store's contract: its records, its protocol and its error.

Kept free of SQLite and DSPy so that the engine, the CLI and plugins can name these types without
importing either.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from rlm_core.errors import RLMError
from rlm_core.events import ExtractedMemory, RetrievedMemory

__all__ = [
    "AddResult",
    "MemoryDraft",
    "MemoryRecord",
    "MemoryStats",
    "MemoryStore",
    "MemoryStoreError",
    "MemoryUse",
    "RetrievedItem",
    "Verdict",
    "memory_id",
    "normalize_tags",
]

_SPACE = re.compile(r"\s+")


class MemoryStoreError(RLMError):
    """The memory database cannot be used (missing, corrupt, too new); the message names it."""


def memory_id(title: str, content: str) -> str:
    """The id of a memory: a hash of its normalized title and content, so that the same strategy
    written with different case or spacing is stored once."""
    normalized = "\n".join(_SPACE.sub(" ", text).strip().casefold() for text in (title, content))
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()[:16]


def normalize_tags(tags: Sequence[str]) -> tuple[str, ...]:
    """Lower-case, trimmed, non-empty and unique tags, in their first order."""
    seen: dict[str, None] = {}
    for tag in tags:
        cleaned = _SPACE.sub(" ", tag).strip().casefold()
        if cleaned:
            seen.setdefault(cleaned, None)
    return tuple(seen)


@dataclasses.dataclass(frozen=True)
class MemoryDraft:
    """A strategy to store, as the extractor (or a user) wrote it."""

    title: str
    description: str
    content: str
    tags: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class MemoryRecord:
    """A stored memory with its provenance and track record (one line of a memory pack)."""

    memory_id: str
    title: str
    description: str
    content: str
    tags: tuple[str, ...]
    scope: str | None
    source: str
    run_id: str | None
    created_at: datetime
    access_count: int = 0
    success_count: int = 0
    failure_count: int = 0


@dataclasses.dataclass(frozen=True, kw_only=True)
class RetrievedItem:
    """One retrieval hit: rank 1 is the best; ``score`` is ``-bm25()``, higher is better."""

    memory_id: str
    title: str
    description: str
    content: str
    tags: tuple[str, ...]
    scope: str | None
    rank: int
    score: float

    def as_event(self) -> RetrievedMemory:
        """The hit as the ``memory_retrieved`` payload carries it."""
        return RetrievedMemory(
            memory_id=self.memory_id, title=self.title, rank=self.rank, score=self.score
        )


@dataclasses.dataclass(frozen=True)
class AddResult:
    """What became of one added memory; ``duplicate`` means its content hash was already stored."""

    memory_id: str
    title: str
    duplicate: bool

    def as_event(self) -> ExtractedMemory:
        """The result as the ``memory_extracted`` payload carries it."""
        return ExtractedMemory(memory_id=self.memory_id, title=self.title, duplicate=self.duplicate)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The judge's verdict; ``success`` and ``confidence`` are None when it was unusable."""

    success: bool | None
    reason: str
    confidence: float | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class MemoryUse:
    """One memory's track record, for ``rlm memory stats``."""

    memory_id: str
    title: str
    scope: str | None
    access_count: int
    success_count: int
    failure_count: int

    @property
    def success_rate(self) -> float | None:
        """Successes over judged uses; None before any judged use."""
        judged = self.success_count + self.failure_count
        return self.success_count / judged if judged else None


@dataclasses.dataclass(frozen=True, kw_only=True)
class MemoryStats:
    """Counts over the whole store and its most useful memories."""

    path: str
    schema_version: int
    memories: int
    runs: int
    usages: int
    judged_success: int
    judged_failure: int
    judged_unknown: int
    by_scope: Mapping[str, int]
    most_used: tuple[MemoryUse, ...]
    most_successful: tuple[MemoryUse, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for ``rlm memory stats --json``."""
        data = dataclasses.asdict(self)
        data["by_scope"] = dict(self.by_scope)
        for key in ("most_used", "most_successful"):
            data[key] = [
                {**dataclasses.asdict(use), "success_rate": use.success_rate}
                for use in getattr(self, key)
            ]
        return data


class MemoryStore(Protocol):
    """Procedural memory as the engine and the CLI use it; :class:`SQLiteMemoryStore` is the
    implementation that ships."""

    def retrieve(
        self, query: str, k: int, *, ontology: str | None = None, tags: Sequence[str] = ()
    ) -> list[RetrievedItem]:
        """The ``k`` memories that best match ``query``, best first."""
        ...

    def record_run(
        self, run_id: str, *, question: str, ontology: str | None, started_at: datetime
    ) -> None:
        """Remember that a run happened (idempotent)."""
        ...

    def record_usage(self, run_id: str, items: Sequence[RetrievedItem]) -> None:
        """Remember which memories ``run_id`` was given, at which rank and score."""
        ...

    def record_trajectory(self, run_id: str, steps: Sequence[Mapping[str, Any]]) -> None:
        """Keep the run's steps (replaces an earlier record of the same run)."""
        ...

    def record_judgment(self, run_id: str, verdict: Verdict) -> None:
        """Keep the judge's verdict on the run (replaces an earlier one)."""
        ...

    def update_outcome(self, run_id: str, success: bool | None) -> int:
        """Credit or debit the memories the run used; return how many were touched."""
        ...

    def add_memories(
        self,
        drafts: Sequence[MemoryDraft],
        *,
        run_id: str | None,
        scope: str | None,
        source: str = "extracted",
    ) -> list[AddResult]:
        """Store new memories; duplicates (by content hash) are reported, not stored again."""
        ...

    def add_records(self, records: Sequence[MemoryRecord]) -> list[AddResult]:
        """Store complete records (from a pack), keeping their provenance and counts."""
        ...

    def records(self, *, ontology: str | None = None) -> Iterator[MemoryRecord]:
        """Every stored memory, oldest first; only scope ``ontology`` when given."""
        ...

    def memories(self, ids: Sequence[str]) -> dict[str, MemoryRecord]:
        """The stored memories with these ids, by id; an id not stored is left out."""
        ...

    def stats(self, *, top: int = 5) -> MemoryStats:
        """Counts and the ``top`` memories by use and by success rate."""
        ...

    def close(self) -> None:
        """Release the database."""
        ...
