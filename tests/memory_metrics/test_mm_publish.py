"""The ``run_metrics`` hook: derived numbers reach every tracker before that tracker's run_end,
the memory metrics included, whatever the plugins' registration order."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlm_core import hookimpl
from rlm_core.events import RunResult
from rlm_core.testing import RecordingPlugin
from rlm_plugins.memory_metrics import MemoryMetricsTracker
from tests.memory_metrics.helpers import (
    cassette,
    extracted,
    judged,
    memory_settings,
    scripted_run,
    seed,
    step,
)
from tests.memory_metrics.helpers import submit as submit_code


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    seed(tmp_path / "rlm-memory.db")


@pytest.fixture
def model(tmp_path: Path) -> str:
    return cassette(
        tmp_path / "c.jsonl", step("print(1)"), step(submit_code()), judged(True), extracted()
    )


@pytest.mark.parametrize("tracker_first", [True, False], ids=["registered-first", "last"])
def test_run_level_metrics_reach_a_tracker_before_its_run_end(
    tmp_path: Path, model: str, tracker_first: bool
) -> None:
    recorder = RecordingPlugin()
    tracker = MemoryMetricsTracker()
    plugins = (tracker, recorder) if tracker_first else (recorder, tracker)
    scripted_run(model, memory_settings(tmp_path / "rlm-memory.db"), *plugins)
    names = recorder.hook_names()
    assert names[-5:] == ["judgment", "llm_call", "memory_extracted", "metrics", "run_end"]
    (metrics,) = recorder.of("metrics")
    assert metrics.kwargs["run"] == recorder.of("run_start")[0].payload


class IterationCounter:
    """A third-party plugin that derives a number from the run and publishes it by returning it
    from ``run_metrics``; it knows no tracker."""

    name = "iteration_counter"

    @hookimpl
    def run_metrics(self, result: RunResult) -> dict[str, int]:
        return {"iterations_seen": result.iterations}


class Garbage:
    """A plugin whose ``run_metrics`` answer is not a mapping of numbers."""

    name = "garbage"

    @hookimpl
    def run_metrics(self) -> object:
        return ["not", "a", "mapping"]


def test_run_metrics_answers_reach_every_plugin_before_run_end(tmp_path: Path, model: str) -> None:
    recorder = RecordingPlugin()
    settings = memory_settings(tmp_path / "rlm-memory.db")
    scripted_run(model, settings, recorder, IterationCounter(), Garbage())
    published = [(call.kwargs["values"], call.kwargs["step"]) for call in recorder.of("metrics")]
    assert published == [({"iterations_seen": 2.0}, None)]
    assert recorder.hook_names()[-2:] == ["metrics", "run_end"]


def test_a_failing_run_metrics_costs_the_others_nothing(tmp_path: Path, model: str) -> None:
    class Raises:
        name = "raises"

        @hookimpl
        def run_metrics(self) -> None:
            raise RuntimeError("broken")

    recorder = RecordingPlugin()
    settings = memory_settings(tmp_path / "rlm-memory.db")
    result = scripted_run(model, settings, Raises(), IterationCounter(), recorder)
    assert [call.kwargs["values"] for call in recorder.of("metrics")] == [{"iterations_seen": 2.0}]
    assert result.converged
