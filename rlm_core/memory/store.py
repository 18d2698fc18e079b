"""``SQLiteMemoryStore``: procedural memory in one SQLite file, searched with FTS5 and BM25.

Several processes may share the file: it runs in WAL mode, every write is one
``BEGIN IMMEDIATE`` transaction (so a writer waits for the lock up front instead of failing when
it upgrades a read lock), and SQLite's busy timeout makes it wait rather than fail.

Retrieval scores are ``-bm25()`` with column weights (title 3, description 2, tags 2, content 1):
positive, higher is better, comparable only within one query.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rlm_core.memory.base import (
    AddResult,
    MemoryDraft,
    MemoryRecord,
    MemoryStats,
    MemoryStoreError,
    MemoryUse,
    RetrievedItem,
    Verdict,
    memory_id,
    normalize_tags,
)
from rlm_core.memory.query import fts_query
from rlm_core.memory.schema import SCHEMA_VERSION, migrate, require_fts5, use_wal

__all__ = ["DEFAULT_TIMEOUT", "SQLiteMemoryStore"]

DEFAULT_TIMEOUT = 10.0
"""Seconds a writer waits for another process's write to finish before giving up."""

_BM25_WEIGHTS = (3.0, 2.0, 2.0, 1.0)  # title, description, tags, content: as memory_fts columns
_PAGE = 1000
_IDS_PER_QUERY = 500  # under SQLite's oldest limit of 999 bound parameters
_RECORD_COLUMNS = (
    "id, title, description, content, tags, scope, source, run_id, created_at, "
    "access_count, success_count, failure_count"
)
_USE_COLUMNS = "id, title, scope, access_count, success_count, failure_count"


class SQLiteMemoryStore:
    """A :class:`~rlm_core.memory.base.MemoryStore` in the SQLite file ``path``.

    The file is created (``create=True``) or must exist; an older schema is migrated on open
    (``migrated_from`` says from which version; 0 for a new file). One instance may be shared by
    threads; each process opens its own.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, create: bool = True, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.path = str(path)
        if not create and not Path(self.path).is_file():
            raise MemoryStoreError(
                f"no memory database at {self.path} (the first run with memory enabled creates "
                "it, and so does importing a pack)"
            )
        require_fts5()
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise MemoryStoreError(f"cannot open memory database {self.path}: {exc}") from None
        try:
            self._db.execute("PRAGMA foreign_keys = ON")
            use_wal(self._db, timeout)
            # WAL's recommended pairing: still consistent after a crash, fewer fsyncs; a power
            # cut may lose the last transactions, which for memory is a fair trade.
            self._db.execute("PRAGMA synchronous = NORMAL")
            self.migrated_from = migrate(self._db, self.path)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise MemoryStoreError(f"cannot use memory database {self.path}: {exc}") from None
        except BaseException:
            self._db.close()
            raise

    def __enter__(self) -> SQLiteMemoryStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the database."""
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise MemoryStoreError(f"memory database {self.path}: {exc}") from None

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so concurrent writers queue instead of fail."""
        with self._reading() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    # -- retrieval -------------------------------------------------------------------------

    def retrieve(
        self, query: str, k: int, *, ontology: str | None = None, tags: Sequence[str] = ()
    ) -> list[RetrievedItem]:
        """The ``k`` memories that best match ``query``, best first.

        ``ontology`` keeps memories of that scope and unscoped ones (which apply everywhere);
        ``tags`` keeps memories carrying every one of them. Any text is a valid query.
        """
        match = fts_query(query)
        if match is None or k <= 0:
            return []
        sql = [
            "SELECT m.id, m.title, m.description, m.content, m.tags, m.scope,",
            f"  -bm25(memory_fts, {', '.join(map(str, _BM25_WEIGHTS))}) AS score",
            "FROM memory_fts JOIN memories AS m ON m.pk = memory_fts.rowid",
            "WHERE memory_fts MATCH ?",
        ]
        params: list[Any] = [match]
        if ontology is not None:
            sql.append("AND (m.scope = ? OR m.scope IS NULL)")
            params.append(ontology)
        for tag in normalize_tags(tags):
            sql.append("AND EXISTS (SELECT 1 FROM json_each(m.tags) WHERE value = ?)")
            params.append(tag)
        sql.append("ORDER BY score DESC, m.pk LIMIT ?")
        params.append(k)
        with self._reading() as db:
            rows = db.execute("\n".join(sql), params).fetchall()
        return [
            RetrievedItem(
                memory_id=row[0],
                title=row[1],
                description=row[2],
                content=row[3],
                tags=tuple(json.loads(row[4])),
                scope=row[5],
                rank=rank,
                score=float(row[6]),
            )
            for rank, row in enumerate(rows, start=1)
        ]

    # -- runs ------------------------------------------------------------------------------

    def record_run(
        self, run_id: str, *, question: str, ontology: str | None, started_at: datetime
    ) -> None:
        """Remember that a run happened; recording it again changes nothing."""
        with self._writing() as db:
            db.execute(
                "INSERT INTO runs (run_id, question, ontology, started_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (run_id) DO NOTHING",
                (run_id, question, ontology, _timestamp(started_at)),
            )

    def record_usage(self, run_id: str, items: Sequence[RetrievedItem]) -> None:
        """Remember which memories the run was given; each counts one access, once per run."""
        with self._writing() as db:
            for item in items:
                inserted = db.execute(
                    "INSERT INTO memory_usage (run_id, memory_id, rank, score) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    (run_id, item.memory_id, item.rank, item.score),
                ).rowcount
                if inserted:
                    db.execute(
                        "UPDATE memories SET access_count = access_count + 1 WHERE id = ?",
                        (item.memory_id,),
                    )

    def record_trajectory(self, run_id: str, steps: Sequence[Mapping[str, Any]]) -> None:
        """Keep the run's steps as JSON (replacing an earlier record of the same run)."""
        text = json.dumps([dict(step) for step in steps], default=str, ensure_ascii=False)
        with self._writing() as db:
            db.execute(
                "INSERT OR REPLACE INTO trajectories (run_id, steps, recorded_at) VALUES (?, ?, ?)",
                (run_id, text, _now()),
            )

    def record_judgment(self, run_id: str, verdict: Verdict) -> None:
        """Keep the judge's verdict (replacing an earlier one); counts change in
        :meth:`update_outcome`."""
        success = None if verdict.success is None else int(verdict.success)
        with self._writing() as db:
            db.execute(
                "INSERT OR REPLACE INTO judgments (run_id, success, reason, confidence, judged_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (run_id, success, verdict.reason, verdict.confidence, _now()),
            )

    def update_outcome(self, run_id: str, success: bool | None) -> int:
        """Credit (success) or debit (failure) every memory the run used; None changes nothing.

        The outcome is kept with the run, so calling again with the same value is a no-op and a
        changed value moves the counts instead of adding to them. Returns the memories touched.
        """
        new = None if success is None else int(success)
        with self._writing() as db:
            row = db.execute("SELECT outcome FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None or row[0] == new:
                return 0
            old = row[0]
            db.execute("UPDATE runs SET outcome = ? WHERE run_id = ?", (new, run_id))
            return db.execute(
                "UPDATE memories SET success_count = success_count + ?, "
                "failure_count = failure_count + ? "
                "WHERE id IN (SELECT memory_id FROM memory_usage WHERE run_id = ?)",
                ((new == 1) - (old == 1), (new == 0) - (old == 0), run_id),
            ).rowcount

    # -- memories --------------------------------------------------------------------------

    def add_memories(
        self,
        drafts: Sequence[MemoryDraft],
        *,
        run_id: str | None,
        scope: str | None,
        source: str = "extracted",
    ) -> list[AddResult]:
        """Store new memories of ``scope`` learned by ``run_id``; duplicates are reported."""
        now = datetime.now(UTC)
        return self.add_records(
            [
                MemoryRecord(
                    memory_id=memory_id(draft.title, draft.content),
                    title=draft.title,
                    description=draft.description,
                    content=draft.content,
                    tags=normalize_tags(draft.tags),
                    scope=scope,
                    source=source,
                    run_id=run_id,
                    created_at=now,
                )
                for draft in drafts
            ]
        )

    def add_records(self, records: Sequence[MemoryRecord]) -> list[AddResult]:
        """Store complete records in one transaction, keeping provenance and counts.

        Text is trimmed and the id recomputed from title and content, so an edited pack line
        cannot bring in a wrong one.
        """
        results = []
        with self._writing() as db:
            for record in records:
                title, content = record.title.strip(), record.content.strip()
                if not title or not content:
                    raise ValueError(f"memory {record.title!r} needs a title and a content")
                identity = memory_id(title, content)
                inserted = db.execute(
                    f"INSERT INTO memories ({_RECORD_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                    (
                        identity,
                        title,
                        record.description.strip(),
                        content,
                        json.dumps(list(normalize_tags(record.tags)), ensure_ascii=False),
                        record.scope,
                        record.source,
                        record.run_id,
                        _timestamp(record.created_at),
                        record.access_count,
                        record.success_count,
                        record.failure_count,
                    ),
                ).rowcount
                results.append(AddResult(identity, title, duplicate=not inserted))
        return results

    def records(self, *, ontology: str | None = None) -> Iterator[MemoryRecord]:
        """Every stored memory, oldest first; only those of scope ``ontology`` when given.

        Read page by page, so a large store is never held in memory at once.
        """
        where, params = ("AND scope = ?", [ontology]) if ontology is not None else ("", [])
        last = 0
        while True:
            with self._reading() as db:
                rows = db.execute(
                    f"SELECT pk, {_RECORD_COLUMNS} FROM memories WHERE pk > ? {where} "
                    "ORDER BY pk LIMIT ?",
                    [last, *params, _PAGE],
                ).fetchall()
            for row in rows:
                yield _record(row[1:])
            if len(rows) < _PAGE:
                return
            last = rows[-1][0]

    def memories(self, ids: Sequence[str]) -> dict[str, MemoryRecord]:
        """The stored memories with these ids, by id; an id not stored is left out."""
        unique = list(dict.fromkeys(ids))
        found: dict[str, MemoryRecord] = {}
        for start in range(0, len(unique), _IDS_PER_QUERY):
            chunk = unique[start : start + _IDS_PER_QUERY]
            with self._reading() as db:
                rows = db.execute(
                    f"SELECT {_RECORD_COLUMNS} FROM memories "
                    f"WHERE id IN ({', '.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
            found.update((record.memory_id, record) for record in map(_record, rows))
        return found

    def stats(self, *, top: int = 5) -> MemoryStats:
        """Counts over the store and its ``top`` memories by use and by success rate."""
        with self._reading() as db:

            def count(sql: str) -> int:
                return int(db.execute(sql).fetchone()[0])

            judged = dict(
                db.execute(
                    "SELECT coalesce(success, -1), COUNT(*) FROM judgments GROUP BY 1"
                ).fetchall()
            )
            by_scope = {
                scope or "(any)": n
                for scope, n in db.execute(
                    "SELECT scope, COUNT(*) FROM memories GROUP BY scope ORDER BY 2 DESC, 1"
                )
            }
            most_used = db.execute(
                f"SELECT {_USE_COLUMNS} FROM memories WHERE access_count > 0 "
                "ORDER BY access_count DESC, pk LIMIT ?",
                (top,),
            ).fetchall()
            most_successful = db.execute(
                f"SELECT {_USE_COLUMNS} FROM memories WHERE success_count + failure_count > 0 "
                "ORDER BY CAST(success_count AS REAL) / (success_count + failure_count) DESC, "
                "success_count DESC, pk LIMIT ?",
                (top,),
            ).fetchall()
            return MemoryStats(
                path=self.path,
                schema_version=SCHEMA_VERSION,
                memories=count("SELECT COUNT(*) FROM memories"),
                runs=count("SELECT COUNT(*) FROM runs"),
                usages=count("SELECT COUNT(*) FROM memory_usage"),
                judged_success=judged.get(1, 0),
                judged_failure=judged.get(0, 0),
                judged_unknown=judged.get(-1, 0),
                by_scope=by_scope,
                most_used=tuple(_use(row) for row in most_used),
                most_successful=tuple(_use(row) for row in most_successful),
            )


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _record(row: Sequence[Any]) -> MemoryRecord:
    return MemoryRecord(
        memory_id=row[0],
        title=row[1],
        description=row[2],
        content=row[3],
        tags=tuple(json.loads(row[4])),
        scope=row[5],
        source=row[6],
        run_id=row[7],
        created_at=datetime.fromisoformat(row[8]),
        access_count=row[9],
        success_count=row[10],
        failure_count=row[11],
    )


def _use(row: Sequence[Any]) -> MemoryUse:
    return MemoryUse(
        memory_id=row[0],
        title=row[1],
        scope=row[2],
        access_count=row[3],
        success_count=row[4],
        failure_count=row[5],
    )
