"""The metrics of real scripted runs, worked out by hand, as a RecordingPlugin and the plugin's own
state file receive them."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from rlm_core.config import MemorySettings, Settings
from rlm_core.engine.cassette import Response
from rlm_core.memory import MemoryDraft
from rlm_core.testing import RecordingPlugin
from rlm_plugins.memory_metrics import MemoryMetricsTracker
from tests.memory_metrics.helpers import (
    EQUIPMENT,
    HEADER,
    HIERARCHY,
    cassette,
    entry,
    extracted,
    judged,
    memory_settings,
    published,
    scripted_run,
    seed,
    step,
    stored_rows,
    submit,
)

M = "memory_metrics."


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    seed(tmp_path / "rlm-memory.db")


def test_a_successful_run_with_memory(tmp_path: Path) -> None:
    new = MemoryDraft("Check the range", "Ranges say what a property points to.", "Read it.")
    model = cassette(
        tmp_path / "c.jsonl",
        step("print(describe_entity('coffee:usesEquipment'))", prompt_tokens=1000),
        step(submit("SELECT ?d WHERE { ?s coffee:usesEquipment ?d }"), prompt_tokens=1200),
        judged(True, 0.8),
        extracted([EQUIPMENT, new]),  # one already stored, one new
    )
    recorder = RecordingPlugin()
    result = scripted_run(
        model, memory_settings(tmp_path / "rlm-memory.db"), MemoryMetricsTracker(), recorder
    )
    assert result.converged

    (retrieval,) = (call.payload for call in recorder.of("memory_retrieved"))
    assert [hit.title for hit in retrieval.items] == [EQUIPMENT.title, HIERARCHY.title]
    scores = [hit.score for hit in retrieval.items]
    # What each of the two root prompts showed: the two memories, numbered in rank order.
    injected = "\n".join([HEADER, entry(1, EQUIPMENT), entry(2, HIERARCHY)])
    tokens = len(injected) / 4
    assert published(recorder) == {
        M + "enabled": 1.0,
        M + "retrieved": 2.0,
        M + "score_mean": (scores[0] + scores[1]) / 2,
        M + "score_top": scores[0],
        M + "retrieval_s": retrieval.duration,
        M + "extracted": 2.0,
        M + "duplicates": 1.0,
        M + "success": 1.0,
        M + "confidence": 0.8,
        M + "injected_tokens": tokens,
        M + "prompt_share": tokens * 2 / (1000 + 1200),
        # coffee:usesEquipment is in the code; rdfs:subClassOf* and coffee:Brewing are not.
        M + "used": 1.0,
        M + "used_share": 0.5,
    }


def test_the_metrics_land_in_the_state_file_too(tmp_path: Path) -> None:
    model = cassette(
        tmp_path / "c.jsonl",
        step("x = sparql_select('SELECT ?c WHERE { ?c rdfs:subClassOf* coffee:Process }')"),
        step(submit()),
        judged(False, 0.6),
        extracted(),
    )
    recorder = RecordingPlugin()
    tracker = MemoryMetricsTracker()
    result = scripted_run(
        model,
        memory_settings(tmp_path / "rlm-memory.db"),
        tracker,
        recorder,
        question="Which superclass hierarchy declares the brewing properties?",
    )
    assert tracker.close(), "the row was written"
    values = published(recorder)
    assert values[M + "success"] == 0.0
    assert values[M + "confidence"] == 0.6
    assert (values[M + "extracted"], values[M + "duplicates"]) == (0.0, 0.0)
    assert values[M + "used"] == 1.0  # HIERARCHY's rdfs:subClassOf* is in the code
    state = tmp_path / "rlm-memory-metrics.db"
    ((metrics, success, retrieved, used, tokens),) = stored_rows(
        state,
        "SELECT metrics, success, retrieved, used, prompt_tokens + completion_tokens FROM runs "
        "WHERE run_id = ?",
        result.run_id,
    )
    assert json.loads(metrics) == values
    assert (success, retrieved, used) == (0, 2, 1)
    assert tokens == result.tokens == 2 * 1050 + 1520 + 1510
    hits = stored_rows(
        state,
        "SELECT title, rank, used FROM retrievals WHERE run_id = ? ORDER BY rank",
        result.run_id,
    )
    assert hits == [(HIERARCHY.title, 1, 1), (EQUIPMENT.title, 2, 0)]


def test_a_run_without_memory_says_so_and_nothing_else(tmp_path: Path) -> None:
    model = cassette(tmp_path / "c.jsonl", step("print(1)"), step(submit()))
    recorder = RecordingPlugin()
    settings = Settings(memory=MemorySettings(enabled=False))
    scripted_run(model, settings, MemoryMetricsTracker(), recorder)
    assert published(recorder) == {
        M + "enabled": 0.0,
        M + "retrieved": 0.0,
        M + "injected_tokens": 0.0,
        M + "prompt_share": 0.0,
    }


def test_an_unusable_verdict_leaves_success_and_confidence_out(tmp_path: Path) -> None:
    model = cassette(
        tmp_path / "c.jsonl", step(submit()), Response("judge", "It went fine, I think.", 10, 5)
    )
    recorder = RecordingPlugin()
    settings = memory_settings(tmp_path / "rlm-memory.db", extract=False)
    scripted_run(model, settings, MemoryMetricsTracker(), recorder)
    (verdict,) = (call.payload for call in recorder.of("judgment"))
    assert verdict.success is None
    values = published(recorder)
    assert not {M + "success", M + "confidence", M + "extracted"} & set(values)
    assert values[M + "retrieved"] == 2.0


def test_an_unreadable_memory_database_leaves_out_only_what_needs_the_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = cassette(tmp_path / "c.jsonl", step(submit()), judged(True), extracted())
    recorder = RecordingPlugin()
    with caplog.at_level(logging.WARNING, "rlm.memory_metrics"):
        scripted_run(
            model,
            memory_settings(tmp_path / "rlm-memory.db"),
            MemoryMetricsTracker(db="elsewhere.db"),
            recorder,
        )
    values = published(recorder)
    assert set(values) == {
        M + name
        for name in (
            "enabled",
            "retrieved",
            "score_mean",
            "score_top",
            "retrieval_s",
            "extracted",
            "duplicates",
            "success",
            "confidence",
        )
    }
    assert "no memory database at" in caplog.text
    assert "elsewhere.db" in caplog.text


def test_the_plugin_refuses_a_bad_option() -> None:
    with pytest.raises(ValueError, match="memory_metrics: state must be a file path"):
        MemoryMetricsTracker(state="")
