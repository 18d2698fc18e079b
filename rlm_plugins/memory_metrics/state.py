"""The plugin's own cross-run state: one row per run, one per retrieved memory, in SQLite.

A file of its own (``rlm-memory-metrics.db`` by default) rather than tables in the memory
database: runs without memory must be counted too (they are the baseline), and they never open
the memory database; and the memory database's schema belongs to :mod:`rlm_core.memory`.
``rlm memory report`` reads the file; :data:`STATE_VERSION` (SQLite's ``user_version``) tells it
which layout it is reading. Writes are one short ``BEGIN IMMEDIATE`` transaction per run, so
processes sharing the file queue instead of failing.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path

__all__ = ["STATE_VERSION", "RetrievalRow", "RunRow", "StateError", "write_run"]

STATE_VERSION = 1
_TIMEOUT = 10.0

_SCHEMA = (
    """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        started_at TEXT NOT NULL,
        ontology TEXT NOT NULL,
        question TEXT NOT NULL,
        memory_enabled INTEGER NOT NULL,
        retrieved INTEGER NOT NULL,
        used INTEGER,
        success INTEGER,
        confidence REAL,
        converged INTEGER NOT NULL,
        iterations INTEGER NOT NULL,
        llm_calls INTEGER NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        duration REAL NOT NULL,
        prompt_share REAL,
        error TEXT,
        metrics TEXT NOT NULL
    )""",
    "CREATE INDEX runs_ontology ON runs(ontology, started_at)",
    """CREATE TABLE retrievals (
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        memory_id TEXT NOT NULL,
        title TEXT NOT NULL,
        rank INTEGER NOT NULL,
        score REAL NOT NULL,
        used INTEGER,
        PRIMARY KEY (run_id, memory_id)
    )""",
    "CREATE INDEX retrievals_memory ON retrievals(memory_id)",
)


class StateError(Exception):
    """The state file cannot be used; the message names it."""


@dataclasses.dataclass(frozen=True)
class RetrievalRow:
    """One memory a run retrieved; ``used`` is None when its text could not be read."""

    memory_id: str
    title: str
    rank: int
    score: float
    used: bool | None


@dataclasses.dataclass(frozen=True)
class RunRow:
    """One finished run. ``success`` is the eval's grade when the run was graded (``rlm eval``),
    else the judge's verdict (None: not judged or unusable)."""

    run_id: str
    started_at: str
    ontology: str
    question: str
    memory_enabled: bool
    retrievals: tuple[RetrievalRow, ...]
    success: bool | None
    confidence: float | None
    converged: bool
    iterations: int
    llm_calls: int
    prompt_tokens: int
    completion_tokens: int
    duration: float
    prompt_share: float | None
    error: str | None
    metrics: Mapping[str, float]


def write_run(path: Path, row: RunRow) -> None:
    """Store the run (replacing an earlier row of the same run, e.g. from a replay)."""
    try:
        db = sqlite3.connect(path, timeout=_TIMEOUT, isolation_level=None)
    except sqlite3.Error as exc:
        raise StateError(f"cannot open memory metrics state {path}: {exc}") from None
    try:
        # WAL with NORMAL sync: a commit writes the log without an fsync (checkpoints sync), so
        # run_end stays at about a millisecond; a power cut may lose the last rows, never corrupt.
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("BEGIN IMMEDIATE")
        try:
            _ensure_schema(db, path)
            _insert(db, row)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        raise StateError(f"cannot write memory metrics state {path}: {exc}") from None
    finally:
        db.close()


def _ensure_schema(db: sqlite3.Connection, path: Path) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == STATE_VERSION:
        return
    if version > STATE_VERSION:
        raise StateError(
            f"{path} has memory metrics layout {version}, newer than this plugin writes "
            f"({STATE_VERSION}): upgrade rlm-core"
        )
    if db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
        raise StateError(f"{path} is an SQLite database but not a memory metrics state file")
    for statement in _SCHEMA:
        db.execute(statement)
    db.execute(f"PRAGMA user_version = {STATE_VERSION}")


def _insert(db: sqlite3.Connection, row: RunRow) -> None:
    used = [hit.used for hit in row.retrievals]
    db.execute(
        "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row.run_id,
            row.started_at,
            row.ontology,
            row.question,
            int(row.memory_enabled),
            len(row.retrievals),
            None if None in used else sum(map(bool, used)),
            _flag(row.success),
            row.confidence,
            int(row.converged),
            row.iterations,
            row.llm_calls,
            row.prompt_tokens,
            row.completion_tokens,
            row.duration,
            row.prompt_share,
            row.error,
            json.dumps(dict(row.metrics), sort_keys=True),
        ),
    )
    db.execute("DELETE FROM retrievals WHERE run_id = ?", (row.run_id,))
    db.executemany(
        "INSERT INTO retrievals VALUES (?, ?, ?, ?, ?, ?)",
        [
            (row.run_id, hit.memory_id, hit.title, hit.rank, hit.score, _flag(hit.used))
            for hit in row.retrievals
        ],
    )


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)
