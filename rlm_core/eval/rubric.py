"""The rubric judge: an LM reads the task's rubric and the run's answer and says pass or fail.

Imported only when a task has a rubric, so the rest of ``rlm_core.eval`` starts without DSPy.
One LM call per verdict and no JSON fallback, so cassettes replay it exactly.
"""

from __future__ import annotations

from typing import Any

import dspy
from dspy.utils.exceptions import AdapterParseError

__all__ = ["RubricJudgment", "judge_rubric"]


class RubricJudgment(dspy.Signature):  # type: ignore[misc]
    """Decide whether an answer to a question about an RDF ontology meets the rubric."""

    question: str = dspy.InputField(desc="the question that was asked")
    rubric: str = dspy.InputField(desc="what a passing answer must do")
    answer: str = dspy.InputField(desc="the answer to grade")
    sparql: str = dspy.InputField(desc="the SPARQL query submitted with the answer")
    passed: bool = dspy.OutputField(desc="true when the answer meets the rubric")
    reason: str = dspy.OutputField(desc="one sentence saying why")


def judge_rubric(
    lm: Any, question: str, rubric: str, answer: str | None, sparql: str | None
) -> tuple[bool, str]:
    """(passed, reason); an unparsable verdict is a failed check whose reason says so."""
    adapter = dspy.ChatAdapter(use_json_adapter_fallback=False)
    try:
        with dspy.context(lm=lm, adapter=adapter):
            prediction = dspy.Predict(RubricJudgment)(
                question=question,
                rubric=rubric,
                answer=answer or "(none)",
                sparql=sparql or "(none)",
            )
    except AdapterParseError:
        return False, "the rubric judge's answer could not be parsed"
    return bool(prediction.passed), str(prediction.reason).strip()
