"""The run-level memory metrics, computed from one run's events and its memories' text.

Pure functions: the tracker gathers the inputs during the run and does the I/O at ``run_end``.
A metric whose input is unknown is left out, never reported as zero.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from rlm_core.events import Judgment, MemoryExtraction, MemoryRetrieval
from rlm_plugins.memory_metrics.sources import MemoryText, injected_text, prompt_preview
from rlm_plugins.memory_metrics.terms import distinctive_terms, used_terms

__all__ = ["CHARS_PER_TOKEN", "METRICS", "PREFIX", "Measurement", "RunObservations", "measure"]

CHARS_PER_TOKEN = 4
"""The token estimate of injected memory text: characters / 4, the usual rule of thumb for
English and code with GPT-style tokenizers (no tokenizer is loaded for it)."""

PREFIX = "memory_metrics."
METRICS: Mapping[str, str] = {
    f"{PREFIX}{name}": meaning
    for name, meaning in (
        ("enabled", "1 when the run used procedural memory (retrieval ran), else 0"),
        ("retrieved", "memories retrieved and put in the prompt"),
        ("score_mean", "mean retrieval score of those memories (-bm25, higher is better)"),
        ("score_top", "the best retrieval score"),
        ("retrieval_s", "seconds retrieval took"),
        ("extracted", "memories the extractor produced after the run"),
        ("duplicates", "of those, how many were already stored (skipped)"),
        ("success", "the judge's verdict: 1 success, 0 failure"),
        ("confidence", "the judge's confidence"),
        ("injected_tokens", "estimated tokens of memory text in each root prompt (chars / 4)"),
        ("prompt_share", "share of the root calls' prompt tokens spent on memory text"),
        ("used", "retrieved memories whose distinctive terms appear in the model's code"),
        ("used_share", "used / retrieved"),
    )
}
"""Every metric this plugin publishes, name to meaning (docs and tests read it)."""


@dataclasses.dataclass
class RunObservations:
    """What the tracker saw of one run."""

    retrieval: MemoryRetrieval | None = None
    code: list[str] = dataclasses.field(default_factory=list)
    root_prompt_tokens: int = 0
    root_calls_with_tokens: int = 0
    verdict: Judgment | None = None
    extraction: MemoryExtraction | None = None
    measurement: Measurement | None = None  # once run_metrics measured the run


@dataclasses.dataclass(frozen=True)
class Measurement:
    """The run's metric values and, per retrieved memory, whether it was used (None: its text
    was not available)."""

    values: dict[str, float]
    used: dict[str, bool | None]


def measure(
    seen: RunObservations, texts: Mapping[str, MemoryText] | None, sparql: str | None
) -> Measurement:
    """The metrics of a finished run; ``texts`` holds the retrieved memories' text, or None when
    it could not be read (the metrics that need it are then left out)."""
    values: dict[str, float] = {}
    hits = seen.retrieval.items if seen.retrieval is not None else ()
    values[f"{PREFIX}enabled"] = float(seen.retrieval is not None)
    values[f"{PREFIX}retrieved"] = float(len(hits))
    if seen.retrieval is not None:
        values[f"{PREFIX}retrieval_s"] = seen.retrieval.duration
    if hits:
        scores = [hit.score for hit in hits]
        values[f"{PREFIX}score_mean"] = sum(scores) / len(scores)
        values[f"{PREFIX}score_top"] = max(scores)
    if seen.extraction is not None:
        items = seen.extraction.items
        values[f"{PREFIX}extracted"] = float(len(items))
        values[f"{PREFIX}duplicates"] = float(sum(item.duplicate for item in items))
    if seen.verdict is not None and seen.verdict.success is not None:
        values[f"{PREFIX}success"] = float(seen.verdict.success)
    if seen.verdict is not None and seen.verdict.confidence is not None:
        values[f"{PREFIX}confidence"] = seen.verdict.confidence
    if texts is None or any(hit.memory_id not in texts for hit in hits):
        return Measurement(values, dict.fromkeys((hit.memory_id for hit in hits), None))
    tokens = len(prompt_preview(injected_text(hits, texts))) / CHARS_PER_TOKEN if hits else 0.0
    values[f"{PREFIX}injected_tokens"] = tokens
    if seen.root_prompt_tokens > 0:
        spent = tokens * seen.root_calls_with_tokens
        values[f"{PREFIX}prompt_share"] = min(1.0, spent / seen.root_prompt_tokens)
    code = "\n".join([*seen.code, sparql or ""])
    used: dict[str, bool | None] = {
        hit.memory_id: _was_used(texts[hit.memory_id], code) for hit in hits
    }
    if hits:
        count = sum(bool(flag) for flag in used.values())
        values[f"{PREFIX}used"] = float(count)
        values[f"{PREFIX}used_share"] = count / len(hits)
    return Measurement(values, used)


def _was_used(memory: MemoryText, code: str) -> bool:
    return bool(used_terms(distinctive_terms(memory.full_text), code))
