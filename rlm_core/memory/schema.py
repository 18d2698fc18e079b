"""The memory database's schema as a list of forward migrations.

A new database runs every step in order; an older one runs the steps it lacks when it is opened;
a newer one is refused, because code that does not know its tables could damage them. Each step
is a tuple of single SQL statements (``executescript`` would commit half-way), applied inside one
``BEGIN IMMEDIATE`` transaction together with its row in ``schema_migrations``.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime

from rlm_core.memory.base import MemoryStoreError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "require_fts5", "use_wal"]

_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
)

# Version 1: runs, memories with their counts, and which run used which memory.
_V1 = (
    """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        question TEXT NOT NULL,
        ontology TEXT,
        started_at TEXT NOT NULL
    )""",
    # ``pk`` is an explicit INTEGER PRIMARY KEY so VACUUM keeps it: the full-text index of
    # version 2 points at it. ``run_id`` is provenance and may name a run of another database
    # (imported packs), hence no foreign key.
    """CREATE TABLE memories (
        pk INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        content TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '[]',
        scope TEXT,
        source TEXT NOT NULL,
        run_id TEXT,
        access_count INTEGER NOT NULL DEFAULT 0,
        success_count INTEGER NOT NULL DEFAULT 0,
        failure_count INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    )""",
    """CREATE TABLE memory_usage (
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        memory_id TEXT NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
        rank INTEGER NOT NULL,
        score REAL NOT NULL,
        PRIMARY KEY (run_id, memory_id)
    )""",
)

# Version 2: trajectories, judgments, the outcome credited to a run's memories, and the FTS5
# index (external content: the text lives once, in ``memories``; triggers keep the index in step).
_V2 = (
    """CREATE TABLE trajectories (
        run_id TEXT PRIMARY KEY REFERENCES runs(run_id) ON DELETE CASCADE,
        steps TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    )""",
    """CREATE TABLE judgments (
        run_id TEXT PRIMARY KEY REFERENCES runs(run_id) ON DELETE CASCADE,
        success INTEGER CHECK (success IN (0, 1)),
        reason TEXT NOT NULL,
        confidence REAL,
        judged_at TEXT NOT NULL
    )""",
    "ALTER TABLE runs ADD COLUMN outcome INTEGER CHECK (outcome IN (0, 1))",
    "CREATE INDEX memories_scope ON memories(scope)",
    "CREATE INDEX memory_usage_memory ON memory_usage(memory_id)",
    """CREATE VIRTUAL TABLE memory_fts USING fts5(
        title, description, tags, content,
        content='memories', content_rowid='pk', tokenize='porter unicode61'
    )""",
    """CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
        INSERT INTO memory_fts(rowid, title, description, tags, content)
        VALUES (new.pk, new.title, new.description, new.tags, new.content);
    END""",
    """CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN
        INSERT INTO memory_fts(memory_fts, rowid, title, description, tags, content)
        VALUES ('delete', old.pk, old.title, old.description, old.tags, old.content);
    END""",
    """CREATE TRIGGER memories_fts_update AFTER UPDATE OF title, description, tags, content
    ON memories BEGIN
        INSERT INTO memory_fts(memory_fts, rowid, title, description, tags, content)
        VALUES ('delete', old.pk, old.title, old.description, old.tags, old.content);
        INSERT INTO memory_fts(rowid, title, description, tags, content)
        VALUES (new.pk, new.title, new.description, new.tags, new.content);
    END""",
    "INSERT INTO memory_fts(memory_fts) VALUES ('rebuild')",
)

MIGRATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("runs, memories and memory usage", _V1),
    ("trajectories, judgments, run outcome and the FTS5 index", _V2),
)
"""``(description, statements)`` per version; version N is ``MIGRATIONS[N - 1]``."""

SCHEMA_VERSION = len(MIGRATIONS)


def require_fts5() -> None:
    """Fail with advice when this Python's SQLite was built without FTS5 (retrieval needs it)."""
    probe = sqlite3.connect(":memory:")
    try:
        probe.execute("CREATE VIRTUAL TABLE fts5_probe USING fts5(text)")
    except sqlite3.OperationalError:
        raise MemoryStoreError(
            f"the SQLite library of this Python (version {sqlite3.sqlite_version}) was built "
            "without FTS5, which memory retrieval needs: use a Python whose sqlite3 module has "
            "FTS5 (python.org and most distribution builds do), or disable memory with "
            "[memory] enabled = false"
        ) from None
    finally:
        probe.close()


def use_wal(connection: sqlite3.Connection, timeout: float) -> None:
    """Switch to write-ahead logging, so readers never block the writer.

    Changing the journal mode needs a moment alone with the file, which SQLite does not wait
    for: retry while another process holds it, up to ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            connection.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def migrate(connection: sqlite3.Connection, path: str) -> int:
    """Bring the database at ``path`` to :data:`SCHEMA_VERSION`; return the version found."""
    found = _version(connection, path)
    if found == SCHEMA_VERSION:
        return found
    if found > SCHEMA_VERSION:
        raise _too_new(path, found)
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute(_VERSION_TABLE)
        current = _version(connection, path)  # another process may have migrated meanwhile
        if current > SCHEMA_VERSION:
            raise _too_new(path, current)
        for version in range(current + 1, SCHEMA_VERSION + 1):
            description, statements = MIGRATIONS[version - 1]
            for statement in statements:
                connection.execute(statement)
            connection.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                (version, description, datetime.now(UTC).isoformat()),
            )
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return found


def _version(connection: sqlite3.Connection, path: str) -> int:
    """The schema version of the database; 0 for an empty one."""
    tables = {
        row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    if "schema_migrations" in tables:
        row = connection.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)
    if tables:
        raise MemoryStoreError(
            f"{path} is an SQLite database but not an rlm memory database "
            f"(it has tables {', '.join(sorted(tables)[:5])} and no schema_migrations)"
        )
    return 0


def _too_new(path: str, version: int) -> MemoryStoreError:
    return MemoryStoreError(
        f"{path} has memory schema version {version}, newer than this rlm-core knows "
        f"({SCHEMA_VERSION}): upgrade rlm-core to use it"
    )
