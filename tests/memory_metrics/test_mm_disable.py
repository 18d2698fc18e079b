"""The plugin comes through the ``rlm`` entry point like any tracker, and disabling it
(``--no-tracker memory_metrics``) removes its metrics and nothing else."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest

from rlm_core import run
from rlm_core._demo import DEMO_ONTOLOGY
from rlm_core.config import CliOptions, load_settings
from rlm_core.plugins import get_plugin_manager
from rlm_core.testing import RecordingPlugin
from rlm_plugins.memory_metrics import MemoryMetricsTracker
from tests.memory_metrics.helpers import (
    cassette,
    extracted,
    judged,
    seed,
    step,
    stored_rows,
    submit,
)

ENTRY_POINT = importlib.metadata.EntryPoint(
    name="memory_metrics", value="rlm_plugins.memory_metrics:MemoryMetricsTracker", group="rlm"
)
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


@pytest.fixture(autouse=True)
def _seeded(in_tmp: Path) -> None:
    seed(in_tmp / "rlm-memory.db")


def hook_names(model: str, options: CliOptions) -> list[str]:
    """The hooks a recorder sees in a run whose trackers are chosen as the CLI chooses them."""
    settings = load_settings(options)
    recorder = RecordingPlugin()
    manager = get_plugin_manager(settings, plugins=[recorder], entry_points=[ENTRY_POINT])
    result = run(
        "Which equipment does a brewing session use?",
        DEMO_ONTOLOGY,
        model=model,
        manager=manager,
        config=settings,
    )
    assert result.converged
    return recorder.hook_names()


def test_disabling_the_plugin_removes_its_metrics_and_nothing_else(tmp_path: Path) -> None:
    model = cassette(
        tmp_path / "c.jsonl", step("print(1)"), step(submit()), judged(True), extracted()
    )
    enabled = hook_names(model, CliOptions())
    disabled = hook_names(model, CliOptions(no_tracker=["memory_metrics"]))
    assert enabled.count("metrics") == 1
    assert [name for name in enabled if name != "metrics"] == disabled
    state = tmp_path / "rlm-memory-metrics.db"
    assert stored_rows(state, "SELECT COUNT(*) FROM runs") == [(1,)]  # the enabled run only


def test_the_plugin_is_on_by_default_and_takes_its_config_section(tmp_path: Path) -> None:
    (tmp_path / "rlm.toml").write_text('[plugins.memory_metrics]\nstate = "elsewhere.db"\n')
    settings = load_settings(CliOptions())
    manager = get_plugin_manager(settings, entry_points=[ENTRY_POINT])
    (status,) = manager.statuses()
    assert (status.name, status.state) == ("memory_metrics", "enabled")
    assert set(status.hooks) == {
        "memory_retrieved",
        "iteration",
        "llm_call",
        "judgment",
        "memory_extracted",
        "run_metrics",
        "run_end",
        "run_location",
        "register_commands",
    }
    plugin = manager.get_plugin("memory_metrics")
    assert isinstance(plugin, MemoryMetricsTracker)
    assert plugin.state == tmp_path / "elsewhere.db"


def test_the_entry_point_and_the_plot_extra_are_declared() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert project["entry-points"]["rlm"]["memory_metrics"] == ENTRY_POINT.value
    extras = project["optional-dependencies"]
    assert any(requirement.startswith("matplotlib") for requirement in extras["plot"])
    assert any(requirement.startswith("matplotlib") for requirement in extras["all"])
