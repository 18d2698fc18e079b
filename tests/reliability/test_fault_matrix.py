"""Fault injection: a third-party plugin misbehaves in each hook in each way; nothing else suffers.

For every hook x {raises, calls sys.exit, hangs past its budget, is slow, returns garbage}, a real
scripted run with the built-in trackers beside the faulty plugin must end with the clean run's
answer, the JSONL log must hold the clean run's events, and the faulty plugin's trouble must show
in the run's result and in ``rlm plugins``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlm_core import RunResult, Settings, flush, run
from rlm_core._demo import DEMO_CASSETTE, DEMO_ONTOLOGY, DEMO_QUESTION
from rlm_core.cli import main
from rlm_core.config import MemorySettings, Selection
from rlm_core.hookspecs import EVENT_HOOKS
from rlm_core.plugins import get_plugin_manager
from rlm_core.runlog import read_log
from tests.reliability.faulty_plugin import FAULTS, RELEASE

HOOK_TIMEOUT = 0.5
# Hooks that fire after run_end's result was built (memory_metrics publishes at run_end): what
# goes wrong in them shows in the health file and `rlm plugins`, not in the result.
AFTER_RESULT = ("run_end", "metrics")
BUILTINS = ("jsonl", "mlflow", "memory_metrics")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The faulty plugin installed as a distribution with an ``rlm`` entry point."""
    site = tmp_path_factory.mktemp("site")
    info = site / "rlm_faulty_tracker-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: rlm-faulty-tracker\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[rlm]\nfaulty = tests.reliability.faulty_plugin:FaultyTracker\n", encoding="utf-8"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(site))
        for variable in ("RLM_TRACKERS", "RLM_DISABLE", "RLM_CONFIG", "RLM_MODEL"):
            patch.delenv(variable, raising=False)
        yield site
    RELEASE.set()


@pytest.fixture(scope="module")
def trackers(installed: Path) -> tuple[str, ...]:
    """The built-in trackers that are available here, plus the faulty one."""
    statuses = get_plugin_manager(Settings()).statuses()
    available = {status.name for status in statuses if status.state == "enabled"}
    return (*(name for name in BUILTINS if name in available), "faulty")


def settings_for(cell: Path, trackers: tuple[str, ...], hook: str, fault: str) -> Settings:
    faulty: dict[str, Any] = {"hook": hook, "fault": fault}
    if fault == "hangs":
        faulty["dispatch"] = "thread"
    plugins: dict[str, dict[str, Any]] = {"faulty": faulty}
    if "mlflow" in trackers:
        shared = cell.parent / "mlflow.db"
        plugins["mlflow"] = {"tracking_uri": f"sqlite:///{shared}"}
    return Settings(
        hook_timeout=HOOK_TIMEOUT,
        memory=MemorySettings(path=str(cell / "memory.db")),
        plugins=plugins,
        selections=(Selection(source="test", allow=trackers),),
    )


def demo(cell: Path, trackers: tuple[str, ...], hook: str, fault: str) -> tuple[RunResult, float]:
    started = time.perf_counter()
    result = run(
        DEMO_QUESTION,
        DEMO_ONTOLOGY,
        model=f"scripted:{DEMO_CASSETTE}",
        config=settings_for(cell, trackers, hook, fault),
    )
    elapsed = time.perf_counter() - started
    # The trackers' background work reaches their backends (checked below, store by store);
    # flush's own answer also covers trackers earlier tests left behind.
    flush(60.0)
    return result, elapsed


def in_mlflow(cell: Path, result: RunResult) -> tuple[str, dict[str, float]] | None:
    """The MLflow run of this rlm run: its status and metrics (None: mlflow is not installed)."""
    store = cell.parent / "mlflow.db"
    if not store.exists():
        return None
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    (experiment,) = (e for e in client.search_experiments() if e.name == "rlm")
    (found,) = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`rlm.run_id` = '{result.run_id}'"
    )
    return found.info.status, dict(found.data.metrics)


def logged(cell: Path, result: RunResult) -> list[tuple[Any, ...]]:
    """The run's JSONL events, without what differs between two runs of the same cassette."""
    log = read_log(cell / "runs" / f"{result.run_id}.jsonl")
    assert log.problems == []
    return [
        (
            record.hook,
            getattr(record.payload, "index", None),
            getattr(record.payload, "name", None),
            getattr(record.payload, "role", None),
        )
        for record in log.records
    ]


@pytest.fixture(scope="module")
def clean(
    tmp_path_factory: pytest.TempPathFactory, trackers: tuple[str, ...]
) -> tuple[RunResult, list[tuple[Any, ...]], float, dict[str, int]]:
    """A run where the faulty plugin behaves everywhere (its fault is in no hook)."""
    cell = tmp_path_factory.mktemp("clean")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cell)
        result, elapsed = demo(cell, trackers, "none", "raises")
        events = logged(cell, result)
    counts = {hook: sum(1 for event in events if event[0] == hook) for hook in EVENT_HOOKS}
    return result, events, elapsed, counts


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("hook", EVENT_HOOKS)
def test_a_faulty_plugin_changes_nothing_but_its_own_status(
    hook: str,
    fault: str,
    clean: tuple[RunResult, list[tuple[Any, ...]], float, dict[str, int]],
    trackers: tuple[str, ...],
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clean_result, clean_events, clean_elapsed, counts = clean
    cell = tmp_path_factory.mktemp(f"{hook}-{fault}")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cell)
        result, elapsed = demo(cell, trackers, hook, fault)
        events = logged(cell, result)
        assert main(["plugins", "--json"]) == 0
        listing = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}

    assert result.error is None
    assert result.converged
    assert result.answer == clean_result.answer
    assert result.sparql == clean_result.sparql
    assert events == clean_events, "the JSONL tracker missed or reordered events"
    if "mlflow" in trackers:
        clean_mlflow, cell_mlflow = in_mlflow(cell, clean_result), in_mlflow(cell, result)
        assert clean_mlflow is not None
        assert cell_mlflow is not None
        assert cell_mlflow[0] == clean_mlflow[0] == "FINISHED"
        assert set(cell_mlflow[1]) == set(clean_mlflow[1]), "MLflow missed metrics"
        for name in ("iterations", "llm_calls", "converged"):
            assert cell_mlflow[1][name] == clean_mlflow[1][name]
    trouble = listing["faulty"]["last_trouble"]
    calls = counts[hook]

    if fault in ("raises", "exits") and calls:
        if hook not in AFTER_RESULT:
            assert result.plugin_errors == {"faulty": calls}
        assert trouble is not None
        assert trouble["errors"] == calls
        assert trouble["blocked"] is None
    elif fault == "hangs" and calls:
        assert elapsed < clean_elapsed + HOOK_TIMEOUT + 5
        if hook not in AFTER_RESULT:
            blocked = "plugin faulty is blocked: did not process its events within hook_timeout"
            assert blocked in " ".join(result.problems)
        assert trouble is not None
        assert "hook_timeout" in trouble["blocked"]
    else:
        assert result.plugin_errors == {}
        assert trouble is None
