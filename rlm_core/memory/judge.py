"""Judge a finished run and extract reusable strategies from it, with DSPy.

Imported only when a run is judged, so the rest of ``rlm_core.memory`` (and ``rlm memory``)
starts without DSPy. The LM is passed in and used through ``dspy.context``, never
``dspy.configure``, so judging cannot change the settings of the program that embeds rlm-core.
The ChatAdapter's JSON fallback is off: one LM call per judgment keeps cassettes replayable,
and an answer that cannot be parsed is reported as such rather than retried.
"""

from __future__ import annotations

import math
from typing import Any

import dspy
import pydantic
from dspy.utils.exceptions import AdapterParseError

from rlm_core.errors import RLMError
from rlm_core.memory.base import MemoryDraft, Verdict, normalize_tags

__all__ = ["MAX_EXTRACTED", "ExtractionError", "extract_memories", "judge_run"]

MAX_EXTRACTED = 3
"""At most this many memories are kept from one run, whatever the LM returns."""


class ExtractionError(RLMError):
    """The extractor's answer could not be parsed; nothing was learned from the run."""


class JudgeRun(dspy.Signature):  # type: ignore[misc]
    """Judge whether a run answered its question about an RDF ontology correctly.

    Read the trajectory: the code the run executed against the ontology and what came back. The
    run succeeded when its answer is correct and supported by what the ontology returned
    (ideally by the results of its SPARQL query); it failed when the answer is wrong,
    unsupported or missing.
    """

    question: str = dspy.InputField(desc="the question the run had to answer")
    answer: str = dspy.InputField(desc="the run's final answer")
    sparql: str = dspy.InputField(desc="the SPARQL query the run submitted as support")
    trajectory: str = dspy.InputField(desc="the run's steps: reasoning, code, output, errors")
    success: bool = dspy.OutputField(desc="true when the answer is correct and supported")
    reason: str = dspy.OutputField(desc="one or two sentences saying why")
    confidence: float = dspy.OutputField(desc="how sure you are, from 0.0 to 1.0")


class Strategy(pydantic.BaseModel):
    """One extracted strategy, as the LM writes it."""

    title: str = pydantic.Field(description="a short imperative name for the strategy")
    description: str = pydantic.Field(description="when the strategy applies, in one sentence")
    content: str = pydantic.Field(
        description="the steps, concrete enough to follow: which tools, which SPARQL patterns"
    )
    tags: list[str] = pydantic.Field(default_factory=list, description="a few lower-case keywords")


class ExtractStrategies(dspy.Signature):  # type: ignore[misc]
    """Write down what a finished run over an RDF ontology teaches for future questions.

    A strategy is procedural: how to find this kind of answer with the tools (search_entity,
    describe_entity, sparql_select), not the answer itself. Failed runs teach too: a strategy
    may say what to avoid. Return at most 3 strategies, or an empty list when the run teaches
    nothing new.
    """

    question: str = dspy.InputField(desc="the question the run had to answer")
    trajectory: str = dspy.InputField(desc="the run's steps: reasoning, code, output, errors")
    verdict: str = dspy.InputField(desc="the judge's verdict on the run")
    memories: list[Strategy] = dspy.OutputField(desc="at most 3 reusable strategies")


def judge_run(
    lm: Any, question: str, answer: str | None, sparql: str | None, trajectory_text: str
) -> Verdict:
    """Ask ``lm`` whether the run succeeded.

    An answer DSPy cannot parse is an unknown verdict (``success`` None), never a failure: the
    run may well have succeeded. A confidence outside 0..1 is dropped (None). LM errors (network,
    an exhausted cassette) propagate.
    """
    try:
        prediction = _predict(
            lm,
            JudgeRun,
            question=question,
            answer=answer or "(none)",
            sparql=sparql or "(none)",
            trajectory=trajectory_text,
        )
    except AdapterParseError as exc:
        return Verdict(None, f"the judge's answer could not be parsed: {_parse_problem(exc)}", None)
    confidence = float(prediction.confidence)
    return Verdict(
        success=bool(prediction.success),
        reason=str(prediction.reason).strip(),
        confidence=confidence if math.isfinite(confidence) and 0 <= confidence <= 1 else None,
    )


def extract_memories(
    lm: Any, question: str, trajectory_text: str, verdict: Verdict
) -> list[MemoryDraft]:
    """Ask ``lm`` for up to :data:`MAX_EXTRACTED` strategies learned from the run.

    Items without a title or a content are dropped; tags are normalized.

    :raises ExtractionError: the LM's answer could not be parsed.
    """
    try:
        prediction = _predict(
            lm,
            ExtractStrategies,
            question=question,
            trajectory=trajectory_text,
            verdict=_describe(verdict),
        )
    except AdapterParseError as exc:
        raise ExtractionError(
            f"the extractor's answer could not be parsed: {_parse_problem(exc)}"
        ) from None
    drafts = [
        MemoryDraft(
            title=strategy.title.strip(),
            description=strategy.description.strip(),
            content=strategy.content.strip(),
            tags=normalize_tags(strategy.tags),
        )
        for strategy in prediction.memories
    ]
    return [draft for draft in drafts if draft.title and draft.content][:MAX_EXTRACTED]


def _predict(lm: Any, signature: type[Any], **inputs: str) -> Any:
    adapter = dspy.ChatAdapter(use_json_adapter_fallback=False)
    with dspy.context(lm=lm, adapter=adapter):
        return dspy.Predict(signature)(**inputs)


def _describe(verdict: Verdict) -> str:
    outcome = {True: "succeeded", False: "failed", None: "could not be judged"}[verdict.success]
    confidence = "" if verdict.confidence is None else f" (confidence {verdict.confidence:.2f})"
    return f"The run {outcome}{confidence}. {verdict.reason}".strip()


def _parse_problem(exc: AdapterParseError) -> str:
    """The first line of DSPy's message and the start of the response, on one line."""
    first = str(exc).strip().splitlines()[0].strip()
    response = " ".join(str(exc.lm_response).split())
    return f"{first[:200]} (response: {response[:120]!r})"
