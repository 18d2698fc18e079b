"""Shared by the memory-metrics tests: seeded memories, scripted cassettes and runs. No tests here.

Every number a test expects is worked out from what is written here: the memories' text, the
token counts of each scripted response, and the retrieval event of the run.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlm_core import RunResult, Settings, flush, run
from rlm_core._demo import DEMO_ONTOLOGY
from rlm_core.config import MemorySettings
from rlm_core.engine.cassette import Response
from rlm_core.memory import MemoryDraft, SQLiteMemoryStore
from rlm_core.memory.scripted import scripted_extraction, scripted_judgment
from rlm_core.testing import RecordingPlugin, scripted_step, write_cassette

HEADER = "Strategies that worked on earlier questions (use them only where they fit):"
"""The first line of the memories text the engine injects (rlm_core.memory.format_memories)."""

EQUIPMENT = MemoryDraft(
    "Link a brew to its equipment",
    "Brewing sessions name the device they use.",
    "Query coffee:usesEquipment on the brewing session; its range is coffee:Equipment.",
    ("equipment",),
)
HIERARCHY = MemoryDraft(
    "Walk up the class hierarchy",
    "Properties may be declared on a superclass.",
    "Follow the property path rdfs:subClassOf* from coffee:Brewing to reach inherited properties.",
    ("hierarchy",),
)
STEEP = MemoryDraft(
    "Steep tea leaves",
    "Tea needs hot water and time.",
    "Look for coffee:hasInput on the steeping process to find the leaves.",
    ("tea",),
)

EQUIPMENT_QUESTION = "Which equipment does a brewing session use?"  # retrieves EQUIPMENT first
HIERARCHY_QUESTION = "Which superclass hierarchy declares the brewing properties?"  # HIERARCHY
TEA_QUESTION = "How long should tea leaves steep?"  # STEEP, on the "tea" ontology


def entry(number: int, memory: MemoryDraft) -> str:
    """One memory as format_memories writes it: number, title, description, indented content."""
    return f"{number}. {memory.title}: {memory.description}\n   {memory.content}"


def seed(db: Path) -> None:
    """The memory database with EQUIPMENT and HIERARCHY (coffee) and STEEP (tea)."""
    with SQLiteMemoryStore(db) as store:
        store.add_memories([EQUIPMENT, HIERARCHY], run_id=None, scope="coffee", source="test")
        store.add_memories([STEEP], run_id=None, scope="tea", source="test")


def step(code: str, *, prompt_tokens: int = 1000, completion_tokens: int = 50) -> Response:
    """A root step with exact token counts."""
    response = scripted_step("Next step.", code, prompt_tokens=prompt_tokens)
    return dataclasses.replace(response, completion_tokens=completion_tokens)


def judged(success: bool, confidence: float = 0.8) -> Response:
    """The judge's verdict: 1500 prompt and 20 completion tokens."""
    response = scripted_judgment(success, "scripted", confidence)
    return dataclasses.replace(response, prompt_tokens=1500, completion_tokens=20)


def extracted(memories: Sequence[MemoryDraft] = ()) -> Response:
    """The extractor's answer: 1500 prompt and 10 completion tokens."""
    response = scripted_extraction(memories)
    return dataclasses.replace(response, prompt_tokens=1500, completion_tokens=10)


def submit(sparql: str = "") -> str:
    return f"SUBMIT(answer='done', sparql={sparql!r}, evidence=[])"


def cassette(path: Path, *responses: Response) -> str:
    """A scripted model string for these responses."""
    return f"scripted:{write_cassette(path, responses)}"


def memory_settings(db: Path, **memory: Any) -> Settings:
    return Settings(step_timeout=20.0, memory=MemorySettings(path=str(db), **memory))


def scripted_run(
    model: str,
    settings: Settings,
    *plugins: object,
    question: str = EQUIPMENT_QUESTION,
    ontology: Path = DEMO_ONTOLOGY,
) -> RunResult:
    """One real run with only ``plugins`` (no installed tracker)."""
    result = run(question, ontology, model=model, trackers=[], plugins=plugins, config=settings)
    flush(60.0)  # what the trackers hand to background workers is delivered before it is read
    return result


def published(recorder: RecordingPlugin) -> dict[str, float]:
    """The values of the run's single run-level ``metrics`` call."""
    (call,) = recorder.of("metrics")
    assert call.kwargs["step"] is None
    return dict(call.kwargs["values"])


def stored_rows(state: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(state)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()
