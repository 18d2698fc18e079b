"""SQLiteMemoryStore on real files: schema, migrations, retrieval, dedup, usage and counts."""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rlm_core.errors import RLMError
from rlm_core.memory import (
    SCHEMA_VERSION,
    MemoryDraft,
    MemoryStoreError,
    SQLiteMemoryStore,
    Verdict,
    memory_id,
)

STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
AGENTS_QUESTION = "Which properties link prov:Activity to agents?"


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def columns(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]


def counts(path: Path, memory: str) -> tuple[int, int, int]:
    with sqlite3.connect(path) as db:
        row = db.execute(
            "SELECT access_count, success_count, failure_count FROM memories WHERE id = ?",
            (memory,),
        ).fetchone()
    access, success, failure = row
    return access, success, failure


def draft(title: str, content: str = "some content", tags: tuple[str, ...] = ()) -> MemoryDraft:
    return MemoryDraft(title, "", content, tags)


# -- schema and migrations -------------------------------------------------------------------


def test_a_new_database_has_every_table_wal_and_the_current_version(
    store: SQLiteMemoryStore, db_path: Path
) -> None:
    assert store.migrated_from == 0
    assert {
        "schema_migrations",
        "runs",
        "trajectories",
        "judgments",
        "memories",
        "memory_usage",
        "memory_fts",
    } <= tables(db_path)
    assert {"id", "title", "description", "content", "source", "tags", "scope", "run_id"} <= set(
        columns(db_path, "memories")
    )
    assert {"access_count", "success_count", "failure_count", "created_at"} <= set(
        columns(db_path, "memories")
    )
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = [row[0] for row in db.execute("SELECT version FROM schema_migrations")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_reopening_a_current_database_migrates_nothing(db_path: Path) -> None:
    SQLiteMemoryStore(db_path).close()
    with SQLiteMemoryStore(db_path) as again:
        assert again.migrated_from == SCHEMA_VERSION


def test_foreign_keys_are_enforced(store: SQLiteMemoryStore) -> None:
    [added] = store.add_memories([draft("a")], run_id=None, scope=None)
    [item] = store.retrieve("a content", 1)
    assert item.memory_id == added.memory_id
    with pytest.raises(MemoryStoreError, match="FOREIGN KEY"):
        store.record_usage("no-such-run", [item])


# The schema of version 1, written by hand as an older rlm-core created it: no FTS index, no
# trajectories or judgments, no run outcome.
V1_SCHEMA = """
CREATE TABLE schema_migrations (
    version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL);
INSERT INTO schema_migrations VALUES (1, 'runs, memories and memory usage', '2025-12-01T00:00:00');
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, question TEXT NOT NULL, ontology TEXT, started_at TEXT NOT NULL);
CREATE TABLE memories (
    pk INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '', content TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '[]',
    scope TEXT, source TEXT NOT NULL, run_id TEXT,
    access_count INTEGER NOT NULL DEFAULT 0, success_count INTEGER NOT NULL DEFAULT 0,
    failure_count INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL);
CREATE TABLE memory_usage (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    memory_id TEXT NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
    rank INTEGER NOT NULL, score REAL NOT NULL, PRIMARY KEY (run_id, memory_id));
"""


def make_v1_database(path: Path) -> str:
    """A version-1 database with one run, two memories and one use; returns a memory id."""
    agents = memory_id("Link a class to agents", "Find properties whose range is prov:Agent.")
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    db.execute("INSERT INTO runs VALUES ('old-run', 'what links X to agents', 'prov', '2025')")
    db.executemany(
        "INSERT INTO memories (id, title, description, content, tags, scope, source, run_id, "
        "access_count, success_count, failure_count, created_at) "
        "VALUES (?, ?, '', ?, ?, 'prov', 'extracted', 'old-run', ?, ?, 0, '2025-12-01T00:00:00')",
        [
            (
                agents,
                "Link a class to agents",
                "Find properties whose range is prov:Agent.",
                '["agents"]',
                4,
                3,
            ),
            ("0123456789abcdef", "Count things", "Use COUNT in SPARQL.", '["sparql"]', 0, 0),
        ],
    )
    db.execute("INSERT INTO memory_usage VALUES ('old-run', ?, 1, 2.5)", (agents,))
    db.commit()
    db.close()
    return agents


def test_a_version_1_database_is_migrated_on_open_and_keeps_its_data(db_path: Path) -> None:
    agents = make_v1_database(db_path)
    assert "memory_fts" not in tables(db_path)

    with SQLiteMemoryStore(db_path) as store:
        assert store.migrated_from == 1
        # the FTS index was built over the memories that were already there
        [hit] = store.retrieve("properties agents", 5, tags=["agents"])
        assert hit.memory_id == agents
        assert hit.tags == ("agents",)
        assert counts(db_path, agents) == (4, 3, 0)
        # the tables and column of version 2 work
        store.record_judgment("old-run", Verdict(False, "wrong", 0.8))
        assert store.update_outcome("old-run", False) == 1
        store.record_trajectory("old-run", [{"code": "print(1)"}])
        stats = store.stats()

    assert counts(db_path, agents) == (4, 3, 1)
    assert stats.memories == 2
    assert stats.judged_failure == 1
    assert "outcome" in columns(db_path, "runs")
    with sqlite3.connect(db_path) as db:
        versions = [row[0] for row in db.execute("SELECT version FROM schema_migrations")]
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert versions == [1, 2]


def test_a_database_from_a_newer_rlm_core_is_refused(db_path: Path) -> None:
    SQLiteMemoryStore(db_path).close()
    with sqlite3.connect(db_path) as db:
        db.execute("INSERT INTO schema_migrations VALUES (99, 'from the future', '2030-01-01')")
    with pytest.raises(MemoryStoreError) as caught:
        SQLiteMemoryStore(db_path)
    message = str(caught.value)
    assert str(db_path) in message
    assert "99" in message
    assert "newer" in message


def test_a_corrupt_file_is_a_clear_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "rlm-memory.db"
    path.write_bytes(random.Random(7).randbytes(8192))
    with pytest.raises(MemoryStoreError) as caught:
        SQLiteMemoryStore(path)
    assert str(path) in str(caught.value)
    assert "file is not a database" in str(caught.value)
    assert isinstance(caught.value, RLMError)  # the CLI prints it on one line, exit code 2


def test_a_text_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(MemoryStoreError, match=r"notes\.db"):
        SQLiteMemoryStore(path)


def test_another_applications_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(MemoryStoreError, match="not an rlm memory database"):
        SQLiteMemoryStore(path)
    assert tables(path) == {"customers"}


def test_opening_without_create_needs_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(MemoryStoreError, match=r"no memory database at .*missing\.db"):
        SQLiteMemoryStore(path, create=False)
    assert not path.exists()


# -- retrieval -------------------------------------------------------------------------------


def test_the_best_matching_memory_comes_first_with_a_higher_score(
    corpus_store: SQLiteMemoryStore,
) -> None:
    items = corpus_store.retrieve(AGENTS_QUESTION, 3)
    assert items[0].title == "Find the properties that link a class to agents"
    assert [item.rank for item in items] == [1, 2, 3]
    assert items[0].score > items[1].score >= items[2].score > 0


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How many activities are there?", "Count the instances of a class"),
        ("what are the ancestors of this concept", "Walk broader concepts"),
        ("where does the thesaurus start: top concepts?", "Find a concept scheme's top concepts"),
        ("What was this entity derived from?", "Trace what an entity was derived from"),
    ],
)
def test_each_kind_of_question_finds_its_strategy(
    corpus_store: SQLiteMemoryStore, question: str, expected: str
) -> None:
    assert corpus_store.retrieve(question, 1)[0].title == expected


def test_retrieval_returns_at_most_k_and_nothing_for_unrelated_text(
    corpus_store: SQLiteMemoryStore,
) -> None:
    assert len(corpus_store.retrieve("sparql", 2)) == 2
    assert corpus_store.retrieve("zebra xylophone", 5) == []
    assert corpus_store.retrieve("sparql", 0) == []


def test_the_ontology_filter_keeps_that_scope_and_unscoped_memories(
    corpus_store: SQLiteMemoryStore,
) -> None:
    everything = corpus_store.retrieve("agents sparql", 20)
    assert {item.scope for item in everything} == {"prov", "foaf", "skos", None}
    for_prov = corpus_store.retrieve("agents sparql", 20, ontology="prov")
    assert {item.scope for item in for_prov} == {"prov", None}
    elsewhere = corpus_store.retrieve("agents sparql", 20, ontology="unknown")
    assert elsewhere
    assert all(item.scope is None for item in elsewhere)


def test_the_tag_filter_keeps_memories_with_every_tag(corpus_store: SQLiteMemoryStore) -> None:
    tagged = corpus_store.retrieve("query concepts agents", 20, tags=["sparql"])
    assert tagged
    assert all("sparql" in item.tags for item in tagged)
    both = corpus_store.retrieve("query concepts agents", 20, tags=["SPARQL", "hierarchy"])
    assert [item.title for item in both] == ["Walk broader concepts"]
    assert corpus_store.retrieve("agents", 20, tags=["no-such-tag"]) == []


def test_filters_combine(corpus_store: SQLiteMemoryStore) -> None:
    items = corpus_store.retrieve("agents sparql", 20, ontology="foaf", tags=["sparql"])
    assert {item.title for item in items} == {
        "Find the agents a person knows",
        "Check the SPARQL query returns rows before answering",
    }


def test_ties_and_reruns_are_deterministic(corpus_store: SQLiteMemoryStore) -> None:
    first = corpus_store.retrieve("sparql hierarchy agents", 10)
    assert corpus_store.retrieve("sparql hierarchy agents", 10) == first


# -- adding, dedup -----------------------------------------------------------------------------


def test_a_memory_is_stored_once_whatever_its_case_and_spacing(
    store: SQLiteMemoryStore, db_path: Path
) -> None:
    [first] = store.add_memories(
        [MemoryDraft("Count the instances", "how many", "Use  COUNT(?s).", ("Sparql", " count "))],
        run_id="r1",
        scope="prov",
    )
    again = store.add_memories(
        [
            MemoryDraft("count the   INSTANCES", "other words", "use count(?s).", ()),
            MemoryDraft("Something new", "", "Other content."),
            MemoryDraft("Something new", "", "Other content."),
        ],
        run_id="r2",
        scope="foaf",
    )
    assert first.duplicate is False
    assert first.memory_id == memory_id("Count the instances", "Use COUNT(?s).")
    assert [(result.memory_id, result.duplicate) for result in again] == [
        (first.memory_id, True),
        (again[1].memory_id, False),
        (again[1].memory_id, True),
    ]
    records = list(store.records())
    assert len(records) == 2
    stored = records[0]
    assert (stored.scope, stored.run_id, stored.source) == ("prov", "r1", "extracted")
    assert stored.tags == ("sparql", "count")


def test_a_memory_needs_a_title_and_content(store: SQLiteMemoryStore) -> None:
    with pytest.raises(ValueError, match="title and a content"):
        store.add_memories([draft("  ", "content")], run_id=None, scope=None)
    assert list(store.records()) == []


def test_records_are_read_in_pages_oldest_first(store: SQLiteMemoryStore) -> None:
    drafts = [draft(f"strategy {i}", f"content {i}") for i in range(2500)]
    store.add_memories(drafts[:1200], run_id=None, scope="a")
    store.add_memories(drafts[1200:], run_id=None, scope="b")
    titles = [record.title for record in store.records()]
    assert titles == [d.title for d in drafts]
    assert len(list(store.records(ontology="a"))) == 1200


# -- usage and counts --------------------------------------------------------------------------


def used_by_run(store: SQLiteMemoryStore, run_id: str, question: str) -> list[str]:
    store.record_run(run_id, question=question, ontology="prov", started_at=STARTED)
    items = store.retrieve(question, 2, ontology="prov")
    store.record_usage(run_id, items)
    return [item.memory_id for item in items]


def test_usage_counts_one_access_per_run_and_memory(
    corpus_store: SQLiteMemoryStore, db_path: Path
) -> None:
    first = used_by_run(corpus_store, "run-1", AGENTS_QUESTION)
    top = first[0]
    assert counts(db_path, top) == (1, 0, 0)
    # recording the same run again changes nothing
    corpus_store.record_run("run-1", question="other", ontology=None, started_at=STARTED)
    corpus_store.record_usage("run-1", corpus_store.retrieve(AGENTS_QUESTION, 2, ontology="prov"))
    assert counts(db_path, top) == (1, 0, 0)
    used_by_run(corpus_store, "run-2", AGENTS_QUESTION)
    assert counts(db_path, top) == (2, 0, 0)
    with sqlite3.connect(db_path) as db:
        rows = db.execute(
            "SELECT run_id, rank, score FROM memory_usage WHERE memory_id = ? ORDER BY run_id",
            (top,),
        ).fetchall()
        question = db.execute("SELECT question FROM runs WHERE run_id = 'run-1'").fetchone()[0]
    assert [(run, rank) for run, rank, _ in rows] == [("run-1", 1), ("run-2", 1)]
    assert all(score > 0 for _, _, score in rows)
    assert question == AGENTS_QUESTION


def test_the_outcome_credits_or_debits_the_memories_the_run_used(
    corpus_store: SQLiteMemoryStore, db_path: Path
) -> None:
    used = used_by_run(corpus_store, "run-1", AGENTS_QUESTION)
    assert len(used) == 2
    assert corpus_store.update_outcome("run-1", True) == 2
    assert [counts(db_path, m) for m in used] == [(1, 1, 0)] * 2
    # the same outcome again is a no-op
    assert corpus_store.update_outcome("run-1", True) == 0
    assert [counts(db_path, m) for m in used] == [(1, 1, 0)] * 2
    # a changed verdict moves the count instead of adding one
    assert corpus_store.update_outcome("run-1", False) == 2
    assert [counts(db_path, m) for m in used] == [(1, 0, 1)] * 2
    # unknown takes the earlier outcome back and adds nothing
    assert corpus_store.update_outcome("run-1", None) == 2
    assert [counts(db_path, m) for m in used] == [(1, 0, 0)] * 2
    # an unknown outcome of a fresh run, or an unknown run, changes nothing
    used_by_run(corpus_store, "run-2", AGENTS_QUESTION)
    assert corpus_store.update_outcome("run-2", None) == 0
    assert corpus_store.update_outcome("no-such-run", True) == 0
    untouched = [
        memory for memory in (r.memory_id for r in corpus_store.records()) if memory not in used
    ]
    assert all(counts(db_path, m) == (0, 0, 0) for m in untouched)


def test_trajectories_and_judgments_are_kept_per_run(
    store: SQLiteMemoryStore, db_path: Path
) -> None:
    store.record_run("r", question="q", ontology=None, started_at=datetime(2026, 1, 1))
    store.record_trajectory("r", [{"reasoning": "look", "code": "print(1)", "output": "1"}])
    store.record_trajectory("r", [{"reasoning": "again", "code": "x", "when": STARTED}])
    store.record_judgment("r", Verdict(None, "unparseable", None))
    store.record_judgment("r", Verdict(True, "correct", 0.75))
    with sqlite3.connect(db_path) as db:
        steps = json.loads(db.execute("SELECT steps FROM trajectories").fetchone()[0])
        judgment = db.execute("SELECT success, reason, confidence FROM judgments").fetchall()
        started = db.execute("SELECT started_at FROM runs").fetchone()[0]
    assert steps == [{"reasoning": "again", "code": "x", "when": str(STARTED)}]
    assert judgment == [(1, "correct", 0.75)]
    assert started == "2026-01-01T00:00:00+00:00"  # naive datetimes are taken as UTC


def test_stats_count_and_rank_memories(corpus_store: SQLiteMemoryStore) -> None:
    used = used_by_run(corpus_store, "run-1", AGENTS_QUESTION)
    corpus_store.update_outcome("run-1", True)
    corpus_store.record_judgment("run-1", Verdict(True, "ok", 0.9))
    [counting] = used_by_run(corpus_store, "run-2", "count instances")
    corpus_store.update_outcome("run-2", False)
    corpus_store.record_judgment("run-2", Verdict(False, "wrong", 0.6))
    used_by_run(corpus_store, "run-3", AGENTS_QUESTION)
    corpus_store.record_judgment("run-3", Verdict(None, "unparseable", None))

    stats = corpus_store.stats(top=3)
    assert (stats.memories, stats.runs) == (10, 3)
    assert stats.usages == 5
    assert (stats.judged_success, stats.judged_failure, stats.judged_unknown) == (1, 1, 1)
    assert stats.by_scope == {"prov": 4, "(any)": 2, "foaf": 2, "skos": 2}
    assert stats.most_used[0].memory_id == used[0]
    assert stats.most_used[0].access_count == 2
    assert len(stats.most_used) == 3
    best = stats.most_successful[0]
    assert best.memory_id in used
    assert best.success_rate == 1.0
    assert stats.most_successful[-1].memory_id == counting
    assert stats.most_successful[-1].success_rate == 0.0
    data = stats.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["most_successful"][0]["success_rate"] == 1.0


def test_memories_by_id_returns_the_stored_records_and_leaves_out_unknown_ids(
    corpus_store: SQLiteMemoryStore,
) -> None:
    every = {record.memory_id: record for record in corpus_store.records()}
    wanted = [*list(every)[:2], "not-a-stored-id", next(iter(every))]
    found = corpus_store.memories(wanted)
    assert found == {memory_id: every[memory_id] for memory_id in wanted[:2]}
    assert corpus_store.memories([]) == {}
