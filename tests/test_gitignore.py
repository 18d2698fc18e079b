"""The project's ``.gitignore`` covers every file a run writes by default, and README says how to
install and serve the docs."""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from rlm_core._health_file import HEALTH_FILE
from rlm_core.cli import build_parser
from rlm_core.config import Settings
from rlm_plugins.memory_metrics.tracker import DEFAULT_STATE
from rlm_plugins.mlflow import MlflowTracker
from tests.helpers.paths import REPO

RLM = Path(sys.executable).parent / "rlm"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def repository(in_tmp: Path) -> Path:
    """An empty git repository with the project's .gitignore."""
    assert git(in_tmp, "init", "-q").returncode == 0
    shutil.copy(REPO / ".gitignore", in_tmp / ".gitignore")
    return in_tmp


def test_what_the_demo_writes_is_ignored(repository: Path) -> None:
    result = subprocess.run(
        [str(RLM), "demo"], cwd=repository, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    written = {path.name for path in repository.iterdir()} - {".git", ".gitignore"}
    assert {"runs", "mlflow.db", "rlm-memory.db", DEFAULT_STATE} <= written
    status = git(repository, "status", "--porcelain", "--untracked-files=all")
    assert status.stdout.splitlines() == ["?? .gitignore"]


def test_every_default_output_path_is_ignored(repository: Path) -> None:
    """Defaults the demo does not always write: the spool of undelivered MLflow runs, the plugin
    health file, the results of ``rlm eval run`` and ``rlm eval demo``."""
    spool = inspect.signature(MlflowTracker).parameters["spool_dir"].default
    demo = build_parser().parse_args(["eval", "demo"])
    defaults = [
        f"{Settings().memory.path}",
        DEFAULT_STATE,
        HEALTH_FILE,
        f"{spool}/run.jsonl",
        f"{Settings().eval.out}/results.jsonl",
        f"{demo.out}/results.jsonl",
        "runs/20261203-000000-00000000.jsonl",
        "mlflow.db",
        "mlartifacts/1/a/artifacts/answer.txt",
    ]
    for path in defaults:
        assert git(repository, "check-ignore", "-q", path).returncode == 0, path


def test_readme_says_how_to_install_and_serve_the_docs() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    groups = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))[
        "dependency-groups"
    ]
    command = next(line for line in readme.splitlines() if "mkdocs serve" in line)
    assert "'pip>=25.1'" in command, "pip installs dependency groups from 25.1 on"
    (group,) = re.findall(r"--group (\S+)", command)
    assert any(str(item).startswith("mkdocs") for item in groups[group])
