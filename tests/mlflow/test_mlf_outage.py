"""The tracking server is down during a run: the run is not held up, nothing is lost, and a replay
once the server is back fills it exactly as if there had been no outage, once."""

from __future__ import annotations

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
    replay_file,
    runs_of,
    the_run,
)

pytestmark = pytest.mark.slow


def test_a_run_during_an_outage_is_replayed_later_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    port = free_port()  # nothing listens there yet
    down = MlflowTracker(tracking_uri=f"http://127.0.0.1:{port}", flush_timeout=2.0)
    reference_store = f"sqlite:///{tmp_path / 'reference.db'}"
    reference = MlflowTracker(tracking_uri=reference_store)  # same run, no outage

    result, _ = prov_run(down, reference)  # returns: the dead server is only the worker's trouble
    assert result.converged

    spool = tmp_path / "mlflow-spool" / f"{result.run_id}.jsonl"
    assert spool.is_file()
    location = down.run_location(run=make_run_info(result.run_id))
    assert location is not None
    assert not location.delivered
    assert location.where.startswith(f"{spool} (not in MLflow: ConnectionError: MLflow server")
    assert f"its events are kept in {spool}" in caplog.text
    assert f"rlm replay {spool} --to mlflow" in caplog.text

    with mlflow_server(tmp_path / "server", port) as server:
        replayed = MlflowTracker(tracking_uri=server)
        replay_file(spool, replayed)
        assert replayed.close(30.0)
        arrived = the_run(server, result.run_id)
        expected = the_run(reference_store, result.run_id)
        assert arrived.info.status == expected.info.status == "FINISHED"
        assert arrived.info.start_time == expected.info.start_time
        assert arrived.info.end_time == expected.info.end_time
        assert arrived.data.params == expected.data.params
        assert arrived.data.metrics == expected.data.metrics
        assert histories(server, arrived) == histories(reference_store, expected)
        assert {
            key: value for key, value in arrived.data.tags.items() if key.startswith("rlm.")
        } == {key: value for key, value in expected.data.tags.items() if key.startswith("rlm.")}
        artifacts = {item.path for item in client(server).list_artifacts(arrived.info.run_id)}
        assert artifacts == {"answer.md", "query.sparql", "evidence.json", "logs"}

        replayed = MlflowTracker(tracking_uri=server)
        replay_file(spool, replayed)
        assert replayed.close(30.0)  # again: nothing changes
        assert len(runs_of(server, result.run_id)) == 1
        again = the_run(server, result.run_id)
        assert histories(server, again) == histories(server, arrived)
