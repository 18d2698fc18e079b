"""The package boundaries hold at the source level: rlm_core knows no tracker, and no tracker
imports another; plugins bring their own commands, and lose them when they cannot be imported."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from rlm_core import cli
from tests.helpers.paths import REPO

CORE = REPO / "rlm_core"
PLUGINS = REPO / "rlm_plugins"
TRACKERS = sorted(
    path.stem if path.is_file() else path.name
    for path in PLUGINS.iterdir()
    if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()
)


def core_files() -> list[Path]:
    return [path for path in CORE.rglob("*") if path.is_file() and "__pycache__" not in path.parts]


@pytest.mark.parametrize("name", ["mlflow", "memory_metrics", "memory-metrics", "rlm_plugins"])
def test_nothing_under_rlm_core_names_a_tracker(name: str) -> None:
    pattern = re.compile(re.escape(name), re.IGNORECASE)
    found = [
        f"{path.relative_to(REPO)}:{number}"
        for path in core_files()
        for number, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1
        )
        if pattern.search(line)
    ]
    assert found == []


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_trackers_are_found() -> None:
    assert TRACKERS == ["jsonl", "memory_metrics", "mlflow"]


@pytest.mark.parametrize("tracker", TRACKERS)
def test_no_tracker_imports_another(tracker: str) -> None:
    root = PLUGINS / tracker
    files = sorted(root.rglob("*.py")) if root.is_dir() else [PLUGINS / f"{tracker}.py"]
    others = {f"rlm_plugins.{other}" for other in TRACKERS if other != tracker}
    reaching = {
        f"{path.relative_to(REPO)}: {module}"
        for path in files
        for module in imported_modules(path)
        if module in others or any(module.startswith(f"{other}.") for other in others)
    }
    assert reaching == set()


def test_the_check_catches_an_import_of_another_tracker(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from rlm_plugins.jsonl import JsonlTracker\n", encoding="utf-8")
    assert "rlm_plugins.jsonl" in imported_modules(module)


def test_plugin_commands_are_listed_by_rlm_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    commands = capsys.readouterr().out
    assert re.search(r"^    mlflow ", commands, flags=re.MULTILINE)
    with pytest.raises(SystemExit):
        cli.main(["memory", "--help"])
    assert re.search(r"^    report ", capsys.readouterr().out, flags=re.MULTILINE)


@pytest.fixture
def mlflow_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mlflow package is not importable: its tracker's import raises with its hint."""
    monkeypatch.setitem(sys.modules, "mlflow", None)
    for module in [name for name in sys.modules if name.startswith("rlm_plugins.mlflow")]:
        monkeypatch.delitem(sys.modules, module)


@pytest.mark.usefixtures("mlflow_missing")
def test_without_its_plugin_rlm_mlflow_is_gone_and_says_which_plugin_would_provide_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["mlflow", "experiments"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith("rlm: error: argument COMMAND: invalid choice: 'mlflow'")
    assert "unavailable plugin(s) would provide it: 'mlflow' (import failed" in error
    assert "pip install -e '.[mlflow]'" in error
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert not re.search(r"^    mlflow ", capsys.readouterr().out, flags=re.MULTILINE)
