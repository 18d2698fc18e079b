"""A SQLite tracking store that is either absent or complete: created aside, then renamed.

MLflow builds a new store by running its schema migrations in place; a process killed halfway
leaves a file that every later open fails on ("duplicate column name"), and processes that
create the same store at once trip over each other's migrations. Here the first use of a store
file is serialized by a lock file beside it, the schema is built in a temporary file in the same
directory, and the finished file is renamed into place (atomic on one file system). A store that
still fails to open is named in one line with what to do.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["BrokenStoreError", "broken_store", "ensure_sqlite_store"]

_PARTIAL_SUFFIX = ".creating"
# Alembic keeps its migration context in module globals: one migration per process at a time.
_migrating = threading.Lock()


class BrokenStoreError(RuntimeError):
    """The store exists but cannot be used; the message says what to do."""


def ensure_sqlite_store(database: Path, artifact_root: str | None) -> bool:
    """Make sure ``database`` holds a complete MLflow store; True when this call created it.

    Serialized across processes by ``DATABASE.lock``; a partial file left by a killed creator
    is removed, never used.
    """
    if database.is_file():
        return False
    database.parent.mkdir(parents=True, exist_ok=True)
    with _migrating, _locked(database.with_name(database.name + ".lock")):
        if database.is_file():
            return False  # another process finished it while we waited
        for stale in database.parent.glob(f".{database.name}.*{_PARTIAL_SUFFIX}"):
            stale.unlink(missing_ok=True)
        partial = database.with_name(f".{database.name}.{os.getpid()}{_PARTIAL_SUFFIX}")
        try:
            _build(partial, artifact_root or (database.parent / "mlartifacts").as_uri())
            with open(partial, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(partial, database)
        finally:
            partial.unlink(missing_ok=True)
    return True


def _build(path: Path, artifact_root: str) -> None:
    """Run MLflow's migrations on a fresh file (MLflow's own store does the work)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(f"sqlite:///{path}", artifact_root)  # type: ignore[no-untyped-call]
    store.engine.dispose()


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def broken_store(database: Path, exc: BaseException) -> BrokenStoreError | None:
    """A one-line error naming ``database`` when ``exc`` (raised opening it) says the store
    itself is damaged (a schema MLflow cannot use), else None (busy, permissions, ...)."""
    module = type(exc).__module__.split(".")[0]
    text = " ".join(str(exc).split()).split(" [SQL:")[0]
    damaged = module in ("alembic", "sqlalchemy") or any(
        sign in text
        for sign in ("alembic", "duplicate column", "already exists", "no such table", "schema")
    )
    if not damaged or "database is locked" in text:
        return None
    return BrokenStoreError(
        f"MLflow store {database} is broken ({text[:120]}): move it aside "
        f"(mv {database} {database}.broken) and run again to get a new store; "
        "rlm replay can send runs from their JSONL logs into it"
    )
