"""Judging and extracting with real DSPy, scripted LMs only; and a run's recall/learn cycle."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dspy
import pytest
from dspy.utils.exceptions import LMError

from rlm_core.engine.cassette import Response
from rlm_core.memory import MemoryDraft, RunMemory, SQLiteMemoryStore, Verdict
from rlm_core.memory.judge import ExtractionError, extract_memories, judge_run
from rlm_core.memory.scripted import (
    EXTRACT_ROLE,
    JUDGE_ROLE,
    scripted_extraction,
    scripted_judgment,
)

ScriptedLM = Callable[[str, Sequence[Response]], Any]
QUESTION = "Which properties link prov:Activity to agents?"
STEPS = [
    {"reasoning": "Search first.", "code": 'print(search_entity("Activity"))', "output": "prov:A"},
    {"reasoning": "Query.", "code": "print(sparql_select(q))", "output": "2 rows"},
]
TRAJECTORY = "Step 1\nCode:\nprint(1)\nOutput:\n1"
STRATEGY = MemoryDraft(
    "Find properties that link a class to agents",
    "When asked what connects a class to agents",
    "List properties whose rdfs:domain is the class and whose rdfs:range is prov:Agent.",
    ("Agents", "properties"),
)


def judge(lm: Any) -> Verdict:
    return judge_run(lm, QUESTION, "prov:wasAssociatedWith", "SELECT ?p WHERE {}", TRAJECTORY)


def test_a_success_is_parsed(scripted_lm: ScriptedLM) -> None:
    lm = scripted_lm(JUDGE_ROLE, [scripted_judgment(True, "The SPARQL rows support it.", 0.9)])
    assert judge(lm) == Verdict(True, "The SPARQL rows support it.", 0.9)


def test_a_failure_is_parsed(scripted_lm: ScriptedLM) -> None:
    lm = scripted_lm(JUDGE_ROLE, [scripted_judgment(False, "No evidence.", 0.25)])
    assert judge(lm) == Verdict(False, "No evidence.", 0.25)


@pytest.mark.parametrize(
    "text",
    [
        "I think the run went well.",
        "[[ ## success ## ]]\nmaybe\n\n[[ ## reason ## ]]\nhm\n\n[[ ## confidence ## ]]\n0.5",
        "[[ ## success ## ]]\ntrue\n\n[[ ## reason ## ]]\nfine\n\n[[ ## confidence ## ]]\nhigh",
        "[[ ## success ## ]]\ntrue\n\n[[ ## completed ## ]]",
        "",
    ],
    ids=["prose", "bool-maybe", "confidence-word", "fields-missing", "empty"],
)
def test_an_unparseable_judgment_is_unknown_not_failure(scripted_lm: ScriptedLM, text: str) -> None:
    lm = scripted_lm(JUDGE_ROLE, [Response(JUDGE_ROLE, text)])
    verdict = judge(lm)
    assert verdict.success is None
    assert verdict.confidence is None
    assert "could not be parsed" in verdict.reason
    assert "\n" not in verdict.reason


def test_a_confidence_outside_zero_to_one_is_dropped(scripted_lm: ScriptedLM) -> None:
    lm = scripted_lm(JUDGE_ROLE, [scripted_judgment(True, "ok", 85.0)])
    assert judge(lm) == Verdict(True, "ok", None)


def test_judging_makes_exactly_one_lm_call(scripted_lm: ScriptedLM) -> None:
    """No JSON-adapter retry after a parse failure: the next response stays for the next run."""
    lm = scripted_lm(
        JUDGE_ROLE, [Response(JUDGE_ROLE, "garbage"), scripted_judgment(True, "second", 1.0)]
    )
    assert judge(lm).success is None
    assert judge(lm) == Verdict(True, "second", 1.0)


def test_judging_does_not_touch_global_dspy_settings(scripted_lm: ScriptedLM) -> None:
    before = dspy.settings.lm
    judge(scripted_lm(JUDGE_ROLE, [scripted_judgment(True, "ok", 0.5)]))
    assert dspy.settings.lm is before


def test_lm_errors_propagate_from_judge_run(scripted_lm: ScriptedLM) -> None:
    with pytest.raises(LMError, match="ran out of 'judge' responses"):
        judge(scripted_lm(JUDGE_ROLE, [Response("other", "x")]))


def test_extraction_returns_normalized_drafts(scripted_lm: ScriptedLM) -> None:
    lm = scripted_lm(EXTRACT_ROLE, [scripted_extraction([STRATEGY])])
    [drafted] = extract_memories(lm, QUESTION, TRAJECTORY, Verdict(True, "ok", 0.9))
    assert drafted == MemoryDraft(
        STRATEGY.title, STRATEGY.description, STRATEGY.content, ("agents", "properties")
    )


def test_extraction_is_capped_at_three_and_drops_empty_items(scripted_lm: ScriptedLM) -> None:
    drafts = [MemoryDraft("  ", "no title", "content")] + [
        MemoryDraft(f"Strategy {i}", "", f"Do {i}.") for i in range(5)
    ]
    lm = scripted_lm(EXTRACT_ROLE, [scripted_extraction(drafts)])
    extracted = extract_memories(lm, QUESTION, TRAJECTORY, Verdict(None, "unknown", None))
    assert [d.title for d in extracted] == ["Strategy 0", "Strategy 1", "Strategy 2"]


def test_an_empty_extraction_is_fine(scripted_lm: ScriptedLM) -> None:
    lm = scripted_lm(EXTRACT_ROLE, [scripted_extraction([])])
    assert extract_memories(lm, QUESTION, TRAJECTORY, Verdict(False, "wrong", 0.7)) == []


def test_an_unparseable_extraction_raises(scripted_lm: ScriptedLM) -> None:
    lm = scripted_lm(EXTRACT_ROLE, [Response(EXTRACT_ROLE, "[[ ## memories ## ]]\n{not a list")])
    with pytest.raises(ExtractionError, match="could not be parsed"):
        extract_memories(lm, QUESTION, TRAJECTORY, Verdict(True, "ok", 0.9))


# -- a run's cycle -------------------------------------------------------------------------------


def run_memory(store: SQLiteMemoryStore, run_id: str) -> RunMemory:
    return RunMemory(
        store, run_id=run_id, question=QUESTION, ontology="prov", started_at=datetime.now(UTC)
    )


def test_recall_learn_and_recall_again(
    store: SQLiteMemoryStore, db_path: Path, scripted_lm: ScriptedLM
) -> None:
    first = run_memory(store, "run-1")
    recall = first.recall(3)
    assert (recall.items, recall.context, recall.k, recall.query) == ((), "", 3, QUESTION)

    learning = first.learn(
        answer="prov:wasAssociatedWith",
        sparql="SELECT ...",
        steps=STEPS,
        judge_lm=scripted_lm(JUDGE_ROLE, [scripted_judgment(True, "supported", 0.9)]),
        extract_lm=scripted_lm(EXTRACT_ROLE, [scripted_extraction([STRATEGY])]),
    )
    assert learning.verdict == Verdict(True, "supported", 0.9)
    assert learning.problems == ()
    [added] = learning.added
    assert added.duplicate is False
    assert added.as_event().memory_id == added.memory_id

    second = run_memory(store, "run-2")
    recall = second.recall(3)
    [item] = recall.items
    assert item.memory_id == added.memory_id
    assert item.as_event().rank == 1
    assert STRATEGY.title in recall.context
    learning = second.learn(
        answer=None,
        sparql=None,
        steps=[],
        judge_lm=scripted_lm(JUDGE_ROLE, [scripted_judgment(False, "no answer", 0.8)]),
        extract_lm=scripted_lm(EXTRACT_ROLE, [scripted_extraction([STRATEGY])]),
    )
    assert [a.duplicate for a in learning.added] == [True]
    with sqlite3.connect(db_path) as db:
        row = db.execute(
            "SELECT access_count, success_count, failure_count, run_id, scope FROM memories"
        ).fetchone()
        trajectories = db.execute("SELECT COUNT(*) FROM trajectories").fetchone()[0]
    assert row == (1, 0, 1, "run-1", "prov")  # used once, by run-2, which failed
    assert trajectories == 2


def test_an_unparseable_judgment_is_recorded_as_unknown(
    store: SQLiteMemoryStore, db_path: Path, scripted_lm: ScriptedLM
) -> None:
    store.add_memories([STRATEGY], run_id=None, scope="prov")
    memory = run_memory(store, "run-1")
    assert memory.recall(3).items
    learning = memory.learn(
        answer="x",
        sparql=None,
        steps=STEPS,
        judge_lm=scripted_lm(JUDGE_ROLE, [Response(JUDGE_ROLE, "Looks fine to me!")]),
    )
    assert learning.verdict is not None
    assert learning.verdict.success is None
    assert learning.problems
    assert learning.problems[0].startswith("judge: ")
    with sqlite3.connect(db_path) as db:
        judged = db.execute("SELECT success, confidence FROM judgments").fetchall()
        counted = db.execute("SELECT success_count, failure_count FROM memories").fetchone()
    assert judged == [(None, None)]
    assert counted == (0, 0)  # not a failure
    assert store.stats().judged_unknown == 1


def test_a_failing_judge_or_extractor_does_not_fail_the_run(
    store: SQLiteMemoryStore, scripted_lm: ScriptedLM
) -> None:
    learning = run_memory(store, "run-1").learn(
        answer="x",
        sparql=None,
        steps=STEPS,
        judge_lm=scripted_lm(JUDGE_ROLE, []),  # exhausted at once
        extract_lm=scripted_lm(EXTRACT_ROLE, [Response(EXTRACT_ROLE, "nonsense")]),
    )
    assert learning.verdict is not None
    assert learning.verdict.success is None
    assert "ran out of 'judge' responses" in learning.verdict.reason
    assert learning.added == ()
    assert [problem.split(":")[0] for problem in learning.problems] == ["judge", "extract"]
    assert "ExtractionError" in learning.problems[1]


def test_learning_without_lms_only_keeps_the_trajectory(store: SQLiteMemoryStore) -> None:
    learning = run_memory(store, "run-1").learn(answer="x", sparql=None, steps=STEPS)
    assert learning.verdict is None
    assert learning.added == ()
    assert store.stats().judged_success + store.stats().judged_failure == 0
