"""The MLflow tracker against a real SQLite store: what a scripted run leaves in MLflow, nested
runs, secrets, replays that change nothing, and a server that does not answer."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from rlm_core import Settings, flush, run
from rlm_core.config import MemorySettings
from rlm_core.plugins import get_plugin_manager
from rlm_core.runlog import iter_hook_calls, read_log
from rlm_plugins.mlflow import MlflowTracker
from tests.helpers.factories import run_info as make_run_info
from tests.helpers.paths import REPO
from tests.mlflow.helpers import (
    PROV,
    PROV_CASSETTE,
    PROV_QUESTION,
    QUIET,
    client,
    emit,
    failed_run,
    free_port,
    histories,
    prov_run,
    recorded_calls,
    replay_file,
    runs_of,
    the_run,
    twenty_step_cassette,
)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert PROV.is_file(), f"{PROV} is missing: the tests need ../shared/ontologies"
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"


def test_a_run_is_one_mlflow_run_with_params_metrics_tags_and_artifacts(tmp_path: Path) -> None:
    tracker = MlflowTracker(tags={"team": "ontology"})  # the defaults: ./mlflow.db, "rlm"
    result, events = prov_run(tracker, tags={"experiment": "baseline"})
    assert result.converged
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert tracker.tracking_uri == uri

    mlflow_client = client(uri)
    experiment = mlflow_client.get_experiment_by_name("rlm")
    assert experiment.artifact_location == (tmp_path / "mlartifacts").as_uri()
    found = mlflow_client.search_runs(
        [experiment.experiment_id],
        filter_string="params.ontology = 'prov' and metrics.converged = 1",
    )
    assert len(found) == 1
    mlflow_run = found[0]
    assert mlflow_run.info.status == "FINISHED"
    # What differs between runs comes first in the name; the description holds the answer.
    assert mlflow_run.info.run_name == (
        f"What is prov:Activity and which properties link it to agent… · prov · {result.run_id}"
    )
    assert mlflow_run.data.tags["mlflow.note.content"] == (
        f"**Question:** {PROV_QUESTION}\n\n**Answer:** {result.answer}"
    )
    started = events.of("run_start")[0].payload.timestamp
    assert mlflow_run.info.start_time == int(started.timestamp() * 1000)
    assert mlflow_run.info.end_time == int(result.timestamp.timestamp() * 1000)

    params = mlflow_run.data.params
    model = f"scripted:{PROV_CASSETTE}"
    assert params == {
        "question": PROV_QUESTION,
        "ontology": "prov",
        "ontology_path": str(PROV),
        "ontology_triples": "1664",
        "model": model,
        "sub_model": model,
        "max_iterations": "20",
        "max_llm_calls": "50",
        "step_timeout": "20.0",
        "max_output_chars": "10000",
        "rlm_core_version": importlib.import_module("rlm_core").__version__,
    }
    tags = mlflow_run.data.tags
    assert tags["rlm.run_id"] == result.run_id
    assert tags["rlm.ontology"] == "prov"
    assert tags["rlm.converged"] == "true"
    assert tags["rlm.complete"] == "true"
    assert tags["experiment"] == "baseline"
    assert tags["team"] == "ontology"
    assert "rlm.error" not in tags

    metrics = mlflow_run.data.metrics
    assert metrics["iterations"] == result.iterations == 3
    assert metrics["llm_calls"] == result.llm_calls
    assert metrics["prompt_tokens"] == result.prompt_tokens
    assert metrics["completion_tokens"] == result.completion_tokens
    assert metrics["tokens"] == result.tokens
    assert metrics["duration_s"] == pytest.approx(result.duration)
    assert metrics["converged"] == 1.0
    assert "cost_usd" not in metrics  # the scripted LM reports no cost

    points = histories(uri, mlflow_run)
    assert [step for step, _, _ in points["step.llm_calls"]] == [0, 1, 2]
    # Every LM call made during the steps (not the judge's or extractor's after the last one).
    names = events.hook_names()
    last_step = len(names) - 1 - names[::-1].index("iteration")
    step_calls = [call.payload for call in events.calls[:last_step] if call.hook == "llm_call"]
    assert sum(value for _, _, value in points["step.llm_calls"]) == len(step_calls)
    assert sum(value for _, _, value in points["step.prompt_tokens"]) == sum(
        call.prompt_tokens or 0 for call in step_calls
    )
    assert {key for key in points if key.startswith("step.")} == {
        "step.llm_calls",
        "step.prompt_tokens",
        "step.completion_tokens",
        "step.tool_calls",
        "step.duration_s",
        "step.output_chars",
        "step.code_chars",
        "step.error",
    }

    assert tracker.close(30.0)  # the run log is uploaded after run_end, by the worker
    artifacts = {item.path for item in mlflow_client.list_artifacts(mlflow_run.info.run_id)}
    assert artifacts == {"answer.md", "query.sparql", "evidence.json", "logs"}
    download = Path(mlflow_client.download_artifacts(mlflow_run.info.run_id, "", str(tmp_path)))
    assert (download / "answer.md").read_text() == result.answer
    assert (download / "query.sparql").read_text() == result.sparql
    assert json.loads((download / "evidence.json").read_text()) == result.evidence
    assert tracker.run_location(run=make_run_info(result.run_id)).where == (
        f"{uri} (experiment 'rlm', run {mlflow_run.info.run_id})"
    )


def test_step_metrics_have_one_point_per_iteration_of_a_twenty_step_run(
    tmp_path: Path, store: str
) -> None:
    cassette = twenty_step_cassette(tmp_path / "twenty.jsonl")
    tracker = MlflowTracker(tracking_uri=store)
    result = run(
        "q",
        PROV,
        model=f"scripted:{cassette}",
        trackers=[],
        plugins=[tracker],
        config=Settings(step_timeout=20.0, max_iterations=21, memory=MemorySettings(enabled=False)),
    )
    flush()
    assert result.iterations == 20
    points = histories(store, the_run(store, result.run_id))
    for key in ("step.llm_calls", "step.duration_s", "step.output_chars", "step.tool_calls"):
        assert [step for step, _, _ in points[key]] == list(range(20)), key
    assert [value for _, _, value in points["step.tool_calls"]] == [2.0] * 19 + [0.0]
    assert points["iterations"] == [(0, points["iterations"][0][1], 20.0)]


def test_a_nested_run_is_a_child_of_its_parent_run(store: str) -> None:
    tracker = MlflowTracker(tracking_uri=store)
    parent, _ = prov_run(tracker)
    child, _ = prov_run(tracker, parent_run_id=parent.run_id)
    parent_run = the_run(store, parent.run_id)
    child_run = the_run(store, child.run_id)
    assert child_run.data.tags["mlflow.parentRunId"] == parent_run.info.run_id
    assert child_run.data.tags["rlm.parent_run_id"] == parent.run_id
    # Looked up in the store, not only remembered: a fresh tracker finds the parent too.
    grandchild, _ = prov_run(MlflowTracker(tracking_uri=store), parent_run_id=child.run_id)
    assert the_run(store, grandchild.run_id).data.tags["mlflow.parentRunId"] == (
        child_run.info.run_id
    )
    experiment = client(store).get_experiment_by_name("rlm").experiment_id
    children = client(store).search_runs(
        [experiment], filter_string=f"tags.mlflow.parentRunId = '{parent_run.info.run_id}'"
    )
    assert [found.info.run_id for found in children] == [child_run.info.run_id]


def test_metrics_hook_values_keep_their_names_and_steps(store: str) -> None:
    _, events = prov_run()
    calls = recorded_calls(events)
    run_info = calls[0][1]["run"]
    published = [
        ("metrics", {"run": run_info, "values": {"memory.hit_rate": 0.5}, "step": None}),
        (
            "metrics",
            {"run": run_info, "values": {"tokens_so_far": 1020, "odd name!": 1}, "step": 1},
        ),
        ("metrics", {"run": run_info, "values": {"tokens_so_far": 2040}, "step": 2}),
    ]
    emit([*calls[:-1], *published, calls[-1]], MlflowTracker(tracking_uri=store))
    mlflow_run = the_run(store, run_info.run_id)
    points = histories(store, mlflow_run)
    start = int(run_info.timestamp.timestamp() * 1000)
    assert points["memory.hit_rate"] == [(0, start, 0.5)]
    assert points["tokens_so_far"] == [(1, start, 1020.0), (2, start, 2040.0)]
    assert points["odd name_"] == [(1, start, 1.0)]  # characters MLflow refuses become "_"


def test_secrets_never_reach_params_or_tags(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SERVICE_TOKEN", "plain-looking-value-42")
    key = "sk-proj-" + "a1B2c3D4e5" * 3
    tracker = MlflowTracker(tracking_uri=store, tags={"deploy_password": "hunter2hunter2"})
    result = run(
        f"Use {key} and plain-looking-value-42 to answer: what is prov:Activity?",
        PROV,
        model=f"scripted:{PROV_CASSETTE}",
        trackers=[],
        plugins=[tracker],
        config=QUIET,
        tags={"api_key": "whatever-it-is", "note": f"Authorization: Bearer {key}"},
        allow_cassette_mismatch=True,  # the recorded run, asked otherwise
    )
    flush()
    mlflow_run = the_run(store, result.run_id)
    stored = json.dumps([mlflow_run.data.params, mlflow_run.data.tags])
    for secret in (key, "plain-looking-value-42", "hunter2hunter2", "whatever-it-is"):
        assert secret not in stored
    assert mlflow_run.data.params["question"] == (
        "Use [REDACTED] and [REDACTED] to answer: what is prov:Activity?"
    )
    assert mlflow_run.data.tags["api_key"] == "[REDACTED]"
    assert mlflow_run.data.tags["deploy_password"] == "[REDACTED]"
    assert mlflow_run.data.tags["note"] == "Authorization: [REDACTED]"


def test_a_long_question_is_cut_to_the_param_limit_and_marked(store: str) -> None:
    question = "Which activities? " * 500  # 9000 characters
    result = run(
        question,
        PROV,
        model=f"scripted:{PROV_CASSETTE}",
        trackers=[],
        plugins=[MlflowTracker(tracking_uri=store)],
        allow_cassette_mismatch=True,  # the recorded run, asked otherwise
        config=QUIET,
    )
    flush()
    stored = the_run(store, result.run_id).data.params["question"]
    assert len(stored) == 6000
    kept, marker = stored.split("…")
    assert question.startswith(kept)
    assert marker == f"[truncated {len(question) - len(kept)} chars]"


def test_a_run_that_fails_is_failed_in_mlflow_with_its_error(tmp_path: Path, store: str) -> None:
    result = failed_run(tmp_path, MlflowTracker(tracking_uri=store))
    flush()
    assert not result.converged
    assert result.error
    mlflow_run = the_run(store, result.run_id)
    assert mlflow_run.info.status == "FAILED"
    assert mlflow_run.data.tags["rlm.converged"] == "false"
    assert mlflow_run.data.tags["rlm.error"] == result.error
    assert mlflow_run.data.metrics["converged"] == 0.0
    assert mlflow_run.data.tags["rlm.complete"] == "true"


def test_the_run_log_is_written_by_the_tracker_itself_and_uploaded(tmp_path: Path) -> None:
    """No jsonl tracker in the run: the uploaded log comes from the events this tracker held,
    and reads back as the same run, event for event."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result, events = prov_run(MlflowTracker())
    assert not (tmp_path / "runs").exists()
    mlflow_run = the_run(store, result.run_id)
    mlflow_client = client(store)

    def listed() -> list[str]:
        return [item.path for item in mlflow_client.list_artifacts(mlflow_run.info.run_id, "logs")]

    _wait_for(lambda: bool(listed()))  # uploaded by the worker after run_end
    assert listed() == [f"logs/{result.run_id}.jsonl"]
    copy = Path(
        mlflow_client.download_artifacts(mlflow_run.info.run_id, listed()[0], str(tmp_path))
    )
    log = read_log(copy)
    assert log.problems == []
    assert log.header == events.of("run_start")[0].payload
    logged = [(hook, kwargs) for hook, kwargs in iter_hook_calls(log)]
    assert [hook for hook, _ in logged] == events.hook_names()
    assert logged[-1][1]["result"] == result


def test_every_mlflow_call_is_made_on_the_worker_thread(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    threads: set[str] = set()
    for method in (
        "create_run",
        "log_batch",
        "log_text",
        "set_terminated",
        "set_tag",
        "search_runs",
    ):
        original = getattr(MlflowClient, method)

        def spy(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            threads.add(threading.current_thread().name)
            return __original(self, *args, **kwargs)

        monkeypatch.setattr(MlflowClient, method, spy)
    prov_run(MlflowTracker(tracking_uri=store))
    assert threads == {"rlm-mlflow"}


def test_replaying_a_complete_run_changes_nothing(
    store: str, caplog: pytest.LogCaptureFixture
) -> None:
    result, events = prov_run(MlflowTracker(tracking_uri=store))
    before = the_run(store, result.run_id)
    with caplog.at_level("INFO", logger="rlm.mlflow"):
        emit(recorded_calls(events), MlflowTracker(tracking_uri=store))
    after = the_run(store, result.run_id)
    assert after.info.run_id == before.info.run_id
    assert histories(store, after) == histories(store, before)
    assert f"run {result.run_id} is already complete in MLflow" in caplog.text


def test_a_replay_completes_a_partly_delivered_run_without_duplicate_points(
    tmp_path: Path, store: str
) -> None:
    reference_store = f"sqlite:///{tmp_path / 'reference.db'}"
    result, events = prov_run(MlflowTracker(tracking_uri=reference_store))
    calls = recorded_calls(events)
    second_step = [i for i, (hook, _) in enumerate(calls) if hook == "iteration"][1]
    emit(calls[: second_step + 1], MlflowTracker(tracking_uri=store))  # no run_end: cut off
    _wait_for(lambda: len(_points_if_any(store, result.run_id, "step.llm_calls")) == 2)
    assert the_run(store, result.run_id).info.status == "RUNNING"

    emit(calls, MlflowTracker(tracking_uri=store))
    replayed = the_run(store, result.run_id)
    assert replayed.info.status == "FINISHED"
    assert histories(store, replayed) == histories(
        reference_store, the_run(reference_store, result.run_id)
    )


def test_a_server_that_never_answers_gets_the_run_spooled_with_what_happened(
    tmp_path: Path, store: str
) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        tracker = MlflowTracker(tracking_uri=uri, flush_timeout=1.0)
        result, _ = prov_run(tracker)
        assert tracker.close()  # what the CLI does before it exits
    spool = tmp_path / "mlflow-spool" / f"{result.run_id}.jsonl"
    assert spool.is_file()
    reason = f"ConnectionError: MLflow server {uri} is unreachable: timed out"
    location = tracker.run_location(run=make_run_info(result.run_id))
    assert location is not None
    assert not location.delivered
    assert location.where == (
        f"{spool} (not in MLflow: {reason}; send it with: rlm replay {spool} --to mlflow)"
    )
    replay_file(spool, MlflowTracker(tracking_uri=store))  # the spool is a replayable run log
    assert the_run(store, result.run_id).data.metrics["iterations"] == 3


def test_without_mlflow_the_plugin_is_unavailable_with_an_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # find_spec("mlflow") is None
    monkeypatch.delitem(sys.modules, "rlm_plugins.mlflow")
    monkeypatch.delitem(sys.modules, "rlm_plugins.mlflow.tracker")
    (entry_point,) = importlib.metadata.entry_points(group="rlm", name="mlflow")
    manager = get_plugin_manager(Settings(), entry_points=[entry_point])
    (status,) = manager.statuses()
    assert status.state == "unavailable"
    assert status.reason is not None
    assert "the mlflow tracker needs the mlflow package" in status.reason
    # from the checkout rlm-core was installed from, never 'rlm-core[mlflow]' from the index
    assert status.reason.endswith(f"install it with: pip install -e '{REPO}[mlflow]'")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tracking_uri": ""}, "tracking_uri must be a non-empty string"),
        ({"experiment": 3}, "experiment must be a non-empty string"),
        ({"run_name": "{answer}"}, "unknown placeholder {answer}"),
        ({"tags": {"a": 1}}, "tags must be a table of strings to strings"),
        ({"flush_timeout": 0}, "flush_timeout must be positive"),
        ({"flush_timeout": "10"}, "flush_timeout must be a number"),
        ({"log_traces": "yes"}, "log_traces must be true or false"),
    ],
)
def test_bad_options_are_clear_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=r"^mlflow: ") as raised:
        MlflowTracker(**options)
    assert message in str(raised.value)


def _points_if_any(store: str, rlm_run_id: str, key: str) -> list[Any]:
    try:
        found = runs_of(store, rlm_run_id)
    except AssertionError:  # no experiment yet
        return []
    return list(client(store).get_metric_history(found[0].info.run_id, key)) if found else []


def _wait_for(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_runs_in_two_threads_with_two_stores_do_not_mix(tmp_path: Path) -> None:
    stores = [f"sqlite:///{tmp_path / name / 'mlflow.db'}" for name in ("a", "b")]
    results: dict[str, str] = {}

    def one(store: str) -> None:
        result, _ = prov_run(MlflowTracker(tracking_uri=store, experiment="parallel"))
        results[store] = result.run_id

    threads = [threading.Thread(target=one, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert set(results) == set(stores)
    for store in stores:
        experiment = client(store).get_experiment_by_name("parallel").experiment_id
        found = client(store).search_runs([experiment])
        assert [run.data.tags["rlm.run_id"] for run in found] == [results[store]]
        assert found[0].info.status == "FINISHED"


@pytest.mark.skipif(
    not importlib.metadata.entry_points(group="rlm", name="mlflow"),
    reason="the mlflow entry point is not installed yet (pyproject + pip install -e .)",
)
def test_rlm_replay_to_mlflow_fills_the_store_from_a_spool_file(
    tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rlm_core import cli

    dead = f"http://127.0.0.1:{free_port()}"
    result, _ = prov_run(MlflowTracker(tracking_uri=dead, flush_timeout=1.0))
    spool = tmp_path / "mlflow-spool" / f"{result.run_id}.jsonl"
    config = tmp_path / "replay.toml"
    config.write_text(f'[plugins.mlflow]\ntracking_uri = "{store}"\n')
    for _ in range(2):
        assert cli.main(["replay", str(spool), "--to", "mlflow", "--config", str(config)]) == 0
    assert the_run(store, result.run_id).data.metrics["iterations"] == 3


def test_metrics_published_after_run_end_still_reach_the_run(store: str) -> None:
    tracker = MlflowTracker(tracking_uri=store)
    result, events = prov_run(tracker)
    run_info = events.of("run_start")[0].payload
    emit([("metrics", {"run": run_info, "values": {"late": 7.0}, "step": None})], tracker)
    _wait_for(lambda: "late" in the_run(store, result.run_id).data.metrics)
    assert len(runs_of(store, result.run_id)) == 1
    assert the_run(store, result.run_id).info.status == "FINISHED"


def test_a_relative_artifact_location_is_pinned_to_the_working_directory(
    tmp_path: Path, store: str
) -> None:
    tracker = MlflowTracker(tracking_uri=store, experiment="pinned", artifact_location="arts")
    result, _ = prov_run(tracker)
    experiment = client(store).get_experiment_by_name("pinned")
    assert experiment.artifact_location == (tmp_path / "arts").as_uri()
    mlflow_run = the_run(store, result.run_id, "pinned")
    assert (tmp_path / "arts" / mlflow_run.info.run_id / "artifacts" / "answer.md").is_file()
