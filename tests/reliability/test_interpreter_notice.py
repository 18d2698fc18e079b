"""The local interpreter is not a sandbox, and live runs say so; Deno is one flag away.

A live model's code runs with the user's files, environment and network, so every live run with
``interpreter = "local"`` prints a one-line notice; replays (``scripted:`` cassettes) do not.
``--interpreter deno`` picks Deno's sandbox and is checked before anything is recorded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rlm_core._demo import DEMO_CASSETTE, DEMO_ONTOLOGY, DEMO_QUESTION

BIN = Path(sys.executable).parent
NOTICE = "note: LM-written code runs in a local subprocess"


def rlm(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RLM_", "OPENAI_"))}
    return subprocess.run(
        [str(BIN / "rlm"), *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_a_live_run_with_the_local_interpreter_says_it_is_not_a_sandbox(tmp_path: Path) -> None:
    # A live OpenAI model pointed at a closed local port: the run starts, its first LM call fails.
    offline = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    done = rlm(
        *("run", DEMO_QUESTION, "--ontology", str(DEMO_ONTOLOGY), "--lm", "openai/gpt-4o-mini"),
        *("--no-trackers", "--no-memory", "--max-iterations", "1", "--max-llm-calls", "1"),
        cwd=tmp_path,
        env=offline,
    )
    notices = [line for line in done.stderr.splitlines() if NOTICE in line]
    assert len(notices) == 1, done.stderr
    assert notices[0].startswith("rlm: ")
    assert "not a sandbox" in notices[0]
    assert "--interpreter deno" in notices[0]


def test_a_replay_prints_no_sandbox_notice(tmp_path: Path) -> None:
    done = rlm(
        *("run", DEMO_QUESTION, "--ontology", str(DEMO_ONTOLOGY)),
        *("--lm", f"scripted:{DEMO_CASSETTE}", "--no-trackers", "--no-memory"),
        cwd=tmp_path,
        env={},
    )
    assert done.returncode == 0, done.stderr
    assert "not a sandbox" not in done.stderr


def test_interpreter_deno_without_deno_is_a_one_line_error_before_the_run(tmp_path: Path) -> None:
    # PATH with this Python's bin directory only, where there is no deno.
    assert not (BIN / "deno").exists()
    done = rlm(
        *("run", DEMO_QUESTION, "--ontology", str(DEMO_ONTOLOGY), "--interpreter", "deno"),
        *("--lm", f"scripted:{DEMO_CASSETTE}"),
        cwd=tmp_path,
        env={"PATH": str(BIN)},
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "interpreter 'deno' needs Deno on PATH" in lines[0]
    assert not (tmp_path / "runs").exists()
