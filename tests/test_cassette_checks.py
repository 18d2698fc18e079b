"""A cassette says what it answered: another question or ontology is a usage error, not an answer.

Through the ``rlm`` command with the default trackers: the refusal is one line, exit 2, and no
tracker, memory or run log saw a run.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rlm_core._demo import DEMO_CASSETTE, DEMO_ONTOLOGY, DEMO_QUESTION
from rlm_core.cli import main
from rlm_core.engine.cassette import Cassette, CassetteError, CassetteMismatch, Response
from rlm_core.eval.demo import DEMO_CASSETTES
from rlm_core.testing import write_cassette
from tests.helpers.paths import SHARED_ONTOLOGIES

RLM = Path(sys.executable).parent / "rlm"
PROV = SHARED_ONTOLOGIES / "prov.ttl"
DUL = SHARED_ONTOLOGIES / "DUL.ttl"
PROV_CASSETTE = Path(__file__).resolve().parent / "cassettes" / "prov-activity.jsonl"
PROV_QUESTION = "What is prov:Activity and which properties link it to agents?"


def rlm(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``rlm`` as a user runs it, with every default tracker."""
    return subprocess.run(
        [str(RLM), *args], cwd=cwd, capture_output=True, text=True, timeout=180, check=False
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("question", "ontology", "why"),
    [
        ("What is an activity?", DUL, "was recorded for the question 'What is prov:Activity"),
        (PROV_QUESTION, DUL, "was recorded over another ontology than"),
        ("What is an activity?", PROV, "was recorded for the question 'What is prov:Activity"),
    ],
)
def test_a_cassette_for_another_run_exits_2_before_any_tracker_records_it(
    in_tmp: Path, question: str, ontology: Path, why: str
) -> None:
    result = rlm(
        in_tmp, "run", question, "--ontology", str(ontology), "--lm", f"scripted:{PROV_CASSETTE}"
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"rlm: error: cassette {PROV_CASSETTE} ")
    assert why in lines[0]
    assert lines[0].endswith(
        "--lm-allow-mismatch (run(allow_cassette_mismatch=True)) replays it anyway"
    )
    assert result.stdout == ""
    assert list(in_tmp.iterdir()) == [], "nothing recorded: no run log, MLflow store or memory"


def test_lm_allow_mismatch_replays_it_anyway(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "run",
            "What is an activity?",
            "--ontology",
            str(DUL),
            "--lm",
            f"scripted:{PROV_CASSETTE}",
            "--lm-allow-mismatch",
            "--no-trackers",
            "--no-memory",
        ]
    )
    assert code == 0
    assert "Answer: A prov:Activity is" in capsys.readouterr().out


def test_a_recording_carries_question_and_ontology_hash_and_replays_only_for_them(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = in_tmp / "again.jsonl"
    base = ["--ontology", str(DEMO_ONTOLOGY), "--no-trackers", "--no-memory"]
    assert (
        main(
            [
                "run",
                DEMO_QUESTION,
                *base,
                "--lm",
                f"scripted:{DEMO_CASSETTE}",
                "--record",
                str(recorded),
            ]
        )
        == 0
    )
    header = json.loads(recorded.read_text(encoding="utf-8").splitlines()[0])
    assert header["question"] == DEMO_QUESTION
    assert header["ontology_sha256"] == sha256(DEMO_ONTOLOGY)
    capsys.readouterr()
    assert main(["run", DEMO_QUESTION, *base, "--lm", f"scripted:{recorded}"]) == 0
    assert main(["run", "Which roast levels exist?", *base, "--lm", f"scripted:{recorded}"]) == 2
    assert "was recorded for the question" in capsys.readouterr().err


def test_an_edited_ontology_is_another_ontology(tmp_path: Path) -> None:
    edited = tmp_path / "coffee.ttl"
    edited.write_bytes(DEMO_ONTOLOGY.read_bytes() + b"\n# edited\n")
    cassette = Cassette.load(DEMO_CASSETTE)
    cassette.check(DEMO_QUESTION, DEMO_ONTOLOGY)
    with pytest.raises(CassetteMismatch, match="another ontology than"):
        cassette.check(DEMO_QUESTION, edited)


def test_a_cassette_without_question_and_hash_replays_unchecked(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The documented choice for cassettes written before these fields, or by hand."""
    lines = DEMO_CASSETTE.read_text(encoding="utf-8").splitlines()
    old = in_tmp / "old.jsonl"
    old.write_text("\n".join(['{"cassette": 1, "recorded_with": "x"}', *lines[1:]]) + "\n")
    code = main(
        [
            *("run", "Another question", "--ontology", str(DEMO_ONTOLOGY)),
            *("--lm", f"scripted:{old}", "--no-trackers", "--no-memory"),
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "Answer: A brew" in captured.out
    assert captured.err == ""


def test_write_cassette_can_record_what_it_is_for(tmp_path: Path) -> None:
    path = write_cassette(
        tmp_path / "c.jsonl", [Response("root", "x")], question="q", ontology=DEMO_ONTOLOGY
    )
    cassette = Cassette.load(path)
    assert (cassette.question, cassette.ontology_sha256) == ("q", sha256(DEMO_ONTOLOGY))


def test_a_header_field_of_the_wrong_type_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    lines = DEMO_CASSETTE.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(['{"cassette": 1, "question": 5}', *lines[1:]]), encoding="utf-8")
    with pytest.raises(CassetteError, match=r"bad.jsonl:1: 'question' must be a string"):
        Cassette.load(path)


@pytest.mark.parametrize(
    "cassette", [DEMO_CASSETTE, PROV_CASSETTE, *sorted(DEMO_CASSETTES.glob("*.jsonl"))]
)
def test_every_bundled_and_test_cassette_says_what_it_answered(cassette: Path) -> None:
    loaded = Cassette.load(cassette)
    assert loaded.question, cassette
    assert loaded.ontology_sha256 is not None, cassette
    assert len(loaded.ontology_sha256) == 64, cassette


def test_an_eval_task_over_another_ontology_is_refused_before_any_run(tmp_path: Path) -> None:
    cassettes = tmp_path / "cassettes"
    cassettes.mkdir()
    (cassettes / "ok.jsonl").write_bytes((DEMO_CASSETTES / "roast-levels.jsonl").read_bytes())
    (tmp_path / "other.ttl").write_bytes(DEMO_ONTOLOGY.read_bytes() + b"\n# another file\n")
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text(
        "tasks:\n- id: ok\n  question: Which roast levels does the coffee ontology define?\n"
        "  ontology: other.ttl\n  answer_contains: [light]\n",
        encoding="utf-8",
    )
    result = rlm(tmp_path, "eval", "run", str(tasks), "--lm", f"scripted:{cassettes}", "--out", "o")
    assert result.returncode == 2, result.stderr
    assert "task 'ok': cassette" in result.stderr
    assert "was recorded over another ontology than" in result.stderr
    assert not (tmp_path / "o").exists()
