"""The conformance kit passes good plugins and fails bad ones with a message that says why."""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Mapping
from pathlib import Path

import pytest

from rlm_core import hookimpl
from rlm_core._conformance import SPIKE_FACTOR, check_plugin
from rlm_core.delivery import BackgroundDelivery
from rlm_core.events import Judgment, MemoryRetrieval, RunInfo, RunResult
from rlm_core.testing import RecordingPlugin, capture_events
from rlm_plugins.jsonl import JsonlTracker


class OnlyRunEnd:
    name = "only-run-end"

    def __init__(self) -> None:
        self.results: list[RunResult] = []

    @hookimpl
    def run_end(self, result: RunResult) -> None:
        self.results.append(result)


class Clumsy:
    """Raises in one hook and blocks the engine thread in another."""

    name = "clumsy"

    @hookimpl
    def iteration(self, run: RunInfo) -> None:
        raise RuntimeError("boom")

    @hookimpl
    def run_end(self, run: RunInfo, result: RunResult) -> None:
        time.sleep(0.05)


class Buffered:
    """Queues every run_end through BackgroundDelivery and follows the flush convention."""

    name = "buffered"

    def __init__(self, deliver_seconds: float = 0.0) -> None:
        self.delivered: list[str] = []
        self._delay = deliver_seconds
        self._delivery: BackgroundDelivery[str] = BackgroundDelivery(self._deliver)

    @hookimpl
    def run_end(self, run: RunInfo) -> None:
        self._delivery.submit(run.run_id)

    def flush(self, timeout: float) -> bool:
        return self._delivery.flush(timeout)

    def _deliver(self, batch: list[str]) -> None:
        time.sleep(self._delay)
        self.delivered.extend(batch)


def test_the_jsonl_tracker_passes(tmp_path: Path) -> None:
    report = check_plugin(JsonlTracker(path=str(tmp_path / "{run_id}.jsonl")))
    report.raise_for_failures()
    assert report.ok
    assert report.plugin == "jsonl"
    assert {timing.hook for timing in report.timings} == set(report.hooks)
    assert len(list(tmp_path.glob("*.jsonl"))) > 5, "every scenario's runs were logged"


def test_the_memory_metrics_tracker_passes(tmp_path: Path) -> None:
    from rlm_plugins.memory_metrics import MemoryMetricsTracker

    tracker = MemoryMetricsTracker(
        db=str(tmp_path / "memory.db"), state=str(tmp_path / "metrics.db")
    )
    check_plugin(tracker).raise_for_failures()
    assert (tmp_path / "metrics.db").exists(), "it kept its cross-run state"


def test_the_mlflow_tracker_passes(tmp_path: Path) -> None:
    mlflow_plugin = pytest.importorskip("rlm_plugins.mlflow", reason="mlflow is not installed")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = mlflow_plugin.MlflowTracker(
        tracking_uri=uri, artifact_location=str(tmp_path / "artifacts"), spool_dir=str(tmp_path)
    )
    try:
        # run_end waits for MLflow, bounded by the tracker's flush_timeout (10 s by default).
        report = check_plugin(tracker, flush_timeout=30.0, run_end_budget_ms=10_000)
        report.raise_for_failures()
    finally:
        tracker.close(30.0)
    experiment = MlflowClient(tracking_uri=uri).get_experiment_by_name("rlm")
    assert experiment is not None
    assert MlflowClient(tracking_uri=uri).search_runs([experiment.experiment_id])


def test_a_plugin_implementing_one_hook_passes() -> None:
    plugin = OnlyRunEnd()
    report = check_plugin(plugin)
    report.raise_for_failures()
    assert report.hooks == ("run_end",)
    assert [timing.hook for timing in report.timings] == ["run_end"]
    assert any(result.error for result in plugin.results), "it saw a failed run"


def test_a_module_plugin_passes() -> None:
    module = types.ModuleType("module_plugin")
    seen: list[str] = []

    @hookimpl
    def run_start(run: RunInfo) -> None:
        seen.append(run.run_id)

    module.run_start = run_start  # type: ignore[attr-defined]
    check_plugin(module).raise_for_failures()
    assert seen


def test_a_plugin_that_raises_and_blocks_fails_with_a_clear_message() -> None:
    report = check_plugin(Clumsy())
    assert not report.ok
    with pytest.raises(AssertionError) as caught:
        report.raise_for_failures()
    message = str(caught.value)
    assert message.splitlines()[0] == ("rlm plugin conformance of 'clumsy': 5 of 11 checks FAILED")
    assert (
        "FAIL scenario 'scripted demo run' raises nothing: iteration raised RuntimeError: boom"
        in message
    )
    assert "test_auth_conformance.py:" in message, "the line that raised is named"
    assert "FAIL hook calls stay within 5 ms: run_end: median 5" in message
    assert "BackgroundDelivery" in message
    assert report.slowest is not None
    assert report.slowest.hook == "run_end"
    assert report.slowest.median_ms >= 50


def test_a_plugin_asking_for_threaded_dispatch_is_still_checked_inline() -> None:
    class Threaded(Clumsy):
        rlm_dispatch = "thread"

    report = check_plugin(Threaded())
    assert "iteration raised RuntimeError: boom" in report.summary()
    assert "run_end: median 5" in report.summary()


def test_payloads_cover_the_failure_paths() -> None:
    recorder = RecordingPlugin()
    check_plugin(recorder).raise_for_failures()
    results = [call.payload for call in recorder.of("run_end")]
    assert any(r.error is not None and not r.converged for r in results)
    assert any(r.error is None and r.converged for r in results)
    retrievals: list[MemoryRetrieval] = [call.payload for call in recorder.of("memory_retrieved")]
    assert any(not r.items for r in retrievals)
    assert any(r.items for r in retrievals)
    verdicts: list[Judgment] = [call.payload for call in recorder.of("judgment")]
    assert any(v.success is None and v.confidence is None for v in verdicts)
    steps = {call.kwargs["step"] for call in recorder.of("metrics")}
    assert None in steps
    assert steps - {None}
    assert any(call.payload.parent_run_id for call in recorder.of("run_start")), "a nested run"
    for call in recorder.of("iteration"):
        assert call.payload.run_id == call.kwargs["run"].run_id


def test_every_run_ends_and_sequence_numbers_rise_within_a_run() -> None:
    recorder = RecordingPlugin()
    check_plugin(recorder)
    started = [call.payload.run_id for call in recorder.of("run_start")]
    ended = [call.payload.run_id for call in recorder.of("run_end")]
    assert sorted(started) == sorted(ended)
    assert len(set(started)) == len(started)
    last: dict[str, int] = {}
    for call in recorder.calls:
        if call.hook == "metrics":
            continue
        run_id, seq = call.payload.run_id, call.payload.seq
        assert seq > last.get(run_id, -1)
        last[run_id] = seq


def test_the_scripted_run_stays_out_of_the_callers_captures() -> None:
    with capture_events() as captured:
        check_plugin(OnlyRunEnd())
    assert len(captured) == 0


def test_a_plugin_that_flushes_passes_and_its_queue_is_drained() -> None:
    plugin = Buffered(deliver_seconds=0.01)
    report = check_plugin(plugin)
    report.raise_for_failures()
    [timing] = report.timings
    assert len(plugin.delivered) == timing.calls, "flush waited for every queued item"


class FlushReturnsFalse(OnlyRunEnd):
    def flush(self, timeout: float) -> bool:
        return False


class FlushReturnsNothing(OnlyRunEnd):
    def flush(self, timeout: float) -> None:
        pass


class FlushHangs(OnlyRunEnd):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def flush(self, timeout: float) -> bool:
        self.release.wait()
        return True


class CloseRaises(OnlyRunEnd):
    def close(self, timeout: float) -> bool:
        raise OSError("backend gone")


@pytest.mark.parametrize(
    ("plugin", "expected"),
    [
        (FlushReturnsFalse(), "returned False after"),
        (FlushReturnsNothing(), "returned None; the convention is True when"),
        (CloseRaises(), "close(0.2) returns True in time: raised OSError: backend gone"),
    ],
    ids=["false", "none", "raises"],
)
def test_a_flush_that_breaks_the_convention_fails(plugin: object, expected: str) -> None:
    report = check_plugin(plugin, flush_timeout=0.2)
    [failure] = report.failures
    assert expected in str(failure)


def test_a_flush_that_hangs_fails_instead_of_hanging() -> None:
    plugin = FlushHangs()
    started = time.monotonic()
    try:
        report = check_plugin(plugin, flush_timeout=0.2)
    finally:
        plugin.release.set()
    assert time.monotonic() - started < 10
    [failure] = report.failures
    assert "still running after 1.2 s" in failure.details


class UnknownHook:
    @hookimpl
    def run_finished(self, run: RunInfo) -> None:
        """Not a hook."""


class WrongArgument:
    @hookimpl
    def run_end(self, outcome: RunResult) -> None:
        """``outcome`` is not an argument of run_end."""


@pytest.mark.parametrize(
    ("plugin", "expected"),
    [(UnknownHook(), "unknown hook(s) run_finished"), (WrongArgument(), "outcome")],
    ids=["unknown-hook", "wrong-argument"],
)
def test_a_plugin_that_does_not_register_fails_the_first_check(
    plugin: object, expected: str
) -> None:
    report = check_plugin(plugin)
    [check] = report.checks
    assert not check.passed
    assert check.name == "registers with a strict plugin manager"
    assert expected in check.details


def test_a_plugin_without_hooks_fails() -> None:
    class Forgot:
        def run_end(self, run: RunInfo, result: RunResult) -> None:
            """Not marked @hookimpl."""

    report = check_plugin(Forgot())
    assert [check.name for check in report.failures] == ["implements at least one hook"]
    assert "@rlm_core.hookimpl" in report.failures[0].details


def test_a_one_off_slow_call_is_tolerated_but_a_long_block_is_not() -> None:
    class SlowFirstCall(OnlyRunEnd):
        def __init__(self, seconds: float) -> None:
            super().__init__()
            self.seconds = seconds

        @hookimpl
        def run_start(self, run: RunInfo) -> None:
            if self.seconds:
                time.sleep(self.seconds)
                self.seconds = 0

    budget_ms = 5.0
    check_plugin(SlowFirstCall(0.02), budget_ms=budget_ms).raise_for_failures()
    report = check_plugin(SlowFirstCall(budget_ms * SPIKE_FACTOR / 1000 + 0.05))
    assert [check.name for check in report.failures] == ["hook calls stay within 5 ms"]


def test_the_metrics_values_are_a_mapping_of_floats() -> None:
    recorder = RecordingPlugin()
    check_plugin(recorder)
    for call in recorder.of("metrics"):
        values: Mapping[str, float] = call.kwargs["values"]
        assert all(isinstance(value, float) for value in values.values())


@pytest.mark.parametrize("options", [{"budget_ms": 0}, {"flush_timeout": -1}])
def test_bounds_must_be_positive(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="positive"):
        check_plugin(OnlyRunEnd(), **options)
