"""Memories and trajectories as prompt text, within a character budget.

Both end up in an LM prompt, so both are bounded: a long memory or a long run must not crowd out
the question.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rlm_core.memory.base import RetrievedItem

__all__ = ["MEMORY_CHARS", "TRAJECTORY_CHARS", "format_memories", "format_trajectory"]

MEMORY_CHARS = 2_000
TRAJECTORY_CHARS = 8_000
_STEP_FIELDS = (("reasoning", 600), ("code", 1_200), ("output", 800), ("error", 400))
_ELLIPSIS = " …"
_NOTE_ROOM = 40


def format_memories(items: Sequence[RetrievedItem], max_chars: int = MEMORY_CHARS) -> str:
    """Retrieved strategies as a numbered list for the RLM's inputs; "" when there are none.

    Each item is clipped to a fair share of ``max_chars``, so the best one cannot crowd out the
    rest; the result never exceeds ``max_chars``, and items that no longer fit are counted in a
    closing note.
    """
    if not items:
        return ""
    parts = ["Strategies that worked on earlier questions (use them only where they fit):"]
    used = len(parts[0])
    share = max(200, (max_chars - used) // len(items))
    for shown, item in enumerate(items):
        entry = f"{shown + 1}. {item.title}"
        if item.description:
            entry += f": {item.description}"
        entry += "\n   " + item.content.strip().replace("\n", "\n   ")
        room = max_chars - used - 1 - _NOTE_ROOM
        if room < 80:
            parts.append(f"({len(items) - shown} more left out for length)")
            break
        entry = _clip(entry, min(room, share))
        parts.append(entry)
        used += len(entry) + 1
    return "\n".join(parts)


def format_trajectory(steps: Sequence[Mapping[str, Any]], max_chars: int = TRAJECTORY_CHARS) -> str:
    """A run's REPL steps (``reasoning``, ``code``, ``output``, ``error``) as text for the judge.

    Each field is clipped; when the whole is still too long, the first and last steps are kept
    and the middle ones replaced by a note, since the start and the end say most about success.
    """
    blocks = [_step_text(index, step) for index, step in enumerate(steps)]
    if not blocks:
        return "(the run took no steps)"
    count = len(blocks)
    # First, last, second, second to last, ...: the kept steps are a prefix and a suffix.
    pairs = zip(range(count), reversed(range(count)), strict=True)
    order = dict.fromkeys(index for pair in pairs for index in pair)
    kept: set[int] = set()
    used = 0
    for index in order:
        if kept and used + len(blocks[index]) > max_chars - _NOTE_ROOM:
            break
        kept.add(index)
        used += len(blocks[index]) + 2
    parts = []
    for index, block in enumerate(blocks):
        if index in kept:
            parts.append(block)
        elif index - 1 in kept:
            parts.append(f"[{count - len(kept)} steps left out]")
    return _clip("\n\n".join(parts), max_chars)


def _step_text(index: int, step: Mapping[str, Any]) -> str:
    lines = [f"Step {index + 1}"]
    for field, limit in _STEP_FIELDS:
        value = step.get(field)
        if value not in (None, ""):
            lines.append(f"{field.capitalize()}:\n{_clip(str(value).strip(), limit)}")
    return "\n".join(lines)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - len(_ELLIPSIS))] + _ELLIPSIS
