"""The JSONL log of a real (scripted) run replays into exactly the events seen live."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlm_core import Settings, run
from rlm_core._demo import DEMO_CASSETTE, DEMO_ONTOLOGY, DEMO_QUESTION
from rlm_core.plugins import get_plugin_manager
from rlm_core.runlog import iter_hook_calls, read_log
from rlm_core.testing import capture_events
from rlm_plugins.jsonl import JsonlTracker


def test_replaying_the_demo_runs_log_yields_the_live_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with capture_events() as live:
        result = run(
            DEMO_QUESTION,
            DEMO_ONTOLOGY,
            model=f"scripted:{DEMO_CASSETTE}",
            trackers=[],
            plugins=[JsonlTracker()],
        )
    assert result.converged
    log = read_log(tmp_path / "runs" / f"{result.run_id}.jsonl")
    assert log.problems == []

    with capture_events() as replayed:
        manager = get_plugin_manager(Settings(), entry_points=[])
        for hook, kwargs in iter_hook_calls(log):
            getattr(manager.hook, hook)(**kwargs)

    assert replayed.calls == live.calls
    assert len(live.calls) > 10
