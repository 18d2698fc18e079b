"""Two processes writing to one database at the default timeout never see "database is locked"."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

WRITES = 200

# Each writer opens the (not yet existing) database when told to go, so the two also race on
# creating and migrating it, then records a run, adds a memory, retrieves, records usage and an
# outcome per iteration: five write transactions each, interleaved with the other process.
WRITER = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from pathlib import Path
    from rlm_core.memory import MemoryDraft, SQLiteMemoryStore

    path, name, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    while not go.exists():
        time.sleep(0.001)
    store = SQLiteMemoryStore(path)
    for i in range(int(sys.argv[4])):
        run_id = f"{name}-{i}"
        store.record_run(run_id, question=f"q {i}", ontology="prov", started_at=datetime.now(UTC))
        store.add_memories(
            [MemoryDraft(f"{name} strategy {i}", "shared", f"alpha content {name} {i}")],
            run_id=run_id,
            scope="prov",
        )
        items = store.retrieve("alpha strategy shared", 3, ontology="prov")
        store.record_usage(run_id, items)
        store.update_outcome(run_id, i % 2 == 0)
    store.close()
    print("done", name)
    """
)


@pytest.mark.slow
def test_two_processes_write_concurrently_without_locking_errors(tmp_path: Path) -> None:
    db_path = tmp_path / "shared.db"
    go = tmp_path / "go"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db_path), name, str(go), str(WRITES)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("one", "two")
    ]
    time.sleep(0.5)  # both interpreters are up and polling
    go.touch()
    outputs = [writer.communicate(timeout=120) for writer in writers]
    for writer, (out, err) in zip(writers, outputs, strict=True):
        assert "locked" not in err
        assert writer.returncode == 0, err
        assert out.startswith("done")

    with sqlite3.connect(db_path) as db:
        memories = db.execute("SELECT COUNT(*) FROM memories").fetchone()[0]
        runs = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        usages = db.execute("SELECT COUNT(*) FROM memory_usage").fetchone()[0]
        accesses = db.execute("SELECT SUM(access_count) FROM memories").fetchone()[0]
        judged = db.execute(
            "SELECT SUM(success_count + failure_count), COUNT(*) FROM memories"
        ).fetchone()
        versions = db.execute("SELECT version FROM schema_migrations").fetchall()
    assert memories == 2 * WRITES
    assert runs == 2 * WRITES
    assert 2 * WRITES <= usages <= 3 * 2 * WRITES
    assert accesses == usages  # every use counted exactly once
    assert judged[0] == usages  # every run's outcome credited to each memory it used
    assert versions == [(1,), (2,)]  # migrated exactly once
