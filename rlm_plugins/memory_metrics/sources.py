"""The text of retrieved memories: read from the memory database, formatted as the engine did.

``memory_retrieved`` carries ids, titles, ranks and scores only. The plugin reads the rest from
the memory database at ``run_end`` (read-only, one query for the run's few rows) and rebuilds the
text the run's prompt got with :func:`rlm_core.memory.format_memories`, which is deterministic,
and memories never change (their id is a hash of their text).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

from rlm_core.events import RetrievedMemory
from rlm_core.memory import RetrievedItem, format_memories

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
    """The memories with these ids found in the database at ``path``, opened read-only."""
    if not path.is_file():
        raise MemoryReadError(f"no memory database at {path}")
    placeholders = ", ".join("?" * len(ids))
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT id, title, description, content, tags, scope FROM memories "
                f"WHERE id IN ({placeholders})",
                list(ids),
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise MemoryReadError(f"cannot read memory database {path}: {exc}") from None
    return {
        row[0]: MemoryText(row[0], row[1], row[2], row[3], tuple(json.loads(row[4])), row[5])
        for row in rows
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
