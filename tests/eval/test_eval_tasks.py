"""Task files: both formats load; each mistake is one line naming file, line or task, field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rlm_core.eval.demo import DEMO_CASSETTES, DEMO_TASKS
from rlm_core.eval.tasks import TaskFileError, load_tasks
from rlm_core.testing import DEMO_ONTOLOGY

RLM = Path(sys.executable).parent / "rlm"


def write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / "coffee.ttl").write_bytes(DEMO_ONTOLOGY.read_bytes())
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_demo_task_file_loads_in_file_order() -> None:
    tasks = load_tasks(DEMO_TASKS)
    assert [task.id for task in tasks.tasks] == ["brew-links", "roast-levels", "farm-altitude"]
    assert tasks.tasks[0].ontology == DEMO_ONTOLOGY
    assert [p.regex for p in tasks.task("roast-levels").answer_contains] == [False, True, False]
    assert tasks.task("roast-levels").rubric is not None
    assert len(tasks.sha256) == 64


def test_jsonl_task_files_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "tasks.jsonl",
        '{"id": "a", "question": "q?", "ontology": "coffee.ttl", "answer_contains": ["x"]}\n'
        "\n"
        '{"id": "b", "question": "r?", "ontology": "coffee.ttl", "rubric": "be right"}\n',
    )
    tasks = load_tasks(path)
    assert [(task.id, task.line) for task in tasks.tasks] == [("a", 1), ("b", 3)]


YAML_HEAD = "- id: ok\n  question: q?\n  ontology: coffee.ttl\n  answer_contains: [x]\n"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("t.yaml", "- id: a\n  question: [unclosed\n", ":3: not valid YAML"),
        ("t.yaml", "id: a\n", ":1: expected a list of tasks, or one key 'tasks'"),
        ("t.yaml", YAML_HEAD + "- id: b\n  ontology: coffee.ttl\n", ":5: task 'b': question:"),
        (
            "t.yaml",
            YAML_HEAD + "- id: b\n  question: q\n  ontology: coffee.ttl\n  grader: x\n",
            ":5: task 'b': grader: unknown field",
        ),
        (
            "t.yaml",
            YAML_HEAD + "- id: b\n  question: q\n  ontology: nope.ttl\n  rubric: r\n",
            ":5: task 'b': ontology:",
        ),
        (
            "t.yaml",
            YAML_HEAD + "- id: b\n  question: q\n  ontology: coffee.ttl\n",
            ":5: task 'b': graders: give at least one of",
        ),
        (
            "t.yaml",
            YAML_HEAD + "- id: b\n  question: q\n  ontology: coffee.ttl\n"
            "  answer_contains: [{regex: '(unclosed'}]\n",
            ":5: task 'b': answer_contains: bad regex",
        ),
        ("t.yaml", YAML_HEAD + YAML_HEAD, ":5: task 'ok': id: already used by the task on line 1"),
        ("t.yaml", "- id: 'has space'\n", ":1: id: expected a name"),
        ("t.jsonl", '{"id": "a"}\n{not json\n', ":2: not JSON"),
        ("t.jsonl", '{"id": "a"}\n', ":1: task 'a': question:"),
        ("t.jsonl", "{not json\n", ":1: not JSON"),
        ("t.txt", "", "must end in .yaml, .yml or .jsonl"),
        ("t.yaml", "[]\n", "holds no tasks"),
    ],
)
def test_bad_task_files_are_named_precisely(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(TaskFileError) as raised:
        load_tasks(path)
    assert str(raised.value).startswith(str(path))
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_rlm_eval_run_on_a_bad_file_exits_2_with_one_line_and_records_nothing(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "tasks.yaml",
        YAML_HEAD + "- id: b\n  question: q\n  ontology: coffee.ttl\n"
        "  expected_sparql: 'DELETE WHERE { ?s ?p ?o }'\n",
    )
    result = subprocess.run(
        [str(RLM), "eval", "run", str(path), "--lm", f"scripted:{DEMO_CASSETTES}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"rlm: error: {path}:5: task 'b': expected_sparql: SPARQL Update")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coffee.ttl", "tasks.yaml"]


def test_a_cassette_recorded_for_another_question_is_refused(tmp_path: Path) -> None:
    cassettes = tmp_path / "cassettes"
    cassettes.mkdir()
    (cassettes / "ok.jsonl").write_bytes((DEMO_CASSETTES / "roast-levels.jsonl").read_bytes())
    path = write(tmp_path, "tasks.yaml", YAML_HEAD)
    result = subprocess.run(
        [str(RLM), "eval", "run", str(path), "--lm", f"scripted:{cassettes}", "--out", "o"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "recorded for the question 'Which roast levels" in result.stderr
    assert "task 'ok'" in result.stderr
    assert not (tmp_path / "o").exists()
