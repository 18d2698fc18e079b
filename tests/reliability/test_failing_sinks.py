"""Sinks that fail: the run completes, the failure is said clearly, nothing is lost silently."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rlm_core import Settings, run
from rlm_core._demo import DEMO_CASSETTE, DEMO_ONTOLOGY, DEMO_QUESTION
from rlm_core.config import MemorySettings, Selection
from rlm_core.runlog import read_log
from rlm_plugins.jsonl import JsonlTracker

pytestmark = pytest.mark.usefixtures("in_tmp")


def test_a_jsonl_directory_that_cannot_be_created_is_reported_and_the_run_completes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "runs").write_text("a file where the log directory should be", encoding="utf-8")
    result = run(
        DEMO_QUESTION,
        DEMO_ONTOLOGY,
        model=f"scripted:{DEMO_CASSETTE}",
        trackers=[],
        plugins=[JsonlTracker()],
        memory=False,
    )
    assert result.converged
    assert result.plugin_errors["jsonl"] >= 5
    assert any(
        p.startswith("plugin jsonl is blocked: 5 consecutive failures") for p in result.problems
    )
    warning = next(r for r in caplog.records if r.name == "rlm.plugins")
    assert "runs" in warning.getMessage()


DISK_FULL = textwrap.dedent(
    """
    import json, resource, signal
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))
    from rlm_core import run
    from rlm_core._demo import DEMO_CASSETTE, DEMO_ONTOLOGY, DEMO_QUESTION
    from rlm_plugins.jsonl import JsonlTracker
    result = run(DEMO_QUESTION, DEMO_ONTOLOGY, model=f"scripted:{DEMO_CASSETTE}",
                 trackers=[], plugins=[JsonlTracker()], memory=False)
    print(json.dumps(result.to_dict()))
    """
)


def test_a_full_disk_is_reported_the_run_completes_and_the_good_lines_stay_readable(
    tmp_path: Path,
) -> None:
    child = subprocess.run(
        [sys.executable, "-c", DISK_FULL],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["converged"] is True
    assert result["plugin_errors"]["jsonl"] >= 1
    assert "disk full or file size limit" in child.stderr
    (log_file,) = (tmp_path / "runs").iterdir()
    assert log_file.stat().st_size <= 3000
    log = read_log(log_file)
    assert log.records, "the lines written before the disk filled up must still be readable"
    assert all(
        problem.line_number == len(log_file.read_bytes().splitlines()) for problem in log.problems
    )


def test_a_memory_database_locked_by_another_process_costs_the_memory_not_the_run(
    tmp_path: Path,
) -> None:
    database = tmp_path / "memory.db"
    run(
        DEMO_QUESTION,
        DEMO_ONTOLOGY,
        model=f"scripted:{DEMO_CASSETTE}",
        trackers=[],
        config=Settings(memory=MemorySettings(path=str(database))),
    )
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"db = sqlite3.connect({str(database)!r}, isolation_level=None)\n"
            "db.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        result = run(
            DEMO_QUESTION,
            DEMO_ONTOLOGY,
            model=f"scripted:{DEMO_CASSETTE}",
            trackers=[],
            config=Settings(
                memory=MemorySettings(path=str(database), timeout=0.5),
                selections=(Selection(source="test", allow=()),),
            ),
        )
    finally:
        holder.communicate("", timeout=30)
    assert result.converged
    assert result.answer is not None
    assert any("memory unavailable" in p and "locked" in p for p in result.problems)
    with sqlite3.connect(database) as db:
        (runs,) = db.execute("SELECT count(*) FROM runs").fetchone()
    assert runs == 1, "the locked run must not have half-written anything"
