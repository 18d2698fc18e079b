"""The MLflow tracker records the memory metrics under their names, without knowing the plugin."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlm_core.testing import RecordingPlugin
from rlm_plugins.memory_metrics import MemoryMetricsTracker
from tests.memory_metrics.helpers import (
    cassette,
    extracted,
    judged,
    memory_settings,
    published,
    scripted_run,
    seed,
    step,
    submit,
)

mlflow_tracker = pytest.importorskip(
    "rlm_plugins.mlflow",
    reason="the mlflow tracker is not importable (pip install 'rlm-core[mlflow]')",
)


def test_mlflow_records_the_memory_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    seed(tmp_path / "rlm-memory.db")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    model = cassette(
        tmp_path / "c.jsonl",
        step("print(describe_entity('coffee:usesEquipment'))"),
        step(submit()),
        judged(True, 0.7),
        extracted(),
    )
    recorder = RecordingPlugin()
    result = scripted_run(
        model,
        memory_settings(tmp_path / "rlm-memory.db"),
        MemoryMetricsTracker(),
        mlflow_tracker.MlflowTracker(tracking_uri=uri, experiment="memory-metrics"),
        recorder,
    )
    values = published(recorder)
    assert len(values) == 13  # every metric: memory on, judged, extracted, texts readable

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("memory-metrics")
    (found,) = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`rlm.run_id` = '{result.run_id}'"
    )
    assert found.info.status == "FINISHED"  # the metrics arrived before MLflow closed the run
    logged = found.data.metrics
    assert {name: logged[name] for name in values} == pytest.approx(values)
    assert logged["memory_metrics.success"] == logged["judge.success"] == 1.0
