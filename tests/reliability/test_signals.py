"""Signals end runs cleanly, and no process a run started outlives it.

Through the ``rlm`` command, with a scripted model whose code starts ``sleep 120`` and then spins
(``while True: pass``) in the REPL, or runs a catastrophic REGEX query:

- SIGTERM (``docker stop``, systemd, CI) ends the run like Ctrl-C: ``run_end`` in the JSONL log
  with an error that says the run was terminated, exit 143;
- SIGKILL of ``rlm`` still ends the REPL worker and what it started;
- Ctrl-C works while a query holds the GIL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlm_core._demo import DEMO_ONTOLOGY
from rlm_core.events import RunResult
from rlm_core.runlog import read_log
from rlm_core.testing import scripted_step, write_cassette

pytestmark = pytest.mark.slow

RLM = str(Path(sys.executable).parent / "rlm")
REGEX_QUERY = 'SELECT ?x WHERE { BIND("' + "a" * 40 + '!" AS ?x) FILTER(REGEX(?x, "^(a+)+$")) }'


def _spinning_step(pid_file: Path) -> str:
    return (
        "import os, pathlib, subprocess\n"
        "child = subprocess.Popen(['sleep', '120'])\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(f'{{os.getpid()}} {{child.pid}}')\n"
        "while True:\n"
        "    pass\n"
    )


def _querying_step(marker: Path) -> str:
    return (
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('querying')\n"
        f"print(sparql_select({REGEX_QUERY!r}))\n"
    )


def _options(cassette: Path, trackers: tuple[str, ...] = ("-t", "jsonl")) -> list[str]:
    model = f"scripted:{cassette}"
    return ["--ontology", str(DEMO_ONTOLOGY), "--lm", model, *trackers, "--no-memory"]


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a parent that does not reap it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status


def _wait_for(path: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 90
    while not path.exists() or not path.read_text(encoding="utf-8").strip():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the scripted step never started"
        time.sleep(0.05)


def _wait_until_gone(pids: list[int]) -> list[int]:
    """The pids still alive once they had up to 30 s to end."""
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [pid for pid in pids if _alive(pid)]


@pytest.fixture(params=[("-t", "jsonl")], ids=["jsonl"])
def started(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[subprocess.Popen[str], Path, Path]]:
    """``rlm run`` whose first step starts ``sleep 120`` and spins; the pid file says when.

    ``request.param``: the tracker options (the default: every available built-in tracker).
    """
    pid_file = tmp_path / "pids"
    cassette = write_cassette(
        tmp_path / "spin.jsonl", [scripted_step("Spin.", _spinning_step(pid_file))]
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLM_")}
    env["RLM_STEP_TIMEOUT"] = "600"
    process = subprocess.Popen(
        [RLM, "run", "Spin?", *_options(cassette, request.param)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(pid_file, process)
        yield process, pid_file, tmp_path
    finally:
        process.kill()
        process.communicate(timeout=60)
        if pid_file.exists():
            for pid in pid_file.read_text(encoding="utf-8").split():
                if _alive(int(pid)):
                    os.kill(int(pid), signal.SIGKILL)


def _run_end(workdir: Path) -> RunResult:
    (log_path,) = (workdir / "runs").glob("*.jsonl")
    log = read_log(log_path)
    last = log.records[-1].payload
    assert isinstance(last, RunResult), [record.hook for record in log.records]
    return last


@pytest.mark.parametrize("started", [("-t", "jsonl"), ()], ids=["jsonl", "builtins"], indirect=True)
def test_sigterm_ends_the_run_like_ctrl_c_and_ends_what_the_repl_started(
    started: tuple[subprocess.Popen[str], Path, Path],
) -> None:
    process, pid_file, workdir = started
    pids = [int(pid) for pid in pid_file.read_text(encoding="utf-8").split()]
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert "rlm: terminated (SIGTERM)" in err
    result = _run_end(workdir)
    assert result.error is not None
    assert "terminated by SIGTERM" in result.error
    assert not result.converged
    assert _wait_until_gone(pids) == [], "the REPL worker or its sleep outlived the run"


def test_a_sigkilled_rlm_leaves_no_repl_worker_or_what_it_started(
    started: tuple[subprocess.Popen[str], Path, Path],
) -> None:
    process, pid_file, _ = started
    pids = [int(pid) for pid in pid_file.read_text(encoding="utf-8").split()]
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert _wait_until_gone(pids) == [], "the REPL worker or its sleep outlived rlm"


def test_ctrl_c_works_while_a_catastrophic_regex_runs(tmp_path: Path) -> None:
    marker = tmp_path / "querying"
    cassette = write_cassette(
        tmp_path / "regex.jsonl", [scripted_step("Match.", _querying_step(marker))]
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLM_")}
    process = subprocess.Popen(
        [RLM, "run", "Match?", *_options(cassette)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(marker, process)
        time.sleep(1)  # let the tool call reach the query
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == 130, err
    result = _run_end(tmp_path)
    assert result.error is not None
    assert result.error.startswith("KeyboardInterrupt")
