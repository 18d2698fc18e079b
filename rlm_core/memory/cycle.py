"""One run's use of procedural memory: recall strategies before it, learn from it after.

This is the engine's entry point: :class:`RunMemory` records the run, retrieves and formats the
memories for the program's inputs, and afterwards keeps the trajectory, judges it, credits the
memories the run used and stores what it teaches. Hooks stay the engine's business: the results
carry what ``memory_retrieved``, ``judgment`` and ``memory_extracted`` need.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rlm_core.memory.base import AddResult, MemoryDraft, MemoryStore, RetrievedItem, Verdict
from rlm_core.memory.format import format_memories, format_trajectory

__all__ = ["Learning", "Recall", "RunMemory"]


@dataclasses.dataclass(frozen=True)
class Recall:
    """The memories retrieved for a run, as items and as prompt text."""

    query: str
    k: int
    items: tuple[RetrievedItem, ...]
    context: str
    duration: float


@dataclasses.dataclass(frozen=True)
class Learning:
    """What a finished run taught: the verdict (None when not judged), the memories stored and
    the problems met on the way, one line each."""

    verdict: Verdict | None
    added: tuple[AddResult, ...]
    problems: tuple[str, ...]


class RunMemory:
    """Procedural memory for the run ``run_id``; creating it records the run in ``store``."""

    def __init__(
        self,
        store: MemoryStore,
        *,
        run_id: str,
        question: str,
        ontology: str | None,
        started_at: datetime,
        redact: Callable[[str], str] = str,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.question = question
        self.ontology = ontology
        self._redact = redact
        store.record_run(
            run_id, question=redact(question), ontology=ontology, started_at=started_at
        )

    def recall(self, k: int) -> Recall:
        """The ``k`` best memories for the question (this ontology's and unscoped ones), recorded
        as used by this run."""
        started = time.perf_counter()
        items = self.store.retrieve(self.question, k, ontology=self.ontology)
        duration = time.perf_counter() - started
        self.store.record_usage(self.run_id, items)
        return Recall(self.question, k, tuple(items), format_memories(items), duration)

    def learn(
        self,
        *,
        answer: str | None,
        sparql: str | None,
        steps: Sequence[Mapping[str, Any]],
        judge_lm: Any = None,
        extract_lm: Any = None,
    ) -> Learning:
        """Keep the trajectory; judge it with ``judge_lm`` and credit the memories used; extract
        new memories with ``extract_lm``. Either LM may be None to skip that part.

        A judge or extractor that fails (network, exhausted cassette, unparseable answer) never
        fails the run: the verdict is then unknown, nothing is extracted, and ``problems`` says
        why. Store errors do propagate.
        """
        text = self.keep_trajectory(steps)
        problems: list[str] = []
        verdict = None
        if judge_lm is not None:
            verdict, judged = self.judge(text, answer, sparql, judge_lm)
            problems.extend(judged)
        added: tuple[AddResult, ...] = ()
        if extract_lm is not None:
            added, extracted = self.extract(text, verdict, extract_lm)
            problems.extend(extracted)
        return Learning(verdict, added, tuple(problems))

    def keep_trajectory(self, steps: Sequence[Mapping[str, Any]]) -> str:
        """Store the run's steps (redacted) and return them as the text judge and extractor read.

        Everything kept in the database goes through the redactor: REPL output, answers and
        what the LMs wrote may quote secrets from the environment.
        """
        steps = [
            {
                key: self._redact(value) if isinstance(value, str) else value
                for key, value in step.items()
            }
            for step in steps
        ]
        self.store.record_trajectory(self.run_id, steps)
        return format_trajectory(steps)

    def judge(
        self, text: str, answer: str | None, sparql: str | None, judge_lm: Any
    ) -> tuple[Verdict, list[str]]:
        """Judge the trajectory ``text``, record the verdict and credit the memories used; the
        problems met (a judge that failed or gave no usable answer)."""
        from rlm_core.memory.judge import judge_run

        try:
            verdict = judge_run(judge_lm, self.question, answer, sparql, text)
        except Exception as exc:
            verdict = Verdict(None, f"the judge failed: {type(exc).__name__}: {exc}", None)
        verdict = dataclasses.replace(verdict, reason=self._redact(verdict.reason))
        problems = [f"judge: {verdict.reason}"] if verdict.success is None else []
        self.store.record_judgment(self.run_id, verdict)
        self.store.update_outcome(self.run_id, verdict.success)
        return verdict, problems

    def extract(
        self, text: str, verdict: Verdict | None, extract_lm: Any
    ) -> tuple[tuple[AddResult, ...], list[str]]:
        """Extract memories from the trajectory ``text`` and store them; the problems met (an
        extractor that failed, in which case nothing is stored)."""
        from rlm_core.memory.judge import extract_memories

        judged = verdict or Verdict(None, "the run was not judged", None)
        try:
            drafts = extract_memories(extract_lm, self.question, text, judged)
        except Exception as exc:
            return (), [f"extract: {type(exc).__name__}: {exc}"]
        drafts = [self._redacted_draft(draft) for draft in drafts]
        added = self.store.add_memories(drafts, run_id=self.run_id, scope=self.ontology)
        return tuple(added), []

    def _redacted_draft(self, draft: MemoryDraft) -> MemoryDraft:
        return MemoryDraft(
            title=self._redact(draft.title),
            description=self._redact(draft.description),
            content=self._redact(draft.content),
            tags=tuple(self._redact(tag) for tag in draft.tags),
        )
