"""The tracker does no file I/O on the engine thread: a writer thread stores the rows, a reader
thread reads the retrieved memories, and nothing handed to them is lost or misreported.

Which thread opens which SQLite file is seen through Python's ``sqlite3.connect`` audit event.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from rlm_core import RunInfo, RunResult, hookimpl
from rlm_core.testing import RecordingPlugin
from rlm_plugins.memory_metrics import MemoryMetricsTracker
from rlm_plugins.memory_metrics.measure import PREFIX
from tests.memory_metrics.helpers import (
    cassette,
    extracted,
    judged,
    memory_settings,
    scripted_run,
    seed,
    step,
    stored_rows,
    submit,
)

_connects: list[tuple[str, Path]] | None = None  # (thread name, file) while a test records


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "sqlite3.connect" and _connects is not None and isinstance(args[0], str | Path):
        _connects.append((threading.current_thread().name, Path(args[0]).resolve()))


@pytest.fixture
def connects() -> Any:
    """Every ``sqlite3.connect`` of the test: (thread name, file). An audit hook cannot be
    removed, so it is added once and records only while a test asks."""
    global _connects
    if not getattr(sys, "_rlm_mm_audit", False):
        sys.addaudithook(_audit)
        sys._rlm_mm_audit = True  # type: ignore[attr-defined]
    _connects = []
    yield _connects
    _connects = None


class HookThreads:
    """The thread each answering hook and run_end of the tracker's runs was called on."""

    def __init__(self) -> None:
        self.threads: dict[str, set[str]] = {"run_metrics": set(), "run_end": set()}

    @hookimpl
    def run_metrics(self, run: RunInfo, result: RunResult) -> None:
        self.threads["run_metrics"].add(threading.current_thread().name)

    @hookimpl
    def run_end(self, run: RunInfo, result: RunResult) -> None:
        self.threads["run_end"].add(threading.current_thread().name)


def test_rows_and_memories_are_read_and_written_off_the_engine_thread_and_none_is_lost(
    tmp_path: Path, connects: list[tuple[str, Path]]
) -> None:
    engine_db, tracker_db, state = tmp_path / "memory.db", tmp_path / "copy.db", tmp_path / "s.db"
    seed(engine_db)
    # The tracker reads a copy (same memories, same ids): every connect to it is the tracker's.
    shutil.copy(engine_db, tracker_db)
    tracker = MemoryMetricsTracker(db=str(tracker_db), state=str(state))
    threads, recorder = HookThreads(), RecordingPlugin()
    runs = 4
    results = [
        scripted_run(
            cassette(tmp_path / f"c{n}.jsonl", step(submit()), judged(True), extracted()),
            memory_settings(engine_db),
            tracker,
            threads,
            recorder,
        )
        for n in range(runs)
    ]
    assert all(result.converged for result in results)
    assert tracker.close(30.0), "every row was written"
    opened = list(connects)  # before this test reads the state file itself

    stats = tracker.stats
    assert (stats.submitted, stats.delivered, stats.failed, stats.dropped) == (runs, runs, 0, 0)
    stored = stored_rows(state, "SELECT run_id, retrieved FROM runs ORDER BY run_id")
    assert stored == sorted((result.run_id, 2) for result in results)
    engine_threads = threads.threads["run_metrics"] | threads.threads["run_end"]
    assert engine_threads
    writers = {name for name, path in opened if path == state.resolve()}
    readers = {name for name, path in opened if path == tracker_db.resolve()}
    assert writers == {"rlm-memory-metrics"}, "only the writer thread opens the state file"
    assert readers
    assert all(name.startswith("rlm-memory-metrics-read") for name in readers)
    assert not (writers | readers) & engine_threads
    # run_metrics still published the metrics that need the memories' text, read early.
    published = [call.kwargs["values"] for call in recorder.of("metrics")]
    assert len(published) == runs
    assert all(PREFIX + "used" in values for values in published)


def test_run_location_says_pending_until_the_row_is_stored(tmp_path: Path) -> None:
    """With the state file locked by another connection, run_end still returns and the row
    waits; once the lock is gone, flush stores it."""
    db, state = tmp_path / "memory.db", tmp_path / "s.db"
    seed(db)
    recorder = RecordingPlugin()
    first = MemoryMetricsTracker(db=str(db), state=str(state))
    scripted_run(
        cassette(tmp_path / "c.jsonl", step(submit()), judged(True), extracted()),
        memory_settings(db),
        first,
        recorder,
    )
    assert first.close(30.0)
    (run,) = [call.payload for call in recorder.of("run_start")]
    (result,) = [call.payload for call in recorder.of("run_end")]

    # The same run again, to a second tracker, while another connection holds the file.
    tracker = MemoryMetricsTracker(db=str(db), state=str(state))
    lock = sqlite3.connect(state, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        tracker.run_end(run=run, result=result)  # returns although the file is locked
        pending = tracker.run_location(run=run)
        assert pending is not None
        assert "being written" in pending.where
        assert tracker.stats.pending == 1
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert tracker.flush(30.0)
    stored = tracker.run_location(run=run)
    assert stored is not None
    assert stored.delivered
    assert "being written" not in stored.where
    assert stored_rows(state, "SELECT COUNT(*) FROM runs WHERE run_id = ?", run.run_id) == [(1,)]
    assert tracker.close(30.0)


def test_a_row_that_cannot_be_written_is_reported_with_its_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db, state = tmp_path / "memory.db", tmp_path / "not-state.db"
    seed(db)
    other = sqlite3.connect(state)
    other.execute("CREATE TABLE unrelated (x)")
    other.close()
    tracker, recorder = MemoryMetricsTracker(db=str(db), state=str(state)), RecordingPlugin()
    with caplog.at_level(logging.WARNING, "rlm.memory_metrics"):
        result = scripted_run(
            cassette(tmp_path / "c.jsonl", step(submit()), judged(True), extracted()),
            memory_settings(db),
            tracker,
            recorder,
        )
        assert tracker.close(30.0), "the row failed for good: nothing is left behind"
    assert (tracker.stats.delivered, tracker.stats.failed) == (0, 1)
    assert f"run {result.run_id} was not stored in {state}" in caplog.text
    (run,) = [call.payload for call in recorder.of("run_start")]
    location = tracker.run_location(run=run)
    assert location is not None
    assert not location.delivered
    assert "not a memory metrics state file" in location.where
