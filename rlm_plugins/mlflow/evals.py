"""An eval as an MLflow parent run, with every run of the eval nested under it.

``eval_start`` finds or creates the parent run (tagged ``rlm.eval_id`` and ``rlm.eval_parent``)
synchronously, before the eval's first run, so the writer can nest each run that carries the
``eval.id`` tag under it (``mlflow.parentRunId``), on this process or on a Ray worker that talks
to the same tracking server. A resumed eval finds its parent again. ``eval_end`` logs the
aggregates as the parent's metrics and ends it (KILLED when the eval was interrupted).
"""

from __future__ import annotations

import re
import threading
from typing import Any

from rlm_core.events import EvalInfo, EvalSummary

__all__ = ["EVAL_ID_TAG", "EVAL_PARENT_TAG", "EvalRuns", "metric_key", "parent_run_id"]

EVAL_ID_TAG = "rlm.eval_id"
EVAL_PARENT_TAG = "rlm.eval_parent"
_BAD_KEY_CHARS = re.compile(r"[^\w.\- :/]")
_parents: dict[tuple[str, str, str], str | None] = {}
_lock = threading.Lock()


def metric_key(name: str) -> str:
    """A metric name MLflow accepts: ``memory=on.success_rate`` -> ``memory_on.success_rate``."""
    return _BAD_KEY_CHARS.sub("_", name)[:250]


def parent_run_id(client: Any, experiment_id: str, eval_id: str) -> str | None:
    """The MLflow id of the eval's parent run in the experiment, or None (looked up once)."""
    key = (str(client.tracking_uri), experiment_id, eval_id)
    with _lock:
        if key in _parents:
            return _parents[key]
    found = _search(client, experiment_id, eval_id)
    with _lock:
        if found is not None:  # not found yet may change; found stays
            _parents[key] = found
    return found


def _search(client: Any, experiment_id: str, eval_id: str) -> str | None:
    if "'" in eval_id:
        return None
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{EVAL_ID_TAG}` = '{eval_id}' and tags.`{EVAL_PARENT_TAG}` = 'true'",
        max_results=1,
    )
    return str(runs[0].info.run_id) if runs else None


class EvalRuns:
    """Parent runs of evals in one tracking store and experiment."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_location: str | None) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.artifact_location = artifact_location

    def _client(self) -> tuple[Any, str]:
        from rlm_plugins.mlflow.imports import load_mlflow
        from rlm_plugins.mlflow.location import sqlite_path
        from rlm_plugins.mlflow.store import ensure_sqlite_store

        load_mlflow()
        from mlflow.tracking import MlflowClient

        database = sqlite_path(self.tracking_uri)
        if database is not None and not database.is_file():
            # Built aside under the store's lock, like the tracker's: a kill leaves none or all.
            ensure_sqlite_store(database, self.artifact_location)
        client = MlflowClient(tracking_uri=self.tracking_uri)
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            return client, str(found.experiment_id)
        created = client.create_experiment(
            self.experiment, artifact_location=self.artifact_location
        )
        return client, str(created)

    def start(self, evaluation: EvalInfo) -> str:
        """The parent run's MLflow id: found again (a resumed eval) or created."""
        from mlflow.entities import Param, RunTag

        client, experiment_id = self._client()
        existing = parent_run_id(client, experiment_id, evaluation.eval_id)
        params = {
            "tasks_path": evaluation.tasks_path,
            "tasks_sha256": evaluation.tasks_sha256,
            "tasks": str(len(evaluation.tasks)),
            "conditions": ",".join(evaluation.conditions),
            "trials": str(evaluation.trials),
        }
        if existing is not None:
            client.update_run(existing, status="RUNNING")
            known = client.get_run(existing).data.params
            params = {key: value for key, value in params.items() if key not in known}
            mlflow_id = existing
        else:
            mlflow_id = client.create_run(
                experiment_id,
                run_name=evaluation.eval_id,
                tags={EVAL_ID_TAG: evaluation.eval_id, EVAL_PARENT_TAG: "true"},
            ).info.run_id
        client.log_batch(
            mlflow_id,
            params=[Param(key, value[:6000]) for key, value in params.items()],
            tags=[RunTag("rlm.eval_conditions", ",".join(evaluation.conditions)[:8000])],
        )
        with _lock:
            _parents[(str(client.tracking_uri), experiment_id, evaluation.eval_id)] = mlflow_id
        return str(mlflow_id)

    def end(self, evaluation: EvalInfo, summary: EvalSummary) -> None:
        """Log the aggregates on the parent run and end it."""
        import time

        from mlflow.entities import Metric, RunTag

        client, experiment_id = self._client()
        mlflow_id = parent_run_id(client, experiment_id, evaluation.eval_id)
        if mlflow_id is None:
            return
        now = int(time.time() * 1000)
        values = {**summary.metrics, "runs": summary.runs, "failed_runs": summary.failed}
        metrics = [Metric(metric_key(name), float(v), now, 0) for name, v in values.items()]
        for start in range(0, len(metrics), 1000):
            client.log_batch(mlflow_id, metrics=metrics[start : start + 1000])
        client.log_batch(
            mlflow_id, tags=[RunTag("rlm.eval_interrupted", str(summary.interrupted).lower())]
        )
        client.set_terminated(mlflow_id, status="KILLED" if summary.interrupted else "FINISHED")
