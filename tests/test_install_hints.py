"""Every install hint rlm-core prints installs from a path; none lets pip fetch ``rlm-core`` (an
unrelated project on the public index) or a scaffolded plugin's name from the index.

Each hint is produced the way a user meets it (a missing extra, ``rlm plugins new``, the
scaffold's README) and then given to pip itself with ``--no-index --dry-run``: pip resolves a
path without an index and fails on a name, so the check is pip's, not a pattern of ours. A scan
of the sources keeps the list of places that print hints complete.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from rlm_core.install_hints import extra_providing, install_hint, installed_from
from tests.helpers.paths import REPO

RLM = Path(sys.executable).parent / "rlm"
PIP_COMMAND = re.compile(r"pip install\s+[^`\n]+")
# Names pip may fetch from an index: third-party tools, never anything named rlm-*.
THIRD_PARTY = {"pytest", "'tox>=4.22'", "tox>=4.22", "'pip>=25.1'", "pip>=25.1"}
# Every file that prints (or ships) a pip command, and the test below that checks it.
PRODUCERS = {
    "rlm_core/install_hints.py": "test_each_extra_hint_installs_from_the_checkout",
    "rlm_core/commands/plugins.py": "test_the_scaffold_next_steps_install_from_a_path",
    "rlm_core/data/scaffold/README.md.tmpl": "test_the_scaffold_readme_installs_from_paths",
}


def pip_commands(text: str) -> list[str]:
    """The ``pip install ...`` commands in ``text``, up to the end of the line or code span,
    without a trailing shell comment."""
    return [match.group(0).split("  #")[0].strip() for match in PIP_COMMAND.finditer(text)]


def assert_installs_from_a_path(command: str, cwd: Path) -> None:
    """``command`` names only paths (or third-party tools), and pip resolves it offline."""
    arguments = shlex.split(command.split("pip install", 1)[1])
    targets = [argument for argument in arguments if not argument.startswith("-")]
    assert targets, command
    for target in targets:
        if target in {name.strip("'") for name in THIRD_PARTY}:
            continue
        assert target.startswith((".", "/", "~")) or "/" in target, (
            f"{command!r}: {target!r} is a name pip would look up on the public index"
        )
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--no-deps"),
            *("--no-build-isolation", "--quiet", *arguments),
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert result.returncode == 0, f"{command!r} in {cwd}: {result.stderr}"


def python_without(module: str, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a Python where ``module`` cannot be imported, as if not installed."""
    prelude = f"import sys; sys.modules[{module!r}] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_place_that_prints_a_pip_command_is_checked_here() -> None:
    found = set()
    for root in ("rlm_core", "rlm_plugins"):
        for path in (REPO / root).rglob("*"):
            readable = path.is_file() and path.suffix in {".py", ".tmpl", ".md", ".toml"}
            if readable and pip_commands(path.read_text(encoding="utf-8")):
                found.add(path.relative_to(REPO).as_posix())
    assert found == set(PRODUCERS)


def test_the_docs_never_install_rlm_core_or_a_plugin_by_name() -> None:
    pages = [REPO / "README.md", *(REPO / "docs").rglob("*.md")]
    for page in pages:
        for command in pip_commands(page.read_text(encoding="utf-8")):
            for argument in shlex.split(command.split("pip install", 1)[1], comments=True):
                name = argument.split("[")[0]
                assert not re.match(r"rlm[-_]", name), f"{page}: {command!r}"


def test_rlm_core_is_installed_from_this_checkout() -> None:
    """What the hints below rely on: pip recorded the directory rlm-core came from."""
    found = installed_from("rlm-core")
    assert found is not None
    assert found[0] == REPO


@pytest.mark.parametrize(
    "extra", [None, *(importlib.metadata.metadata("rlm-core").get_all("Provides-Extra") or [])]
)
def test_each_extra_hint_installs_from_the_checkout(extra: str | None, tmp_path: Path) -> None:
    hint = install_hint(extra=extra)
    assert str(REPO) in hint
    assert_installs_from_a_path(hint, tmp_path)


def test_the_extra_of_a_missing_module_is_the_smallest_that_provides_it() -> None:
    assert extra_providing("rlm-core", "mlflow") == "mlflow"
    assert extra_providing("rlm-core", "matplotlib") == "plot"
    assert extra_providing("rlm-core", "ray") == "ray"
    assert extra_providing("rlm-core", "nothing_like_it") is None


def test_an_unavailable_tracker_hints_at_its_extra_from_a_path(tmp_path: Path) -> None:
    result = python_without(
        "mlflow",
        "from rlm_core.config import load_settings\n"
        "from rlm_core.plugins import get_plugin_manager\n"
        "for s in get_plugin_manager(load_settings()).statuses():\n"
        "    print(s.name, s.state, s.reason)\n",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("mlflow "))
    assert "mlflow unavailable import failed: ImportError: the mlflow tracker needs" in line
    assert line.endswith(f"install it with: pip install -e '{REPO}[mlflow]'")
    assert_installs_from_a_path(line.rsplit("install it with: ", 1)[1], tmp_path)


def test_memory_report_plot_without_matplotlib_hints_from_a_path(tmp_path: Path) -> None:
    result = python_without(
        "matplotlib",
        "import sys\nfrom rlm_core.cli import main\n"
        "sys.exit(main(['memory', 'report', '--plot', 'x.png', '--state', 'none.db']))\n",
        tmp_path,
    )
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert line.startswith("rlm: error: --plot needs matplotlib"), line
    assert_installs_from_a_path(line.split(": ", 3)[-1], tmp_path)


def test_eval_plot_without_matplotlib_hints_from_a_path(tmp_path: Path) -> None:
    result = python_without(
        "matplotlib",
        "from rlm_core.eval.plot import plot_png\nplot_png(None)\n",
        tmp_path,
    )
    assert "RLMError: --plot and the HTML report's figure need matplotlib: " in result.stderr
    hint = result.stderr.strip().splitlines()[-1].split("need matplotlib: ", 1)[1]
    assert_installs_from_a_path(hint, tmp_path)


def test_the_ray_executor_without_ray_hints_from_a_path(tmp_path: Path) -> None:
    from rlm_core.eval.demo import DEMO_CASSETTES, DEMO_TASKS

    result = python_without(
        "ray",
        "import sys\nfrom rlm_core.cli import main\n"
        f"sys.exit(main(['eval', 'run', {str(DEMO_TASKS)!r}, '--lm', "
        f"'scripted:{DEMO_CASSETTES}', '--executor', 'ray', '--no-trackers']))\n",
        tmp_path,
    )
    assert "rlm: error: --executor ray needs ray: " in result.stderr, result.stderr
    hint = result.stderr.split("needs ray: ", 1)[1].strip().splitlines()[0]
    assert_installs_from_a_path(hint, tmp_path)


def test_the_scaffold_next_steps_install_from_a_path(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(RLM), "plugins", "new", "my_tracker"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    commands = pip_commands(result.stdout)
    assert commands == [
        "pip install -e ./rlm-my-tracker",
        "pip install pytest",
    ]
    for command in commands:
        assert_installs_from_a_path(command, tmp_path)


def test_the_scaffold_readme_installs_from_paths(tmp_path: Path) -> None:
    from rlm_core._scaffold import scaffold_plugin

    root = scaffold_plugin("my_tracker", tmp_path)
    commands = pip_commands((root / "README.md").read_text(encoding="utf-8"))
    assert len(commands) == 3, commands
    for command in commands:
        assert_installs_from_a_path(command.replace("path/to/rlm-core", str(REPO)), root)
