"""docs/examples/slow_http_backend.py: a slow collector never holds up the engine thread."""

from __future__ import annotations

import importlib.util
import sys
import time
import types
from pathlib import Path

import pytest

from rlm_core import run
from rlm_core._conformance import check_plugin
from rlm_core._demo import DEMO_CASSETTE, DEMO_ONTOLOGY, DEMO_QUESTION
from tests.authoring.helpers import EXAMPLES


@pytest.fixture(scope="module")
def example() -> types.ModuleType:
    """The example file, imported as the module ``slow_http_backend``."""
    spec = importlib.util.spec_from_file_location(
        "slow_http_backend", EXAMPLES / "slow_http_backend.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def quiet_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("no_proxy", "127.0.0.1")


def test_the_shipper_passes_the_conformance_kit_against_a_slow_collector(
    example: types.ModuleType,
) -> None:
    with example.slow_collector(delay=0.2) as (url, received):
        shipper = example.HttpEventShipper(url, batch_size=50)
        report = check_plugin(shipper, flush_timeout=30)
        report.raise_for_failures()
        assert shipper.stats.delivered == len(received) > 0
        assert shipper.stats.dropped == shipper.stats.failed == 0


def test_a_run_does_not_wait_for_the_collector(example: types.ModuleType) -> None:
    with example.slow_collector(delay=0.5) as (url, received):
        shipper = example.HttpEventShipper(url, batch_size=5)
        started = time.perf_counter()
        result = run(
            DEMO_QUESTION,
            DEMO_ONTOLOGY,
            model=f"scripted:{DEMO_CASSETTE}",
            trackers=[],
            plugins=[shipper],
        )
        ran = time.perf_counter() - started
        batches = -(-shipper.stats.submitted // 5)
        assert batches >= 3
        assert ran < batches * 0.5, "the run took as long as shipping its events"
        assert shipper.flush(timeout=30)
    assert [event["run_id"] for event in received] == [result.run_id] * len(received)
    assert received[0]["event"] == "run_start"
    assert received[-1]["event"] == "run_end"


def test_a_full_queue_drops_and_counts(example: types.ModuleType) -> None:
    with example.slow_collector(delay=0.3) as (url, received):
        shipper = example.HttpEventShipper(url, batch_size=1, max_queue=2)
        run(
            DEMO_QUESTION,
            DEMO_ONTOLOGY,
            model=f"scripted:{DEMO_CASSETTE}",
            trackers=[],
            plugins=[shipper],
        )
        assert shipper.flush(timeout=30)
        stats = shipper.stats
    assert stats.dropped > 0
    assert stats.delivered == len(received)
    assert stats.submitted == stats.delivered + stats.dropped


def test_the_example_runs_as_a_script(
    example: types.ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    example.main()
    printed = capsys.readouterr().out
    assert "flushed: True" in printed
    assert "dropped=0" in printed
