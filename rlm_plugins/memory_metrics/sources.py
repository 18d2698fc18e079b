"""The text of retrieved memories: read from the memory database, formatted as the engine did.

``memory_retrieved`` carries ids, titles, ranks and scores only. The plugin reads the rest through
the memory store's API (:meth:`~rlm_core.memory.MemoryStore.memories`, never its tables) when the
run is over, and rebuilds the text the run's prompt got with
:func:`rlm_core.memory.format_memories`, which is deterministic, and memories never change (their
id is a hash of their text).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

from rlm_core.events import RetrievedMemory
from rlm_core.memory import (
    MemoryStoreError,
    RetrievedItem,
    SQLiteMemoryStore,
    format_memories,
)

__all__ = [
    "PROMPT_PREVIEW_CHARS",
    "MemoryReadError",
    "MemoryText",
    "injected_text",
    "prompt_preview",
    "read_memories",
]

PROMPT_PREVIEW_CHARS = 1_000
"""``dspy.RLM`` shows each input in the root prompt as a preview of at most this many characters
(head and tail joined by "...", ``REPLVariable.from_value``); the full text stays in the REPL."""


@dataclasses.dataclass(frozen=True)
class MemoryText:
    """A stored memory's text, as the engine formats and injects it."""

    memory_id: str
    title: str
    description: str
    content: str
    tags: tuple[str, ...]
    scope: str | None

    @property
    def full_text(self) -> str:
        """Everything the memory says, where the "used" heuristic looks for its terms."""
        return "\n".join((self.title, self.description, self.content))

    def as_item(self, hit: RetrievedMemory) -> RetrievedItem:
        """The memory as retrieval returned it, at the rank and score of ``hit``."""
        return RetrievedItem(
            memory_id=self.memory_id,
            title=self.title,
            description=self.description,
            content=self.content,
            tags=self.tags,
            scope=self.scope,
            rank=hit.rank,
            score=hit.score,
        )


class MemoryReadError(Exception):
    """The memory database could not be read; the message says why."""


def read_memories(path: Path, ids: Sequence[str]) -> dict[str, MemoryText]:
    """The memories with these ids found in the memory database at ``path``."""
    try:
        with SQLiteMemoryStore(path, create=False) as store:
            records = store.memories(ids)
    except MemoryStoreError as exc:
        raise MemoryReadError(str(exc)) from None
    return {
        memory_id: MemoryText(
            memory_id, record.title, record.description, record.content, record.tags, record.scope
        )
        for memory_id, record in records.items()
    }


def injected_text(retrieved: Sequence[RetrievedMemory], texts: Mapping[str, MemoryText]) -> str:
    """The text the run's program got as its ``memories`` input (``texts`` must hold every
    retrieved id)."""
    ranked = sorted(retrieved, key=lambda hit: hit.rank)
    return format_memories([texts[hit.memory_id].as_item(hit) for hit in ranked])


def prompt_preview(text: str) -> str:
    """What of ``text`` each root prompt shows (the REPL preview of the ``memories`` input)."""
    if len(text) <= PROMPT_PREVIEW_CHARS:
        return text
    head = PROMPT_PREVIEW_CHARS // 2
    return text[:head] + "..." + text[-(PROMPT_PREVIEW_CHARS - head) :]
