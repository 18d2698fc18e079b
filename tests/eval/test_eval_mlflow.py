"""MLflow: one parent run per eval holding params and aggregates, one nested child per run."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlm_core.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_parent_and_children_read_back_with_search_runs(in_tmp: Path) -> None:
    from mlflow.tracking import MlflowClient

    assert main(["eval", "demo", "-t", "mlflow", "--no-report"]) == 0
    client = MlflowClient(tracking_uri=f"sqlite:///{in_tmp / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("rlm")
    (parent,) = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`rlm.eval_parent` = 'true'"
    )
    manifest = (in_tmp / "eval-demo" / "eval.json").read_text(encoding="utf-8")
    assert parent.data.tags["rlm.eval_id"] in manifest
    assert parent.info.status == "FINISHED"
    params = parent.data.params
    assert params["conditions"] == "memory=on,memory=off"
    assert params["trials"] == "2"
    assert params["tasks"] == "3"
    assert params["tasks_sha256"] in manifest
    metrics = parent.data.metrics
    assert metrics["memory_on.success_rate"] == pytest.approx(4 / 6)
    assert metrics["memory_off.success_rate"] == pytest.approx(4 / 6)
    assert metrics["memory_off.success_low"] == pytest.approx(0.3000, abs=1e-4)
    assert metrics["memory_off.tokens_mean"] == pytest.approx((4399 + 1980 + 1965) / 3)
    assert metrics["runs"] == 12
    children = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
    )
    assert len(children) == 12
    keys = {
        (c.data.tags["eval.task"], c.data.tags["eval.condition"], c.data.tags["eval.trial"])
        for c in children
    }
    assert len(keys) == 12
    for child in children:
        expected = 0.0 if child.data.tags["eval.task"] == "farm-altitude" else 1.0
        assert child.data.metrics["eval.success"] == expected
        assert child.data.tags["rlm.eval_grade"] == ("success" if expected else "failure")
