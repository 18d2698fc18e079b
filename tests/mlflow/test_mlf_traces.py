"""``log_traces = true``: the tracker builds each run's MLflow trace from the hook spans itself,
in its own store, linked to the run: the same span tree the hooks emitted, read back with
``MlflowClient.search_traces``."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from rlm_core import cli
from rlm_core.events import LLMCall, RunResult
from rlm_core.runlog import read_log
from rlm_plugins.mlflow import MlflowTracker
from tests.mlflow.helpers import client, prov_run, the_run


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _traces(uri: str, mlflow_run: Any) -> list[Any]:
    return list(
        client(uri).search_traces(
            locations=[mlflow_run.info.experiment_id], run_id=mlflow_run.info.run_id
        )
    )


def test_the_demo_runs_trace_has_the_span_tree_the_hooks_emitted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Through the CLI, as a user turns traces on (this failed on every CLI run with autolog).
    (tmp_path / "rlm.toml").write_text("[plugins.mlflow]\nlog_traces = true\n", encoding="utf-8")
    assert cli.main(["demo", "--tracker", "mlflow", "--tracker", "jsonl"]) == 0
    out = capsys.readouterr().out
    assert "not in MLflow" not in out
    assert "unreachable" not in out

    (log_file,) = (tmp_path / "runs").glob("*.jsonl")
    log = read_log(log_file)
    run = log.header
    assert run is not None
    payloads = [record.payload for record in log.records]
    emitted = {
        (payload.span_id, payload.parent_span_id)
        for payload in payloads
        if hasattr(payload, "span_id") and not isinstance(payload, RunResult)
    }

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow_run = the_run(uri, run.run_id)
    (trace,) = _traces(uri, mlflow_run)
    assert trace.info.trace_id == f"tr-{run.trace_id}"
    assert trace.info.trace_metadata["rlm.run_id"] == run.run_id
    spans = trace.data.spans
    assert {(span.span_id, span.parent_id) for span in spans} == emitted
    assert len(spans) == len(emitted)  # one span per emitted span, none twice

    calls = {p.span_id: p for p in payloads if isinstance(p, LLMCall)}
    assert calls
    for span in spans:
        if span.span_id in calls:
            call = calls[span.span_id]
            assert span.span_type == "CHAT_MODEL"
            assert span.get_attribute("mlflow.chat.tokenUsage") == {
                "input_tokens": call.prompt_tokens,
                "output_tokens": call.completion_tokens,
                "total_tokens": call.prompt_tokens + call.completion_tokens,
            }
            assert span.start_time_ns == int(call.started_at.timestamp() * 1e9)
            assert span.end_time_ns == int(call.timestamp.timestamp() * 1e9)


def test_traces_go_to_the_trackers_store_from_any_thread_whatever_the_process_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    tracker = MlflowTracker(tracking_uri=f"sqlite:///{tmp_path / 'mine.db'}", log_traces=True)
    done: list[Any] = []
    worker = threading.Thread(target=lambda: done.append(prov_run(tracker)[0]))
    worker.start()
    worker.join(120)
    (result,) = done
    mlflow_run = the_run(tracker.tracking_uri, result.run_id)
    (trace,) = _traces(tracker.tracking_uri, mlflow_run)
    chat = [span for span in trace.data.spans if span.span_type == "CHAT_MODEL"]
    assert len(chat) == result.llm_calls
    assert not (tmp_path / "elsewhere.db").exists()


def test_no_trace_with_log_traces_off(tmp_path: Path) -> None:
    tracker = MlflowTracker(log_traces=False)
    result, _ = prov_run(tracker)
    assert _traces(tracker.tracking_uri, the_run(tracker.tracking_uri, result.run_id)) == []
