"""The MLflow tracker against a real ``mlflow server`` on 127.0.0.1, started by the tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlm_plugins.mlflow import MlflowTracker
from tests.helpers.factories import run_info as make_run_info
from tests.mlflow.helpers import (
    client,
    free_port,
    histories,
    mlflow_server,
    prov_run,
    the_run,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with mlflow_server(tmp_path_factory.mktemp("server"), free_port()) as uri:
        yield uri


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_a_run_arrives_with_params_step_metrics_tags_and_artifacts(
    server: str, tmp_path: Path
) -> None:
    tracker = MlflowTracker(tracking_uri=server)
    result, _ = prov_run(tracker)
    mlflow_client = client(server)
    experiment = mlflow_client.get_experiment_by_name("rlm")
    found = mlflow_client.search_runs(
        [experiment.experiment_id],
        filter_string="params.ontology = 'prov' and metrics.converged = 1",
    )
    (mlflow_run,) = [run for run in found if run.data.tags["rlm.run_id"] == result.run_id]
    assert mlflow_run.info.status == "FINISHED"
    assert mlflow_run.data.params["ontology"] == "prov"
    assert mlflow_run.data.params["max_iterations"] == "20"
    assert mlflow_run.data.tags["rlm.converged"] == "true"
    assert mlflow_run.data.tags["rlm.complete"] == "true"
    assert mlflow_run.data.metrics["iterations"] == 3
    assert mlflow_run.data.metrics["tokens"] == result.tokens
    points = histories(server, mlflow_run)
    assert [step for step, _, _ in points["step.llm_calls"]] == [0, 1, 2]
    assert [step for step, _, _ in points["step.output_chars"]] == [0, 1, 2]

    run_id = mlflow_run.info.run_id
    assert tracker.close(30.0)  # the run log is uploaded after run_end, by the worker
    assert {item.path for item in mlflow_client.list_artifacts(run_id)} == {
        "answer.md",
        "query.sparql",
        "evidence.json",
        "logs",
    }
    evidence = Path(mlflow_client.download_artifacts(run_id, "evidence.json", str(tmp_path)))
    assert json.loads(evidence.read_text()) == result.evidence
    assert tracker.run_location(run=make_run_info(result.run_id)).where == (
        f"{server}/#/experiments/{experiment.experiment_id}/runs/{run_id}"
    )


def test_nested_runs_appear_as_children_of_the_parent(server: str) -> None:
    tracker = MlflowTracker(tracking_uri=server, experiment="batch")
    parent, _ = prov_run(tracker)
    children = [prov_run(tracker, parent_run_id=parent.run_id)[0] for _ in range(2)]
    parent_run = the_run(server, parent.run_id, "batch")
    mlflow_client = client(server)
    experiment = mlflow_client.get_experiment_by_name("batch").experiment_id
    found = mlflow_client.search_runs(
        [experiment], filter_string=f"tags.mlflow.parentRunId = '{parent_run.info.run_id}'"
    )
    assert sorted(run.data.tags["rlm.run_id"] for run in found) == sorted(
        child.run_id for child in children
    )
