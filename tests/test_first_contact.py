"""A newcomer's first minutes, as ``.ci/run`` and README have them: a fresh virtual environment,
``pip install -e '.[all]'`` from a copy of the checkout, the first ``rlm demo`` in an empty
directory; then the install hints rlm-core prints there, pasted as they are.

Slow (a venv, an editable install, real runs with every tracker): marked ``slow``. pip never
reaches an index: the venv sees this environment's packages (see ``FreshVenv``) and
``PIP_NO_INDEX`` is set, so a hint that named ``rlm-core`` or a scaffolded plugin instead of a
path would fail here.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.authoring.helpers import REPO, FreshVenv

pytestmark = pytest.mark.slow

_NOT_THE_CHECKOUT = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".tox",
    "__pycache__",
    "*.egg-info",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "site",
    "runs",
    "mlflow.db",
    "mlartifacts",
    "mlflow-spool",
    "rlm-memory*.db",
    "rlm-plugin-health.json",
)


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory: pytest.TempPathFactory) -> tuple[FreshVenv, Path]:
    """A fresh venv with ``pip install -e '.[all]'`` run in a copy of the checkout."""
    root = tmp_path_factory.mktemp("first-contact")
    venv = FreshVenv(root / "venv")
    checkout = root / "checkout"
    shutil.copytree(REPO, checkout, ignore=_NOT_THE_CHECKOUT)
    installed = venv.run([venv.python, "-m", "pip", "install", "--quiet", "-e", ".[all]"], checkout)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return venv, checkout


def test_the_first_demo_prints_no_warning_and_no_mlflow_info_line(
    newcomer: tuple[FreshVenv, Path], tmp_path: Path
) -> None:
    venv, _ = newcomer
    result = venv.run(["rlm", "demo"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("rlm demo replays a recorded run: offline, no API key.")
    assert ": converged · " in result.stdout
    assert "  memory: " in result.stdout
    noisy = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if re.search(r"\b(warning|WARNING|INFO)\b", line) or "unreachable" in line
    ]
    assert noisy == [], "the first screen of a newcomer"
    assert not (tmp_path / "mlflow-spool").exists(), "nothing left undelivered"


def test_every_install_hint_printed_there_installs_from_the_checkout(
    newcomer: tuple[FreshVenv, Path], tmp_path: Path
) -> None:
    """The hints for each extra, as a user without it would see them, work offline in the venv:
    they name the checkout's path, never the name on the public index."""
    venv, checkout = newcomer
    snippet = (
        "from rlm_core.install_hints import install_hint\n"
        "import importlib.metadata as m\n"
        "for extra in m.metadata('rlm-core').get_all('Provides-Extra'):\n"
        "    print(install_hint(extra=extra))\n"
    )
    result = venv.run([venv.python, "-c", snippet], tmp_path)
    assert result.returncode == 0, result.stderr
    hints = result.stdout.splitlines()
    assert sorted(hints) == [
        f"pip install -e '{checkout}[{extra}]'"
        for extra in ("all", "mlflow", "otel", "plot", "ray")
    ]
    for hint in hints:
        pasted = "python -m " + hint.replace("pip install", "pip install --dry-run --no-deps", 1)
        ran = venv.run(["bash", "-c", pasted], tmp_path)
        assert ran.returncode == 0, f"{hint}: {ran.stderr}"


def test_the_scaffold_next_steps_work_when_pasted(
    newcomer: tuple[FreshVenv, Path], tmp_path: Path
) -> None:
    venv, _ = newcomer
    created = venv.run(["rlm", "plugins", "new", "my_tracker"], tmp_path)
    assert created.returncode == 0, created.stderr
    lines = created.stdout.splitlines()
    first = next(number for number, line in enumerate(lines) if line.startswith("Next steps"))
    steps = [line.split("  #")[0].strip() for line in lines[first + 1 :]]
    assert steps[0] == "python -m pip install -e ./rlm-my-tracker"
    assert any("pytest" in step for step in steps)
    for step in steps:
        ran = venv.run(["bash", "-c", step], tmp_path)
        assert ran.returncode == 0, f"{step}:\n{ran.stdout}\n{ran.stderr}"
        if step.startswith("rlm demo"):
            assert "my_tracker: " in ran.stdout, "the new tracker says where it wrote the run"
        if "pytest" in step and "install" not in step:
            assert re.search(r"\d+ passed", ran.stdout), ran.stdout
