"""Memory packs: export, import, garbage lines, importing twice."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from rlm_core.memory import (
    MemoryDraft,
    MemoryStoreError,
    SQLiteMemoryStore,
    export_pack,
    import_pack,
)


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_then_import_into_another_database_keeps_everything(
    corpus_store: SQLiteMemoryStore, tmp_path: Path
) -> None:
    pack = tmp_path / "pack.jsonl"
    assert export_pack(corpus_store, pack, ontology=None) == 10
    header, *items = lines(pack)
    assert header["memory_pack"] == 1
    assert len(items) == 10
    assert set(items[0]) == {
        "id", "title", "description", "content", "tags", "scope", "source", "run_id",
        "created_at", "access_count", "success_count", "failure_count",
    }  # fmt: skip

    with SQLiteMemoryStore(tmp_path / "other.db") as other:
        report = import_pack(other, pack)
        assert (report.added, report.duplicates, report.problems) == (10, 0, ())
        assert list(other.records()) == list(corpus_store.records())
        # the FTS index covers imported memories
        assert other.retrieve("ancestors of a concept", 1)[0].title == "Walk broader concepts"


def test_importing_twice_adds_nothing(corpus_store: SQLiteMemoryStore, tmp_path: Path) -> None:
    pack = tmp_path / "pack.jsonl"
    export_pack(corpus_store, pack, ontology=None)
    report = import_pack(corpus_store, pack)
    assert (report.added, report.duplicates) == (0, 10)
    assert corpus_store.stats().memories == 10


def test_export_by_ontology_takes_exactly_that_scope(
    corpus_store: SQLiteMemoryStore, tmp_path: Path
) -> None:
    pack = tmp_path / "skos.jsonl"
    assert export_pack(corpus_store, pack, ontology="skos") == 2
    header, *items = lines(pack)
    assert header["ontology"] == "skos"
    assert {item["scope"] for item in items} == {"skos"}


def test_export_to_an_open_file(corpus_store: SQLiteMemoryStore) -> None:
    out = io.StringIO()
    assert export_pack(corpus_store, out, ontology="foaf") == 2
    assert len(out.getvalue().splitlines()) == 3


GARBAGE_PACK = b"\n".join(
    [
        b'{"memory_pack": 1}',
        b'{"title": "Good one", "content": "Do this.", "tags": ["A", "b"], "scope": "prov"}',
        b"this is not json",
        b"[1, 2, 3]",
        b'{"title": "", "content": "no title"}',
        b'{"title": "No content"}',
        b'{"title": "Bad tags", "content": "x", "tags": "sparql"}',
        b'{"title": "Bad count", "content": "x", "access_count": -1}',
        b'{"title": "Bad date", "content": "x", "created_at": "yesterday"}',
        b'{"title": "Bad scope", "content": "x", "scope": 7}',
        b"\xff\xfe not utf-8",
        b'{"title": "Truncated", "cont',
        b"",
        b'{"title": "Good two", "content": "Do that.", "id": "wrong-id", "extra": true}',
        b'{"title": "good  ONE", "content": "do this."}',
    ]
)


def test_a_pack_with_garbage_lines_imports_the_good_ones_and_names_the_bad(
    store: SQLiteMemoryStore, tmp_path: Path
) -> None:
    pack = tmp_path / "garbage.jsonl"
    pack.write_bytes(GARBAGE_PACK)
    report = import_pack(store, pack)
    assert (report.added, report.duplicates) == (2, 1)
    assert [problem.line for problem in report.problems] == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    messages = [problem.message for problem in report.problems]
    assert messages[0].startswith("not JSON")
    assert "expected a JSON object" in messages[1]
    assert "'title' must be a non-empty string" in messages[2]
    assert "'content' must be a non-empty string" in messages[3]
    assert "'tags' must be a list of strings" in messages[4]
    assert "'access_count' must be an integer from 0 to" in messages[5]
    assert "'created_at' is not an ISO 8601 timestamp" in messages[6]
    assert "'scope' must be a string or null" in messages[7]
    assert report.source == str(pack)
    good = {record.title: record for record in store.records()}
    assert set(good) == {"Good one", "Good two"}
    assert good["Good one"].tags == ("a", "b")
    assert good["Good one"].scope == "prov"
    assert good["Good two"].memory_id != "wrong-id"
    assert good["Good two"].source == "import"


def test_a_pack_of_an_unknown_version_is_refused(store: SQLiteMemoryStore, tmp_path: Path) -> None:
    pack = tmp_path / "future.jsonl"
    pack.write_text('{"memory_pack": 2}\n{"title": "t", "content": "c"}\n')
    with pytest.raises(MemoryStoreError, match=r"future\.jsonl:1: memory pack version 2"):
        import_pack(store, pack)


def test_a_missing_pack_is_a_clear_error(store: SQLiteMemoryStore, tmp_path: Path) -> None:
    with pytest.raises(MemoryStoreError, match=r"cannot open .*nothing\.jsonl"):
        import_pack(store, tmp_path / "nothing.jsonl")


def test_a_large_pack_is_imported_in_batches(store: SQLiteMemoryStore, tmp_path: Path) -> None:
    pack = tmp_path / "large.jsonl"
    records = [{"title": f"strategy {i}", "content": f"step {i}"} for i in range(2500)]
    pack.write_text("\n".join(json.dumps(record) for record in records))
    report = import_pack(store, pack)
    assert (report.added, report.duplicates, report.problems) == (2500, 0, ())
    store.add_memories([MemoryDraft("strategy 7", "", "step 7")], run_id=None, scope=None)
    assert store.stats().memories == 2500
