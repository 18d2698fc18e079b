"""The bundled demo: ontology, question and cassette that ``rlm demo`` replays offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rdflib

from rlm_core import run
from rlm_core._demo import DEMO_CASSETTE, DEMO_ONTOLOGY, DEMO_QUESTION
from rlm_core.cli import main
from rlm_core.testing import capture_events

pytestmark = pytest.mark.usefixtures("in_tmp")


def test_demo_run_answers_and_its_sparql_returns_rows_on_the_demo_ontology() -> None:
    with capture_events() as events:
        result = run(
            DEMO_QUESTION,
            DEMO_ONTOLOGY,
            model=f"scripted:{DEMO_CASSETTE}",
            trackers=[],
            memory=False,
        )
    assert result.converged, result.error
    assert result.answer is not None
    assert "coffee:usesEquipment" in result.answer
    assert result.sparql is not None
    rows = rdflib.Graph().parse(DEMO_ONTOLOGY).query(result.sparql)
    properties = {str(row[0]).rsplit("#", 1)[1] for row in rows}
    assert properties == {"usesEquipment", "hasInput", "hasOutput"}
    assert events.hook_names().count("iteration") == 4
    assert [c.payload.name for c in events.of("tool_call")] == [
        "search_entity",
        "describe_entity",
        "sparql_select",
        "sparql_select",
    ]
    assert [c.payload.role for c in events.of("llm_call")] == ["root"] * 3 + ["sub", "root"]
    assert "judgment" not in events.hook_names()


def test_rlm_demo_json_prints_the_converged_result(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--json", "--no-trackers"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["event"] == "run_end"
    assert result["converged"] is True
    assert result["iterations"] == 4


def test_rlm_demo_prints_answer_sparql_evidence_and_run_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--no-trackers", "--tag", "purpose=test"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("rlm demo replays a recorded run: offline, no API key.")
    assert f"\nQuestion: {DEMO_QUESTION}\n\nAnswer: A brew (coffee:Brewing" in out
    assert "\nSPARQL:\n  PREFIX coffee:" in out
    assert "Evidence (4):" in out
    assert ": converged · 4 iterations · 7 LM calls" in out


def test_rlm_demo_says_where_procedural_memory_went(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--no-trackers"]) == 0
    memory = in_tmp / "rlm-memory.db"
    assert memory.is_file()
    last = capsys.readouterr().out.rstrip().splitlines()[-1]
    assert last == f"  memory: {memory.resolve()} (procedural memory: rlm memory stats)"


def test_rlm_demo_without_memory_does_not_mention_a_memory_database(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--no-trackers", "--no-memory"]) == 0
    assert "memory:" not in capsys.readouterr().out
    assert not (in_tmp / "rlm-memory.db").exists()


def test_rlm_run_without_a_model_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "q", "--ontology", str(DEMO_ONTOLOGY), "--no-trackers"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rlm: error: no model given")


def test_rlm_run_with_a_bad_tag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "run",
            "q",
            "--ontology",
            str(DEMO_ONTOLOGY),
            "--lm",
            f"scripted:{DEMO_CASSETTE}",
            "--tag",
            "novalue",
            "--no-trackers",
        ]
    )
    assert code == 2
    assert "--tag 'novalue': expected KEY=VALUE" in capsys.readouterr().err


def test_rlm_run_with_a_missing_cassette_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "run",
            "q",
            "--ontology",
            str(DEMO_ONTOLOGY),
            "--lm",
            f"scripted:{tmp_path / 'nope.jsonl'}",
            "--no-trackers",
        ]
    )
    assert code == 2
    assert "cannot read cassette" in capsys.readouterr().err


def test_rlm_run_json_says_what_was_asked_of_which_model_and_where_it_went(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = f"scripted:{DEMO_CASSETTE}"
    argv = ["run", DEMO_QUESTION, "--ontology", str(DEMO_ONTOLOGY), "--lm", model]
    assert main([*argv, "-t", "jsonl", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["question"] == DEMO_QUESTION
    assert result["ontology"] == str(DEMO_ONTOLOGY)
    assert (result["model"], result["sub_model"]) == (model, model)
    log = in_tmp / "runs" / f"{result['run_id']}.jsonl"
    assert result["locations"] == {
        "jsonl": str(log),
        "memory": str(in_tmp / "rlm-memory.db"),
    }
    assert log.is_file()
    assert result["converged"] is True
