"""``rlm memory stats|search|export|import``, driven through the parser they register."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rlm_core.commands.memory import register
from rlm_core.errors import RLMError
from rlm_core.memory import MemoryDraft, MemoryStoreError, SQLiteMemoryStore

PACK = "\n".join(
    json.dumps(item)
    for item in [
        {"memory_pack": 1},
        {
            "title": "Find the properties that link a class to agents",
            "description": "What connects a class to agents",
            "content": "List properties whose domain is the class and whose range is an agent.",
            "tags": ["agents"],
            "scope": "prov",
        },
        {"title": "Count instances", "content": "Use COUNT in SPARQL.", "tags": ["sparql"]},
        {"title": "Walk broader concepts", "content": "Use skos:broader+.", "scope": "skos"},
    ]
)


pytestmark = pytest.mark.usefixtures("in_tmp")


def rlm_memory(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="rlm")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["memory", *argv])
    code: int = args.handler(args)
    return code


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    path = tmp_path / "pack.jsonl"
    path.write_text(PACK + "\n")
    return path


@pytest.mark.parametrize(
    "argv", [("stats",), ("search", "agents"), ("export", "-o", "out.jsonl")], ids=lambda a: a[0]
)
def test_a_missing_database_is_a_clear_error(tmp_path: Path, argv: tuple[str, ...]) -> None:
    with pytest.raises(MemoryStoreError, match=r"no memory database at rlm-memory\.db") as caught:
        rlm_memory(*argv)
    assert isinstance(caught.value, RLMError)  # rlm prints one line and exits with 2
    assert not (tmp_path / "rlm-memory.db").exists()
    assert not (tmp_path / "out.jsonl").exists()


def test_import_creates_the_database_and_reports(
    pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rlm_memory("import", str(pack)) == 0
    out = capsys.readouterr().out
    assert "Imported 3 new memories" in out
    assert "0 already stored, 0 lines rejected" in out
    assert (tmp_path / "rlm-memory.db").is_file()
    assert rlm_memory("import", str(pack)) == 0
    assert "Imported 0 new memories" in capsys.readouterr().out


def test_import_reports_bad_lines_with_their_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(PACK + "\n{oops\n" + json.dumps({"title": "no content"}) + "\n")
    assert rlm_memory("import", str(bad)) == 1
    captured = capsys.readouterr()
    assert "Imported 3 new memories" in captured.out
    assert "2 lines rejected" in captured.out
    assert f"{bad}:5: not JSON" in captured.err
    assert f"{bad}:6: 'content' must be a non-empty string" in captured.err


def test_search_ranks_with_scores(pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rlm_memory("import", str(pack))
    capsys.readouterr()
    assert rlm_memory("search", "which properties link a class to agents", "-k", "2") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["RANK", "SCORE", "ID", "TITLE"]
    assert out[1].split()[0] == "1"
    assert "Find the properties that link a class to agents [prov]" in out[1]


def test_search_json_filters_by_ontology_and_tag(
    pack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rlm_memory("import", str(pack))
    capsys.readouterr()
    assert rlm_memory("search", "count concepts agents", "--ontology", "skos", "--json") == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["query"] == "count concepts agents"
    assert {item["title"] for item in listing["items"]} == {
        "Count instances",
        "Walk broader concepts",
    }
    assert [item["rank"] for item in listing["items"]] == [1, 2]
    assert listing["items"][0]["score"] >= listing["items"][1]["score"]
    rlm_memory("search", "count concepts agents", "--tag", "sparql", "--json")
    [item] = json.loads(capsys.readouterr().out)["items"]
    assert item["tags"] == ["sparql"]


@pytest.mark.parametrize("query", ['"', "NEAR(a b)", "title:x", "*", "AND OR NOT", "(agents"])
def test_search_with_fts_syntax_never_errors(
    pack: Path, query: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rlm_memory("import", str(pack))
    assert rlm_memory("search", query) == 0


def test_stats(pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rlm_memory("import", str(pack))
    with SQLiteMemoryStore("rlm-memory.db") as store:
        store.record_run("r1", question="q", ontology="prov", started_at=datetime.now(UTC))
        store.record_usage("r1", store.retrieve("agents", 1))
        store.update_outcome("r1", True)
    capsys.readouterr()
    assert rlm_memory("stats") == 0
    out = capsys.readouterr().out
    assert "memories  3  ((any): 1, prov: 1, skos: 1)" in out
    assert "runs      1" in out
    assert "Most used:" in out
    assert "100%" in out
    assert rlm_memory("stats", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["memories"] == 3
    assert data["most_successful"][0]["success_rate"] == 1.0


def test_export_to_a_file_and_to_stdout(
    pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rlm_memory("import", str(pack))
    capsys.readouterr()
    assert rlm_memory("export", "-o", "all.jsonl") == 0
    assert capsys.readouterr().out == f"Exported 3 memories to {tmp_path / 'all.jsonl'}.\n"
    assert len((tmp_path / "all.jsonl").read_text().splitlines()) == 4
    for stdout in (["--output", "-"], []):  # '-' is standard output, and the default
        assert rlm_memory("export", *stdout, "--ontology", "prov") == 0
        captured = capsys.readouterr()
        header, item = (json.loads(line) for line in captured.out.splitlines())
        assert header["ontology"] == "prov"
        assert item["scope"] == "prov"
        assert captured.err == "Exported 1 memories to standard output.\n"


def test_export_into_a_missing_directory_is_refused_before_anything_is_written(
    pack: Path, tmp_path: Path
) -> None:
    rlm_memory("import", str(pack))
    with pytest.raises(
        RLMError, match=r"^--output out/all.jsonl: the directory out does not exist$"
    ):
        rlm_memory("export", "-o", "out/all.jsonl")
    assert not (tmp_path / "out").exists()


def test_the_database_comes_from_db_then_config_then_default(tmp_path: Path) -> None:
    SQLiteMemoryStore(tmp_path / "team.db").close()
    (tmp_path / "rlm.toml").write_text('[memory]\npath = "team.db"\n')
    assert rlm_memory("stats") == 0
    other = tmp_path / "other.toml"
    other.write_text('[memory]\npath = "elsewhere.db"\n')
    with pytest.raises(MemoryStoreError, match=r"elsewhere\.db"):
        rlm_memory("stats", "--config", str(other))
    with pytest.raises(MemoryStoreError, match=r"given\.db"):
        rlm_memory("stats", "--db", "given.db", "--config", str(other))


def test_a_bad_k_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        rlm_memory("search", "x", "-k", "0")
    assert caught.value.code == 2
    assert "expected a positive integer" in capsys.readouterr().err


def test_memory_without_a_subcommand_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert rlm_memory() == 2
    assert "stats" in capsys.readouterr().out


def test_the_memory_commands_do_not_import_dspy(tmp_path: Path) -> None:
    with SQLiteMemoryStore(tmp_path / "m.db") as store:
        store.add_memories([MemoryDraft("t", "", "c")], run_id=None, scope=None)
    script = (
        "import argparse, sys\n"
        "from rlm_core.commands.memory import register\n"
        "parser = argparse.ArgumentParser()\n"
        "register(parser.add_subparsers())\n"
        f"for argv in (['stats'], ['search', 't']):\n"
        f"    args = parser.parse_args(['memory', *argv, '--db', {str(tmp_path / 'm.db')!r}])\n"
        "    assert args.handler(args) == 0\n"
        "assert 'dspy' not in sys.modules, 'dspy was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
