"""Cassette responses for the judge and the extractor, to script them in tests and demos.

Pure string builders in DSPy's ChatAdapter format (``[[ ## field ## ]]`` sections, then
``[[ ## completed ## ]]``), like :func:`rlm_core.testing.scripted_step`; no DSPy import.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from rlm_core.engine.cassette import Response
from rlm_core.memory.base import MemoryDraft

__all__ = ["EXTRACT_ROLE", "JUDGE_ROLE", "scripted_extraction", "scripted_judgment"]

JUDGE_ROLE = "judge"
"""Cassette role of the LM that judges a finished run."""

EXTRACT_ROLE = "extract"
"""Cassette role of the LM that extracts memories from a finished run."""


def scripted_judgment(
    success: bool, reason: str, confidence: float, *, prompt_tokens: int = 1500
) -> Response:
    """The judge's answer: ``success`` as ``true``/``false``, ``confidence`` as a number."""
    text = _chat_format(
        success="true" if success else "false", reason=reason, confidence=repr(float(confidence))
    )
    return Response(JUDGE_ROLE, text, prompt_tokens, max(1, len(text) // 4))


def scripted_extraction(items: Sequence[MemoryDraft], *, prompt_tokens: int = 1500) -> Response:
    """The extractor's answer: the memories as a JSON list of objects, which is what DSPy's
    ChatAdapter parses into a list of models."""
    memories = [
        {
            "title": item.title,
            "description": item.description,
            "content": item.content,
            "tags": list(item.tags),
        }
        for item in items
    ]
    text = _chat_format(memories=json.dumps(memories, ensure_ascii=False, indent=1))
    return Response(EXTRACT_ROLE, text, prompt_tokens, max(1, len(text) // 4))


def _chat_format(**fields: str) -> str:
    sections = [f"[[ ## {name} ## ]]\n{value}" for name, value in fields.items()]
    return "\n\n".join([*sections, "[[ ## completed ## ]]"])
