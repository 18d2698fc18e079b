"""Shared by the MLflow tracker tests: scripted runs, a real ``mlflow server``, replays and
readers of what MLflow stored. No tests here."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rlm_core import RunResult, Settings, flush, run
from rlm_core.config import MemorySettings
from rlm_core.plugins import PluginManager
from rlm_core.runlog import iter_hook_calls, read_log
from rlm_core.testing import (
    RecordingPlugin,
    capture_events,
    scripted_step,
    scripted_sub,
    write_cassette,
)
from rlm_plugins.mlflow.imports import load_mlflow
from tests.helpers.paths import SHARED_ONTOLOGIES

HERE = Path(__file__).resolve().parent
PROV = SHARED_ONTOLOGIES / "prov.ttl"
PROV_CASSETTE = HERE.parent / "cassettes" / "prov-activity.jsonl"
PROV_QUESTION = "What is prov:Activity and which properties link it to agents?"
# Memory off: these runs must not leave a memory database in the working directory.
QUIET = Settings(step_timeout=20.0, memory=MemorySettings(enabled=False))
# SQLAlchemy 2.1 deprecates a loader option MLflow 3.17's SQL store still uses; harmless.
SERVER_START_TIMEOUT = 90.0


def prov_run(*plugins: object, **options: Any) -> tuple[RunResult, RecordingPlugin]:
    """The recorded PROV question (3 iterations, converges), with ``plugins`` as the trackers;
    then ``rlm_core.flush()``, as a library user does before reading what the trackers wrote."""
    with capture_events() as events:
        result = run(
            PROV_QUESTION,
            PROV,
            model=f"scripted:{PROV_CASSETTE}",
            trackers=[],
            plugins=plugins,
            config=options.pop("config", QUIET),
            **options,
        )
    flush()
    return result, events


def failed_run(directory: Path, *plugins: object) -> RunResult:
    """A run over the demo ontology that fails once started: its cassette has no root response."""
    from rlm_core._demo import DEMO_ONTOLOGY

    cassette = write_cassette(directory / "no-root.jsonl", [scripted_sub("unused")])
    return run(
        "q", DEMO_ONTOLOGY, model=f"scripted:{cassette}", trackers=[], plugins=plugins, config=QUIET
    )


def twenty_step_cassette(path: Path) -> Path:
    """19 steps that call the ontology tools, then SUBMIT: a 20-iteration run."""
    steps = [
        scripted_step(
            f"Step {i}: look around.",
            "print(search_entity('Activity', limit=3))\n"
            "print(sparql_select('SELECT ?c WHERE { ?c a owl:Class }', limit=5))\n"
            f"step_{i} = {i}",
        )
        for i in range(19)
    ]
    steps.append(scripted_step("Submit.", "SUBMIT(answer='done', sparql='', evidence=[])"))
    return write_cassette(path, steps)


def emit(calls: Iterable[tuple[str, dict[str, Any]]], *plugins: object) -> None:
    """Emit hook calls through a real plugin manager, as ``rlm replay`` does, then flush."""
    manager = PluginManager()
    for plugin in plugins:
        manager.register(plugin)
    for hook, kwargs in calls:
        getattr(manager.hook, hook)(**kwargs)
    flush()


def replay_file(path: Path, *plugins: object) -> None:
    """``rlm replay PATH --to ...`` in process: the log read back with rlm_core.runlog."""
    log = read_log(path)
    assert log.problems == []
    emit(iter_hook_calls(log), *plugins)


def recorded_calls(recorder: RecordingPlugin) -> list[tuple[str, dict[str, Any]]]:
    return [(call.hook, dict(call.kwargs)) for call in recorder.calls]


def client(uri: str) -> Any:
    load_mlflow()  # the tracker's worker may be importing MLflow right now
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def runs_of(uri: str, rlm_run_id: str, experiment: str = "rlm") -> list[Any]:
    """Every MLflow run tagged with ``rlm_run_id`` (there should be one)."""
    mlflow_client = client(uri)
    found = mlflow_client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r} in {uri}"
    return list(
        mlflow_client.search_runs(
            [found.experiment_id], filter_string=f"tags.`rlm.run_id` = '{rlm_run_id}'"
        )
    )


def the_run(uri: str, rlm_run_id: str, experiment: str = "rlm") -> Any:
    found = runs_of(uri, rlm_run_id, experiment)
    assert len(found) == 1, f"{len(found)} MLflow runs for rlm run {rlm_run_id}"
    return found[0]


def histories(uri: str, mlflow_run: Any) -> dict[str, list[tuple[int, int, float]]]:
    """Every metric's full history as sorted (step, timestamp, value) points."""
    mlflow_client = client(uri)
    return {
        key: sorted(
            (point.step, point.timestamp, point.value)
            for point in mlflow_client.get_metric_history(mlflow_run.info.run_id, key)
        )
        for key in mlflow_run.data.metrics
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def mlflow_server(directory: Path, port: int) -> Iterator[str]:
    """A real ``mlflow server`` on 127.0.0.1:``port`` with a SQLite store in ``directory``;
    stopped (its whole process group) on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    uri = f"http://127.0.0.1:{port}"
    command = [
        # The module, not the console script: a venv that sees mlflow through its base
        # interpreter has no ``mlflow`` script of its own.
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{directory / 'server.db'}",
        "--default-artifact-root",
        str(directory / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    # The server imports LiteLLM, which would fetch its price list from the network.
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    with (directory / "server.log").open("wb") as output:
        server = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        _wait_until_healthy(server, uri, directory / "server.log")
        yield uri
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)


def _wait_until_healthy(server: subprocess.Popen[bytes], uri: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {server.returncode}:\n{log.read_text()}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{uri}/health", timeout=1) as reply,
        ):
            if reply.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"mlflow server at {uri} not healthy after {SERVER_START_TIMEOUT} s")
