"""``rlm memory import`` takes hostile packs line by line, and stores no secret.

A pack line with an out-of-range number or an impossible date used to end the import with a
traceback and lose the whole batch, valid lines included; a pack's secrets went into the memory
database verbatim. Now each bad line is reported with its number, every valid line is stored,
and what is stored is redacted like everything else rlm-core writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlm_core.cli import main

OPENAI_KEY = "sk-proj-FAKEfakeFAKEfake0123456789abcdefXYZ"


def _line(title: str, **extra: object) -> str:
    return json.dumps({"title": title, "content": f"How to {title.lower()}.", **extra})


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in ("RLM_CONFIG", "OPENAI_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def test_out_of_range_lines_are_rejected_one_by_one_and_the_rest_is_stored(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = workdir / "hostile.jsonl"
    lines = [
        json.dumps({"memory_pack": 1}),
        _line("Count classes"),
        _line("Overflow", access_count=10**30),
        _line("Far future", created_at="9999-12-31T23:59:59-05:00"),
        _line("Walk subclasses"),
        _line("Long ago", created_at="0001-01-01T00:00:00"),
        _line("Negative", success_count=-1),
        _line("Find labels", created_at="2026-01-02T03:04:05+00:00", failure_count=2),
    ]
    pack.write_text("\n".join(lines) + "\n", encoding="utf-8")

    assert main(["memory", "import", str(pack)]) == 1
    captured = capsys.readouterr()
    assert "Imported 3 new memories" in captured.out
    assert "4 lines rejected" in captured.out
    rejected = [line for line in captured.err.splitlines() if line.startswith(f"{pack}:")]
    assert [int(line.split(":")[1]) for line in rejected] == [3, 4, 6, 7]
    assert "'access_count' must be an integer from 0 to" in rejected[0]
    assert "'created_at' must lie between 2000-01-01 and now" in rejected[1]
    assert "Traceback" not in captured.err

    assert main(["memory", "export", "-o", "-"]) == 0
    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()[1:]]
    titles = {item["title"] for item in exported}
    assert titles == {"Count classes", "Walk subclasses", "Find labels"}


def test_an_imported_pack_leaves_no_secret_in_the_memory_database(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MY_SERVICE_PASSWORD", "correct-horse-battery-staple-42")
    pack = workdir / "leaky.jsonl"
    lines = [
        json.dumps({"memory_pack": 1}),
        json.dumps(
            {
                "title": f"Call the API with {OPENAI_KEY}",
                "description": "Authorization: Bearer abcdefghijklmnop0123",
                "content": "Log in with the password correct-horse-battery-staple-42.",
                "tags": ["keys"],
            }
        ),
    ]
    pack.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["memory", "import", str(pack)]) == 0
    capsys.readouterr()
    data = b"".join(path.read_bytes() for path in workdir.glob("rlm-memory.db*"))
    for secret in (OPENAI_KEY, "abcdefghijklmnop0123", "correct-horse-battery-staple-42"):
        assert secret.encode() not in data, f"{secret[:8]}… is in the memory database"
    assert b"[REDACTED]" in data
