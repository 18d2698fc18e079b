"""Bad input known before a run starts is a usage error: one line, exit 2, nothing recorded.

Each case goes through the ``rlm`` command with every built-in tracker enabled and memory on;
afterwards the working directory must hold no JSONL log, no MLflow store, no memory database and
no memory-metrics database, because no tracker may see a run that never started.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from rlm_core._demo import DEMO_CASSETTE, DEMO_ONTOLOGY, DEMO_QUESTION
from rlm_core.cli import main


def _missing(directory: Path) -> Path:
    return directory / "nope.ttl"


def _empty(directory: Path) -> Path:
    path = directory / "empty.ttl"
    path.write_text("", encoding="utf-8")
    return path


def _unparsable(directory: Path) -> Path:
    path = directory / "broken.ttl"
    path.write_text("this is not turtle", encoding="utf-8")
    return path


def _fifo(directory: Path) -> Path:
    path = directory / "pipe.ttl"
    os.mkfifo(path)
    return path


def _dev_zero(directory: Path) -> Path:
    path = directory / "zero.ttl"
    path.symlink_to("/dev/zero")
    return path


ONTOLOGIES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing": (_missing, "nope.ttl: no such file"),
    "empty": (_empty, "empty.ttl: file is empty"),
    "unparsable": (_unparsable, "broken.ttl: cannot parse as Turtle"),
    "fifo": (_fifo, "pipe.ttl: is a FIFO (named pipe), not a regular file"),
    "dev-zero": (_dev_zero, "zero.ttl: is a character device, not a regular file"),
}
SCRIPTED = f"scripted:{DEMO_CASSETTE}"
RLM = str(Path(sys.executable).parent / "rlm")
RECORDS = ("runs", "mlflow.db", "rlm-memory.db", "rlm-memory-metrics.db", "mlflow-spool")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for variable in ("RLM_TRACKERS", "RLM_DISABLE", "RLM_CONFIG", "RLM_MODEL"):
        monkeypatch.delenv(variable, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _assert_usage_error(code: int, err: str, out: str, expected: str, workdir: Path) -> None:
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rlm: error: ")
    assert expected in lines[0]
    recorded = [name for name in RECORDS if (workdir / name).exists()]
    assert recorded == [], f"a run that never started left {recorded}"


@pytest.mark.parametrize("case", ONTOLOGIES)
def test_an_unusable_ontology_is_a_usage_error_before_any_tracker_sees_a_run(
    case: str, workdir: Path
) -> None:
    make, expected = ONTOLOGIES[case]
    ontology = make(workdir.parent)
    # A subprocess with a timeout: reading a FIFO or /dev/zero used to hang or run out of memory.
    done = subprocess.run(
        [RLM, "run", "What is brewing?", "--ontology", str(ontology), "--lm", SCRIPTED],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    _assert_usage_error(done.returncode, done.stderr, done.stdout, expected, workdir)


@pytest.mark.parametrize("question", ["", "   \n\t"])
def test_a_blank_question_is_a_usage_error_before_any_tracker_sees_a_run(
    question: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["run", question, "--ontology", str(DEMO_ONTOLOGY), "--lm", f"scripted:{DEMO_CASSETTE}"]
    )
    captured = capsys.readouterr()
    _assert_usage_error(code, captured.err, captured.out, "the question is empty", workdir)


def test_a_turtle_file_cut_mid_statement_is_reported_at_a_line_it_has(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = DEMO_ONTOLOGY.read_text(encoding="utf-8")
    # Cut inside the last statement, after its subject and predicate.
    statement = whole.rstrip().rsplit("\n\n", 1)[-1]
    cut_at = whole.rindex(statement) + len(statement.split()[0]) + 1 + len(statement.split()[1])
    cut = workdir.parent / "cut.ttl"
    cut.write_text(whole[:cut_at] + "\n", encoding="utf-8")
    line_count = len(cut.read_text(encoding="utf-8").splitlines())

    code = main(["run", DEMO_QUESTION, "--ontology", str(cut), "--lm", f"scripted:{DEMO_CASSETTE}"])
    captured = capsys.readouterr()
    _assert_usage_error(
        code, captured.err, captured.out, "cut.ttl: cannot parse as Turtle (line", workdir
    )
    line = int(captured.err.split("(line ", 1)[1].split(")", 1)[0])
    assert 1 <= line <= line_count
