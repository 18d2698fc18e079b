"""rlm_core._publish: plugins publish metrics into the run in progress, from inside their hooks, and
the memory metrics reach every tracker before that tracker's run_end."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rlm_core import hookimpl
from rlm_core._publish import publish_metrics, register_run, unregister_run
from rlm_core.events import Iteration, RunInfo, RunResult
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


class StepCounter:
    """A third-party plugin that publishes from run_start, iteration and run_end."""

    name = "step_counter"

    def __init__(self) -> None:
        self.after_end: bool | None = None
        self.run: RunInfo | None = None

    @hookimpl
    def run_start(self, run: RunInfo) -> None:
        self.run = run
        assert publish_metrics(run, {"started": 1})

    @hookimpl
    def iteration(self, run: RunInfo, step: Iteration) -> None:
        assert publish_metrics(run, {"code_chars": len(step.code)}, step=step.index)

    @hookimpl(tryfirst=True)
    def run_end(self, run: RunInfo, result: RunResult) -> None:
        assert publish_metrics(run, {"iterations": result.iterations})


def test_a_plugin_publishes_from_inside_any_hook_and_not_after_the_run(
    tmp_path: Path, model: str
) -> None:
    recorder = RecordingPlugin()
    counter = StepCounter()
    strict = dataclasses.replace(memory_settings(tmp_path / "rlm-memory.db"), strict=True)
    scripted_run(model, strict, counter, recorder)  # strict: a failed assert in a hook raises
    published = [(call.kwargs["values"], call.kwargs["step"]) for call in recorder.of("metrics")]
    steps = [call.payload for call in recorder.of("iteration")]
    assert published == [
        ({"started": 1.0}, None),
        *(({"code_chars": float(len(s.code))}, s.index) for s in steps),
        ({"iterations": 2.0}, None),
    ]
    names = recorder.hook_names()
    assert names[:2] == ["run_start", "metrics"]  # right after the hook that published
    assert names[-2:] == ["metrics", "run_end"]
    assert counter.run is not None
    assert publish_metrics(counter.run, {"late": 1}) is False


def test_a_run_id_is_registered_once() -> None:
    class Sink:
        def metrics(self, values: object, step: int | None = None) -> None:
            raise AssertionError("not called")

    register_run("run-x", Sink())
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_run("run-x", Sink())
    finally:
        unregister_run("run-x")
    unregister_run("run-x")  # forgetting twice is harmless
