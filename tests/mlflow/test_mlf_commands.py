"""``rlm mlflow experiments|search|export`` on a real SQLite store filled by the tracker."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from rlm_core import RunResult, cli
from rlm_plugins.mlflow import MlflowTracker
from tests.mlflow.helpers import failed_run, free_port, prov_run

Rlm = Callable[..., int]


@pytest.fixture
def rlm() -> Rlm:
    """``rlm ARGS...`` through the real ``main``."""
    return lambda *argv: cli.main(list(argv))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunResult, RunResult]:
    """A store in its own directory with one converged and one failed run."""
    directory = tmp_path_factory.mktemp("store")
    tracker = MlflowTracker(tracking_uri=f"sqlite:///{directory / 'mlflow.db'}")
    converged, _ = prov_run(tracker)
    failed = failed_run(directory, tracker)
    assert tracker.flush()
    return directory, converged, failed


@pytest.fixture
def in_store(store: tuple[Path, RunResult, RunResult], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(store[0])  # the default tracking URI is ./mlflow.db


@pytest.mark.usefixtures("in_store")
def test_experiments_lists_the_experiment(rlm: Rlm, capsys: pytest.CaptureFixture[str]) -> None:
    assert rlm("mlflow", "experiments", "--json") == 0
    experiments = json.loads(capsys.readouterr().out)
    assert "rlm" in [experiment["name"] for experiment in experiments]
    assert rlm("mlflow", "experiments") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATE", "ARTIFACTS"]
    assert any(line.split()[1:3] == ["rlm", "active"] for line in lines[1:])


@pytest.mark.usefixtures("in_store")
def test_search_filters_by_ontology_outcome_and_any_expression(
    rlm: Rlm, store: tuple[Path, RunResult, RunResult], capsys: pytest.CaptureFixture[str]
) -> None:
    _, converged, failed = store

    def found(*options: str) -> list[str]:
        assert rlm("mlflow", "search", "--json", *options) == 0
        return [row["rlm_run_id"] for row in json.loads(capsys.readouterr().out)]

    assert found() == [failed.run_id, converged.run_id]  # newest first
    assert found("--ontology", "prov") == [converged.run_id]
    assert found("--converged") == [converged.run_id]
    assert found("--failed") == [failed.run_id]
    assert found("--filter", "metrics.iterations >= 3") == [converged.run_id]
    assert found("--order-by", "attributes.start_time ASC") == [converged.run_id, failed.run_id]
    assert found("--max-results", "1") == [failed.run_id]

    assert rlm("mlflow", "search", "--ontology", "prov", "--json") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "FINISHED"
    assert row["params"]["ontology"] == "prov"
    assert row["metrics"]["iterations"] == converged.iterations
    assert row["tags"]["rlm.converged"] == "true"


@pytest.mark.usefixtures("in_store")
def test_search_prints_a_table(
    rlm: Rlm, store: tuple[Path, RunResult, RunResult], capsys: pytest.CaptureFixture[str]
) -> None:
    assert rlm("mlflow", "search", "--converged") == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:3] == ["RLM", "RUN", "MLFLOW"]
    assert row.split()[0] == store[1].run_id
    assert "FINISHED" in row
    assert "What is prov:Activity" in row


@pytest.mark.usefixtures("in_store")
def test_export_writes_params_metrics_and_tags_as_columns(
    rlm: Rlm, store: tuple[Path, RunResult, RunResult], tmp_path: Path
) -> None:
    output = tmp_path / "runs.csv"
    assert rlm("mlflow", "export", "--experiment", "rlm", "--output", str(output)) == 0
    with output.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["tags.rlm.run_id"] for row in rows] == [store[1].run_id, store[2].run_id]
    first = rows[0]
    assert first["status"] == "FINISHED"
    assert first["params.ontology"] == "prov"
    assert float(first["metrics.iterations"]) == store[1].iterations
    columns = list(first)
    assert columns[:5] == ["run_id", "run_name", "status", "start_time", "end_time"]
    kinds = [column.split(".")[0] for column in columns[5:]]
    assert kinds == sorted(kinds, key=["params", "metrics", "tags"].index)


def test_export_to_dash_writes_the_csv_to_stdout_and_no_file(
    rlm: Rlm,
    store: tuple[Path, RunResult, RunResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{store[0] / 'mlflow.db'}"
    capsys.readouterr()
    assert rlm("mlflow", "export", "--tracking-uri", uri, "-o", "-") == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert [row["tags.rlm.run_id"] for row in rows] == [store[1].run_id, store[2].run_id]
    assert not (tmp_path / "-").exists()


def test_the_store_and_experiment_come_from_the_config_file(
    rlm: Rlm,
    store: tuple[Path, RunResult, RunResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rlm.toml").write_text(
        f'[plugins.mlflow]\ntracking_uri = "sqlite:///{store[0] / "mlflow.db"}"\n'
        'experiment = "rlm"\n'
    )
    assert rlm("mlflow", "search", "--converged", "--json") == 0
    assert [row["rlm_run_id"] for row in json.loads(capsys.readouterr().out)] == [store[1].run_id]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("mlflow", "search", "--tracking-uri", "sqlite:///nowhere.db"), "no MLflow store at "),
        (("mlflow", "search", "--experiment", "nope"), "no experiment 'nope' in the store"),
        (("mlflow", "search", "--filter", "metrics.iterations >>> 3"), "MLflow: "),
        (("mlflow", "search", "--max-results", "0"), "--max-results must be at least 1"),
    ],
)
@pytest.mark.usefixtures("in_store")
def test_errors_are_one_line_and_exit_code_2(
    rlm: Rlm, argv: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rlm(*argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"rlm: error: {message}")
    assert err.count("\n") == 1


def test_an_unreachable_server_is_a_one_line_error(
    rlm: Rlm, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    assert rlm("mlflow", "experiments", "--tracking-uri", uri) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rlm: error: MLflow server {uri} is unreachable: ")
    assert err.count("\n") == 1


def test_the_mlflow_command_starts_without_importing_mlflow(tmp_path: Path) -> None:
    code = (
        "import sys; from rlm_core import cli; cli.build_parser(); "
        "import rlm_plugins.mlflow; print('mlflow' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert done.stdout.strip() == "False"
