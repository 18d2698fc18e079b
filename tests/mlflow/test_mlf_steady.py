"""A process running many runs holds steady threads and file descriptors (issue 15): every
run's plugin manager builds its own trackers, and they must not each leave a worker behind."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from rlm_core import Settings, flush, run
from rlm_core.config import MemorySettings
from rlm_core.plugins import get_plugin_manager
from rlm_core.testing import scripted_step, write_cassette
from tests.mlflow.helpers import PROV

pytestmark = pytest.mark.slow


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to count fds")
def test_two_hundred_runs_with_every_built_in_tracker_hold_steady_threads_and_fds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cassette = write_cassette(
        tmp_path / "one-step.jsonl",
        [scripted_step("Answer.", "SUBMIT(answer='done', sparql='', evidence=[])")],
    )
    # Default selection: every available built-in tracker (jsonl, mlflow, memory_metrics).
    settings = Settings(memory=MemorySettings(enabled=False))
    on = {name for name, _ in get_plugin_manager(settings).list_name_plugin()}
    assert {"jsonl", "mlflow", "memory_metrics"} <= on
    seen: dict[int, tuple[int, int]] = {}
    for number in range(1, 201):
        result = run("q", PROV, model=f"scripted:{cassette}", config=settings)
        assert result.converged, result.error
        if number in (10, 200):
            # Settle this test's deliveries before counting; earlier tests of the session may
            # leave a helper of theirs waiting on a dead backend, so its answer is not ours.
            flush(60.0)
            seen[number] = (threading.active_count(), _open_fds())
    assert seen[200] == seen[10]
