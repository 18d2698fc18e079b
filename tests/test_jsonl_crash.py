"""A run killed with SIGKILL leaves a log of whole lines that the reader and ``rlm runs`` handle."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rlm_core.events import Iteration, RunInfo
from rlm_core.runlog import read_log
from tests.helpers.jsonl import rlm_main

pytestmark = pytest.mark.slow

LINES_BEFORE_KILL = 200
CHILD = textwrap.dedent(
    """
    import itertools, sys, time
    sys.path.insert(0, {root!r})
    from tests.helpers.factories import iteration, run_info
    from rlm_core.plugins import PluginManager
    from rlm_plugins.jsonl import JsonlTracker

    manager = PluginManager(strict=True)
    manager.register(JsonlTracker(path=sys.argv[1], fsync="never"))
    run = run_info("killed")
    manager.hook.run_start(run=run)
    for index in itertools.count():
        manager.hook.iteration(run=run, step=iteration("killed", index))
        time.sleep(0.0005)
    """
)


@pytest.fixture
def rlm() -> Callable[..., int]:
    return rlm_main


@pytest.fixture(scope="module")
def killed_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("crash") / "runs"
    path = directory / "killed.jsonl"
    code = CHILD.format(root=str(Path(__file__).parents[1]))
    child = subprocess.Popen([sys.executable, "-c", code, str(directory / "{run_id}.jsonl")])
    try:
        deadline = time.monotonic() + 60
        while not path.is_file() or path.read_bytes().count(b"\n") < LINES_BEFORE_KILL:
            assert child.poll() is None, "the child exited on its own"
            assert time.monotonic() < deadline, "the child did not write enough lines"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    return path


def test_every_line_of_a_killed_run_parses(killed_log: Path) -> None:
    log = read_log(killed_log)
    # SIGKILL lands between write calls; only a kill inside write() could cut the last line.
    assert all(problem.message.startswith("truncated last line") for problem in log.problems), (
        log.problems
    )
    assert isinstance(log.records[0].payload, RunInfo)
    steps = [record.payload for record in log.records[1:]]
    assert len(steps) >= LINES_BEFORE_KILL - 2
    assert all(isinstance(step, Iteration) for step in steps)
    assert [step.index for step in steps if isinstance(step, Iteration)] == list(range(len(steps)))


def test_runs_list_shows_the_killed_run_as_incomplete(
    killed_log: Path, rlm: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert rlm("runs", "list", "--dir", str(killed_log.parent)) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split()[:3] == ["RUN", "ID", "STARTED"]
    assert rows[1].startswith("killed ")
    assert "incomplete" in rows[1]


def test_runs_show_prints_the_timeline_of_the_killed_run(
    killed_log: Path, rlm: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert rlm("runs", "show", "killed", "--dir", str(killed_log.parent)) == 0
    out = capsys.readouterr().out
    assert out.startswith("Run killed\n")
    assert "iteration  0 " in out
    assert "(no run_end: the run is incomplete; it crashed or is still running)" in out
