"""The MLflow tracker under faults: a new store (slow, killed, broken, raced), replays that
cannot deliver, hostile run ids, tag keys and paths. Real SQLite stores, real processes."""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rlm_core import cli
from rlm_plugins.jsonl import JsonlTracker
from rlm_plugins.mlflow import MlflowTracker
from rlm_plugins.mlflow.store import ensure_sqlite_store
from tests.helpers.factories import run_info as make_run_info
from tests.mlflow.helpers import (
    PROV,
    PROV_CASSETTE,
    PROV_QUESTION,
    client,
    emit,
    free_port,
    prov_run,
    recorded_calls,
    runs_of,
    the_run,
)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_creating_the_store_is_not_billed_to_flush_timeout(tmp_path: Path) -> None:
    # Building a store's schema takes seconds here: under the old rule this run was reported
    # as undelivered (and spooled) although it reached MLflow. (The rule itself is tested on
    # BackgroundDelivery in tests/test_delivery.py.)
    # Traces off: their writing is delivery time this test does not measure.
    tracker = MlflowTracker(flush_timeout=1.0, log_traces=False)
    result, _ = prov_run(tracker)  # flushes with the tracker's own timeout
    location = tracker.run_location(run=make_run_info(result.run_id))
    assert location is not None
    assert location.delivered
    assert the_run(tracker.tracking_uri, result.run_id).info.status == "FINISHED"
    assert not (tmp_path / "mlflow-spool").exists()


def test_a_store_killed_while_being_created_is_absent_then_created_whole(tmp_path: Path) -> None:
    database = tmp_path / "mlflow.db"
    code = (
        "import sys; from pathlib import Path; "
        "from rlm_plugins.mlflow.store import ensure_sqlite_store; "
        "ensure_sqlite_store(Path(sys.argv[1]), None)"
    )
    creator = subprocess.Popen([sys.executable, "-c", code, str(database)])
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".mlflow.db.*.creating")):  # migrations under way
        assert creator.poll() is None, "the store was created before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    creator.send_signal(signal.SIGKILL)
    creator.wait()
    assert not database.exists()  # no store rather than half a store

    tracker = MlflowTracker()
    result, _ = prov_run(tracker)
    assert the_run(tracker.tracking_uri, result.run_id).info.status == "FINISHED"
    assert not list(tmp_path.glob(".mlflow.db.*.creating"))  # the leftover was removed


def _break(database: Path) -> None:
    """What a kill during MLflow's in-place migrations left behind: some tables, and a
    migration history that does not match them."""
    database.parent.mkdir(parents=True, exist_ok=True)
    ensure_sqlite_store(database, None)
    with sqlite3.connect(database) as connection:
        connection.execute("DROP TABLE model_versions")
        connection.execute("DELETE FROM alembic_version")


def test_a_broken_store_is_named_in_one_line_with_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each reader gets its own broken store: MLflow's failed attempt to migrate changes it.
    database = tmp_path / "mlflow.db"
    _break(database)
    assert cli.main(["mlflow", "search"]) == 2
    err = capsys.readouterr().err
    ours = [line for line in err.splitlines() if " INFO mlflow." not in line]  # MLflow's own
    assert len(ours) == 1
    assert ours[0].startswith(f"rlm: error: MLflow store {database} is broken")
    assert f"mv {database} {database}.broken" in ours[0]
    assert "Traceback" not in err

    other = tmp_path / "other" / "mlflow.db"
    _break(other)
    tracker = MlflowTracker(tracking_uri=f"sqlite:///{other}")
    result, _ = prov_run(tracker)
    location = tracker.run_location(run=make_run_info(result.run_id))
    assert location is not None
    assert not location.delivered
    assert f"MLflow store {other} is broken" in location.where
    assert f"mv {other} {other}.broken" in location.where


def test_four_processes_on_a_fresh_store_all_deliver(tmp_path: Path) -> None:
    # Four cold processes on a shared 2-core machine: speed is not what this test is about.
    config = "[memory]\nenabled = false\n[plugins.mlflow]\nflush_timeout = 120\n"
    (tmp_path / "rlm.toml").write_text(config, encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "rlm_core.cli",
        "run",
        PROV_QUESTION,
        "--ontology",
        str(PROV),
        "--lm",
        f"scripted:{PROV_CASSETTE}",
        "--tracker",
        "mlflow",
    ]
    processes = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    errors = "\n".join(err.decode() for _, err in outputs)
    assert [process.returncode for process in processes] == [0] * 4, errors
    assert not (tmp_path / "mlflow-spool").exists()
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment = client(store).get_experiment_by_name("rlm")
    found = client(store).search_runs([experiment.experiment_id])
    assert sorted(run.info.status for run in found) == ["FINISHED"] * 4


def test_replay_that_cannot_deliver_exits_1_leaves_its_input_alone_and_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    result, _ = prov_run(MlflowTracker(tracking_uri=dead, flush_timeout=1.0))
    spool = tmp_path / "mlflow-spool" / f"{result.run_id}.jsonl"
    before = spool.read_bytes()
    config = tmp_path / "replay.toml"
    config.write_text(f'[plugins.mlflow]\ntracking_uri = "{dead}"\n', encoding="utf-8")

    capsys.readouterr()
    code = cli.main(["replay", str(spool), "--to", "mlflow", "--config", str(config)])
    captured = capsys.readouterr()
    assert code == 1
    assert spool.read_bytes() == before  # never rewritten
    kept = tmp_path / "mlflow-spool" / f"{result.run_id}.2.jsonl"
    assert kept.is_file()
    assert f"run {result.run_id} did not reach 'mlflow'; kept in {kept}" in captured.err
    assert "1 run(s) not delivered" in captured.out


def _with_run_id(calls: list[tuple[str, dict[str, Any]]], run_id: str) -> list[Any]:
    """The same hook calls for a run with another id."""
    run = dataclasses.replace(calls[0][1]["run"], run_id=run_id)
    renamed = []
    for hook, kwargs in calls:
        changed = {"run": run}
        for key, value in kwargs.items():
            if key != "run":
                is_event = dataclasses.is_dataclass(value) and hasattr(value, "run_id")
                changed[key] = dataclasses.replace(value, run_id=run_id) if is_event else value
        renamed.append((hook, changed))
    return renamed


@pytest.mark.parametrize("run_id", ["it's-a-run", "both-'-and-\"-quotes"])
def test_a_run_id_with_quotes_is_not_duplicated_on_replay(tmp_path: Path, run_id: str) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _, events = prov_run()
    calls = _with_run_id(recorded_calls(events), run_id)
    emit(calls, MlflowTracker(tracking_uri=store))
    emit(calls, MlflowTracker(tracking_uri=store))  # a replay: fills the same run
    experiment = client(store).get_experiment_by_name("rlm")
    found = client(store).search_runs([experiment.experiment_id])
    assert [run.data.tags["rlm.run_id"] for run in found] == [run_id]
    assert found[0].info.status == "FINISHED"


def test_tag_keys_that_collide_when_cleaned_are_both_kept(tmp_path: Path) -> None:
    tracker = MlflowTracker()
    result, _ = prov_run(tracker, tags={"a!": "first", "a?": "second"})
    tags = the_run(tracker.tracking_uri, result.run_id).data.tags
    kept = {key: value for key, value in tags.items() if key.startswith("a_")}
    assert sorted(kept.values()) == ["first", "second"]
    assert kept["a_"] == "first"


def test_no_option_makes_the_tracker_read_a_file_it_did_not_write() -> None:
    # The run log it uploads is written from its own events; there is no path to point at a key.
    with pytest.raises(TypeError, match="jsonl_path"):
        MlflowTracker(jsonl_path="../victim/id_ed25519")  # type: ignore[call-arg]


def test_a_replayed_run_id_reaches_one_run_however_often(tmp_path: Path) -> None:
    tracker = MlflowTracker()
    result, events = prov_run(tracker)
    emit(recorded_calls(events), MlflowTracker())
    assert len(runs_of(tracker.tracking_uri, result.run_id)) == 1
    assert os.listdir(tmp_path).count("mlflow-spool") == 0


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ("Terminated: the run was terminated by SIGTERM", "KILLED"),
        ("KeyboardInterrupt: ", "KILLED"),
        ("RuntimeError: the LM failed", "FAILED"),
    ],
)
def test_a_run_ended_from_outside_is_killed_in_mlflow(
    tmp_path: Path, error: str, status: str
) -> None:
    _, events = prov_run()
    calls = recorded_calls(events)
    hook, kwargs = calls[-1]
    assert hook == "run_end"
    ended = dataclasses.replace(kwargs["result"], converged=False, error=error)
    calls[-1] = (hook, {**kwargs, "result": ended})
    tracker = MlflowTracker()
    emit(calls, tracker)
    mlflow_run = the_run(tracker.tracking_uri, kwargs["run"].run_id)
    assert mlflow_run.info.status == status


def test_a_log_without_run_end_replays_as_a_failed_run_not_a_running_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # What a SIGKILLed run leaves: its log stops before run_end.
    cut = tmp_path / "killed.jsonl"
    result, _ = prov_run(JsonlTracker())
    lines = (tmp_path / "runs" / f"{result.run_id}.jsonl").read_text().splitlines()
    assert lines[-1].startswith('{"event":"run_end"')
    cut.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")

    capsys.readouterr()
    assert cli.main(["replay", str(cut), "--to", "mlflow"]) == 0
    assert "1 run(s) without run_end replayed as failed" in capsys.readouterr().out
    mlflow_run = the_run(f"sqlite:///{tmp_path / 'mlflow.db'}", result.run_id)
    assert mlflow_run.info.status == "FAILED"
    assert mlflow_run.data.tags["rlm.error"].startswith("RunIncomplete: the log ends before")
    assert mlflow_run.data.metrics["iterations"] == result.iterations


def test_rlm_mlflow_close_marks_orphaned_running_runs_killed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _, events = prov_run()
    calls = recorded_calls(events)
    emit(calls[:-1], MlflowTracker(tracking_uri=store))  # killed before run_end: RUNNING
    finished, _ = prov_run(MlflowTracker(tracking_uri=store))
    orphan = calls[0][1]["run"].run_id
    assert the_run(store, orphan).info.status == "RUNNING"

    capsys.readouterr()
    assert cli.main(["mlflow", "close", "--tracking-uri", store, "--older-than", "0"]) == 0
    assert "marked 1 orphaned run(s) KILLED" in capsys.readouterr().out
    assert the_run(store, orphan).info.status == "KILLED"
    assert the_run(store, finished.run_id).info.status == "FINISHED"


def test_rlm_run_waits_for_delivery_and_exits_1_when_mlflow_did_not_get_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    (tmp_path / "rlm.toml").write_text(
        f'[memory]\nenabled = false\n[plugins.mlflow]\ntracking_uri = "{dead}"\n',
        encoding="utf-8",
    )
    argv = ["run", PROV_QUESTION, "--ontology", str(PROV), "--lm", f"scripted:{PROV_CASSETTE}"]
    capsys.readouterr()
    assert cli.main([*argv, "--tracker", "mlflow"]) == 1  # the run converged; MLflow lacks it
    out = capsys.readouterr().out
    (spool,) = (tmp_path / "mlflow-spool").glob("*.jsonl")
    assert f"  mlflow: {spool} (not in MLflow: ConnectionError: MLflow server {dead}" in out
    assert f"send it with: rlm replay {spool} --to mlflow" in out
