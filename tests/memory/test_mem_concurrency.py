"""Two processes writing to one database at the default timeout never see "database is locked".

The writers are made to overlap, not hoped to: each says it is ready (a file), the test starts
both at once, and each waits for the other's first write before doing its second half; the
database then shows their writes interleaved."""

from __future__ import annotations

import itertools
import sqlite3
import subprocess
import sys
import textwrap
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

    path, name, other, folder = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
    writes = int(sys.argv[5])

    def wait_for(flag):
        deadline = time.monotonic() + 60
        while not (folder / flag).exists():
            if time.monotonic() > deadline:
                sys.exit(f"{name}: gave up waiting for {flag}")
            time.sleep(0.001)

    (folder / f"{name}-ready").touch()
    wait_for("go")
    store = SQLiteMemoryStore(path)
    for i in range(writes):
        if i == writes // 2:
            wait_for(f"{other}-wrote")  # the other writer is writing too, from here on
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
        if i == 0:
            (folder / f"{name}-wrote").touch()
    store.close()
    print("done", name)
    """
)


@pytest.mark.slow
def test_two_processes_write_concurrently_without_locking_errors(tmp_path: Path) -> None:
    db_path = tmp_path / "shared.db"
    flags = tmp_path / "flags"
    flags.mkdir()
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db_path), name, other, str(flags), str(WRITES)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, other in (("one", "two"), ("two", "one"))
    ]
    ready = [flags / "one-ready", flags / "two-ready"]
    while not all(flag.exists() for flag in ready):  # both interpreters are up
        assert all(writer.poll() is None for writer in writers), "a writer died before starting"
    (flags / "go").touch()
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
        writers_in_order = [
            run_id.split("-")[0]
            for (run_id,) in db.execute("SELECT run_id FROM memories ORDER BY pk")
        ]
    assert memories == 2 * WRITES
    assert runs == 2 * WRITES
    assert 2 * WRITES <= usages <= 3 * 2 * WRITES
    assert accesses == usages  # every use counted exactly once
    assert judged[0] == usages  # every run's outcome credited to each memory it used
    assert versions == [(1,), (2,)]  # migrated exactly once
    # They overlapped: the insertion order switches between the writers, not only once.
    switches = sum(a != b for a, b in itertools.pairwise(writers_in_order))
    assert switches > 1, f"the writers took turns only {switches} time(s): they did not overlap"
