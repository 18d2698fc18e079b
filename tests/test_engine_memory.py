"""Procedural memory in real runs: retrieve before, judge and extract after, in hook order."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlm_core import Settings, run
from rlm_core._demo import DEMO_CASSETTE, DEMO_ONTOLOGY, DEMO_QUESTION
from rlm_core.cli import main
from rlm_core.config import MemorySettings
from rlm_core.engine.cassette import Response
from rlm_core.events import Judgment, MemoryExtraction, MemoryRetrieval
from rlm_core.memory import SQLiteMemoryStore
from rlm_core.memory.scripted import scripted_judgment
from rlm_core.testing import RecordingPlugin, capture_events, scripted_step, write_cassette

pytestmark = pytest.mark.usefixtures("in_tmp")


def demo_run(settings: Settings | None = None) -> tuple[object, RecordingPlugin]:
    with capture_events() as events:
        result = run(
            DEMO_QUESTION,
            DEMO_ONTOLOGY,
            model=f"scripted:{DEMO_CASSETTE}",
            trackers=[],
            config=settings or Settings(),
        )
    return result, events


def test_a_second_run_retrieves_what_the_first_extracted(tmp_path: Path) -> None:
    _, first_events = demo_run()
    names = first_events.hook_names()
    assert names[:3] == ["run_start", "setup", "memory_retrieved"]
    # the judge's LM call, then its judgment; the extractor's, then its extraction
    assert names[-5:] == ["llm_call", "judgment", "llm_call", "memory_extracted", "run_end"]
    (retrieval,) = (call.payload for call in first_events.of("memory_retrieved"))
    assert isinstance(retrieval, MemoryRetrieval)
    assert retrieval.items == ()
    (verdict,) = (call.payload for call in first_events.of("judgment"))
    assert isinstance(verdict, Judgment)
    assert (verdict.success, verdict.confidence) == (True, 0.9)
    (extraction,) = (call.payload for call in first_events.of("memory_extracted"))
    assert isinstance(extraction, MemoryExtraction)
    extracted = {item.title: item for item in extraction.items}
    assert len(extracted) == 2
    assert not any(item.duplicate for item in extracted.values())
    roles = [call.payload.role for call in first_events.of("llm_call")]
    assert roles[-2:] == ["judge", "extract"]

    _, second_events = demo_run()
    (retrieval,) = (call.payload for call in second_events.of("memory_retrieved"))
    assert {item.memory_id for item in retrieval.items} == {
        item.memory_id for item in extracted.values()
    }
    assert [item.rank for item in retrieval.items] == [1, 2]
    assert retrieval.items[0].score >= retrieval.items[1].score
    (extraction,) = (call.payload for call in second_events.of("memory_extracted"))
    assert all(item.duplicate for item in extraction.items)

    with SQLiteMemoryStore(tmp_path / "rlm-memory.db") as store:
        stats = store.stats()
    assert stats.memories == 2


def test_an_unparsable_judgment_is_recorded_as_unknown_and_the_answer_is_kept(
    tmp_path: Path,
) -> None:
    cassette = write_cassette(
        tmp_path / "bad-judge.jsonl",
        [
            scripted_step("Submit.", "SUBMIT(answer='yes', sparql='', evidence=[])"),
            Response("judge", "I think it went well!", 10, 5),
        ],
    )
    with capture_events() as events:
        result = run(
            "q",
            DEMO_ONTOLOGY,
            model=f"scripted:{cassette}",
            trackers=[],
            config=Settings(memory=MemorySettings(extract=False)),
        )
    assert result.converged
    assert result.answer == "yes"
    (verdict,) = (call.payload for call in events.of("judgment"))
    assert verdict.success is None
    assert any(problem.startswith("memory judge:") for problem in result.problems)
    assert "memory_extracted" not in events.hook_names()


def test_a_failed_extraction_is_a_problem_not_a_failure(tmp_path: Path) -> None:
    cassette = write_cassette(
        tmp_path / "no-extract.jsonl",
        [
            scripted_step("Submit.", "SUBMIT(answer='yes', sparql='', evidence=[])"),
            scripted_judgment(True, "fine", 0.5),
        ],
    )
    with capture_events() as events:
        result = run("q", DEMO_ONTOLOGY, model=f"scripted:{cassette}", trackers=[])
    assert result.converged
    assert result.error is None
    assert any("ran out of 'extract' responses" in problem for problem in result.problems)
    assert "judgment" in events.hook_names()
    assert "memory_extracted" not in events.hook_names()


def test_memory_can_be_switched_off_per_run() -> None:
    _, events = demo_run(Settings(memory=MemorySettings(enabled=False)))
    names = events.hook_names()
    assert "memory_retrieved" not in names
    assert "judgment" not in names
    assert not Path("rlm-memory.db").exists()


def test_a_corrupt_memory_database_is_a_clear_error_and_no_memory_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rlm-memory.db").write_bytes(b"this is not a database" * 100)
    assert main(["demo", "--no-trackers"]) == 2
    err = capsys.readouterr().err
    assert "rlm-memory.db" in err
    assert "--no-memory" in err
    assert main(["demo", "--no-trackers", "--no-memory"]) == 0
