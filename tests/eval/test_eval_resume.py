"""Resume: an eval killed with SIGKILL mid-way loses no finished run, and running it again with
the same --out runs exactly the missing ones."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlm_core.eval.demo import copy_demo

pytestmark = pytest.mark.slow

RLM = Path(sys.executable).parent / "rlm"


def keys(out: Path) -> list[str]:
    lines = (out / "results.jsonl").read_bytes().splitlines()
    return [json.loads(line)["key"] for line in lines if line.strip()]


def test_sigkill_mid_eval_then_resume_runs_each_run_exactly_once(tmp_path: Path) -> None:
    tasks, cassettes = copy_demo(tmp_path, 60)
    out = tmp_path / "out"
    command = [
        str(RLM), "eval", "run", str(tasks), "--lm", f"scripted:{cassettes}",
        "--vary", "memory=on,off", "--trials", "3", "--workers", "2", "--out", str(out),
        "--no-trackers", "--no-report",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLM_")}
    child = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (out / "results.jsonl").is_file() or len(keys(out)) < 5:
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline, "the eval did not get going"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
        if child.stderr:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    before = keys(out)
    assert 5 <= len(before) < 18, "killed mid-way"
    assert len(set(before)) == len(before)
    lines_before = (out / "results.jsonl").read_bytes()

    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert f"{18 - len(before)} runs ran, {len(before)} already done" in again.stderr
    after = keys(out)
    assert (out / "results.jsonl").read_bytes().startswith(lines_before), "nothing rewritten"
    assert len(after) == len(set(after)) == 18, "no run twice, none missing"
    expected = {
        f"{condition}|{task}|{trial}"
        for condition in ("memory=on", "memory=off")
        for task in ("brew-links", "roast-levels", "farm-altitude")
        for trial in (1, 2, 3)
    }
    assert set(after) == expected

    third = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert third.returncode == 0
    assert "0 runs ran, 18 already done" in third.stderr
    assert keys(out) == after


def test_resuming_into_another_evals_directory_is_refused(tmp_path: Path) -> None:
    tasks, cassettes = copy_demo(tmp_path, 0)
    base = [str(RLM), "eval", "run", str(tasks), "--lm", f"scripted:{cassettes}", "--out", "o"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLM_")}
    first = subprocess.run([*base, "--no-trackers", "--no-report"], cwd=tmp_path, env=env,
                           capture_output=True, text=True)  # fmt: skip
    assert first.returncode == 0, first.stderr
    other = subprocess.run([*base, "--trials", "2", "--no-trackers"], cwd=tmp_path, env=env,
                           capture_output=True, text=True)  # fmt: skip
    assert other.returncode == 2
    assert other.stderr.startswith(
        "rlm: error: o/eval.json: trials differs from this eval's (1 there"
    )
    assert len(keys(tmp_path / "o")) == 3
