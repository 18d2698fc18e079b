"""``log_traces = true``: DSPy's trace tree lands in MLflow next to the run, linked to it, and
MLflow's DSPy autologging is off again after the run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import dspy
import pytest

from rlm_plugins.mlflow import MlflowTracker
from tests.mlflow.helpers import client, prov_run, the_run


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def autologging() -> bool:
    from mlflow.dspy.callback import MlflowCallback

    return any(isinstance(callback, MlflowCallback) for callback in dspy.settings.callbacks)


def test_the_runs_dspy_traces_are_in_its_experiment_and_linked_to_it() -> None:
    tracker = MlflowTracker(log_traces=True)
    result, _ = prov_run(tracker)
    assert not autologging()

    mlflow_run = the_run(tracker.tracking_uri, result.run_id)
    mlflow_client = client(tracker.tracking_uri)

    def linked() -> list[Any]:
        return list(
            mlflow_client.search_traces(
                locations=[mlflow_run.info.experiment_id], run_id=mlflow_run.info.run_id
            )
        )

    deadline = time.monotonic() + 30  # linked in the background, once MLflow exported them
    while not (traces := linked()):
        assert time.monotonic() < deadline, "the run's traces were not linked to it"
        time.sleep(0.1)
    assert {trace.info.trace_metadata["rlm.run_id"] for trace in traces} == {result.run_id}
    spans = [span for trace in traces for span in trace.data.spans]
    assert sum(span.span_type == "CHAT_MODEL" for span in spans) == result.llm_calls


def test_traces_are_off_when_mlflow_exports_them_to_another_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    tracker = MlflowTracker(log_traces=True)
    result, _ = prov_run(tracker)
    assert "log_traces is ignored: MLflow exports traces to the process's tracking URI" in (
        caplog.text
    )
    assert not autologging()
    mlflow_run = the_run(tracker.tracking_uri, result.run_id)
    assert mlflow_run.data.metrics["iterations"] == 3
    assert not (tmp_path / "elsewhere.db").exists()
