"""``scaffold_plugin`` makes a package that installs, is found by rlm and passes its own tests."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from rlm_core._scaffold import PluginNames, ScaffoldError, plugin_names, scaffold_plugin
from rlm_core.errors import RLMError
from tests.authoring.helpers import FreshVenv


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("my_tracker", PluginNames("my_tracker", "rlm-my-tracker", "rlm_my_tracker", "MyTracker")),
        ("my-tracker", PluginNames("my_tracker", "rlm-my-tracker", "rlm_my_tracker", "MyTracker")),
        ("rlm-slack", PluginNames("slack", "rlm-slack", "rlm_slack", "SlackTracker")),
        ("rlm_s3", PluginNames("s3", "rlm-s3", "rlm_s3", "S3Tracker")),
        ("otel2", PluginNames("otel2", "rlm-otel2", "rlm_otel2", "Otel2Tracker")),
    ],
)
def test_names_are_derived_from_the_chosen_name(name: str, expected: PluginNames) -> None:
    assert plugin_names(name) == expected


@pytest.mark.parametrize(
    "name", ["", "My_Tracker", "2fast", "my tracker", "my--tracker", "my_", "-x", "my.tracker"]
)
def test_a_bad_name_is_a_clear_value_error(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"not valid: use lowercase letters") as caught:
        scaffold_plugin(name, tmp_path)
    assert isinstance(caught.value, RLMError), "the CLI reports it as a usage error"
    assert list(tmp_path.iterdir()) == []


def test_the_name_of_an_installed_plugin_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match=r"'jsonl' is already used by an installed plugin"):
        scaffold_plugin("jsonl", tmp_path)


def test_an_existing_non_empty_directory_is_never_overwritten(tmp_path: Path) -> None:
    taken = tmp_path / "rlm-my-tracker"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ScaffoldError, match="already exists and is not empty"):
        scaffold_plugin("my_tracker", tmp_path)
    assert [path.name for path in taken.iterdir()] == ["notes.txt"]


def test_an_existing_empty_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "rlm-my-tracker").mkdir()
    assert scaffold_plugin("my_tracker", tmp_path) == tmp_path / "rlm-my-tracker"


def test_the_package_declares_its_entry_point_and_no_dependency(tmp_path: Path) -> None:
    root = scaffold_plugin("my-tracker", tmp_path)
    files = sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())
    assert files == [
        "README.md",
        "pyproject.toml",
        "src/rlm_my_tracker/__init__.py",
        "tests/test_my_tracker.py",
    ]
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == "rlm-my-tracker"
    assert project["entry-points"]["rlm"] == {"my_tracker": "rlm_my_tracker:MyTracker"}
    assert project["dependencies"] == []
    for path in root.rglob("*"):
        if path.is_file():
            assert "$" not in path.read_text(encoding="utf-8").replace("$env:", ""), path
            compile_if_python(path)


def compile_if_python(path: Path) -> None:
    if path.suffix == ".py":
        compile(path.read_text(encoding="utf-8"), str(path), "exec")


@pytest.mark.slow
def test_the_generated_package_passes_its_own_tests_in_a_fresh_venv(tmp_path: Path) -> None:
    venv = FreshVenv(tmp_path / "venv")
    root = scaffold_plugin("my_tracker", tmp_path)
    venv.pip_install(root)

    tests = venv.run([venv.python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], root)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout

    work = tmp_path / "work"
    work.mkdir()
    listing = venv.run([venv.bin / "rlm", "plugins", "--json"], work)
    assert listing.returncode == 0, listing.stderr
    [entry] = [entry for entry in json.loads(listing.stdout) if entry["name"] == "my_tracker"]
    assert entry["state"] == "enabled"
    assert entry["distribution"] == "rlm-my-tracker"

    demo = venv.run([venv.bin / "rlm", "demo", "-t", "my_tracker"], work)
    assert demo.returncode == 0, demo.stderr
    assert f"my_tracker: {work / 'my_tracker.jsonl'}" in demo.stdout
    [summary] = (work / "my_tracker.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(summary)["converged"] is True

    shown = venv.run([venv.bin / "rlm", "my_tracker"], work)  # the command the plugin adds
    assert shown.returncode == 0, shown.stderr
    run_id = json.loads(summary)["run_id"]
    assert shown.stdout.splitlines() == [
        f"{run_id}  converged=True  iterations={json.loads(summary)['iterations']}  "
        f"tokens={json.loads(summary)['tokens']}",
        "1 run(s) in my_tracker.jsonl",
    ]
