"""The results log of an eval directory: one JSON line per finished run, fsync'd as it ends.

``eval.json`` in the same directory says what the eval is (task file hash, conditions,
trials), so running again with the same ``--out`` resumes it: runs whose key is in the log are
skipped, the rest run. A line cut short by a crash is ignored (and counted), never fatal.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from rlm_core.errors import RLMError

__all__ = [
    "MANIFEST",
    "RESULTS",
    "EvalDirError",
    "ResultLog",
    "RunRecord",
    "read_manifest",
    "read_records",
    "write_manifest",
]

MANIFEST = "eval.json"
RESULTS = "results.jsonl"


class EvalDirError(RLMError):
    """An eval directory cannot be used (another eval's, or unreadable)."""


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """What the report needs of one finished run."""

    key: str
    condition: str
    task: str
    trial: int
    run_id: str
    success: bool
    score: float
    checks: list[dict[str, Any]]
    answer: str | None
    error: str | None
    iterations: int
    llm_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    duration: float
    locations: dict[str, str]

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


def write_manifest(directory: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write ``eval.json``, or check that the one there describes the same eval; return it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MANIFEST
    existing = read_manifest(directory, missing_ok=True)
    if existing is None:
        _write_durably(path, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        return manifest
    for field in ("tasks_sha256", "conditions", "trials"):
        if existing.get(field) != manifest.get(field):
            raise EvalDirError(
                f"{path}: {field} differs from this eval's ({existing.get(field)!r} there, "
                f"{manifest.get(field)!r} now): use another --out to start a new eval"
            )
    return existing


def read_manifest(directory: Path, *, missing_ok: bool = False) -> dict[str, Any] | None:
    path = directory / MANIFEST
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        if missing_ok:
            return None
        raise EvalDirError(f"{directory}: not an eval directory (no {MANIFEST})") from None
    except (OSError, orjson.JSONDecodeError) as exc:
        raise EvalDirError(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise EvalDirError(f"{path}: expected a JSON object")
    return data


def read_records(directory: Path) -> tuple[list[RunRecord], int]:
    """The finished runs (the last record of a key wins) and how many lines were unreadable."""
    records: dict[str, RunRecord] = {}
    bad = 0
    for line in _lines(directory / RESULTS):
        try:
            record = RunRecord.from_dict(orjson.loads(line))
        except (orjson.JSONDecodeError, TypeError):
            bad += 1
            continue
        records[record.key] = record
    return list(records.values()), bad


def _lines(path: Path) -> Iterator[bytes]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    yield from (line for line in data.splitlines() if line.strip())


class ResultLog:
    """Appends records, each written and fsync'd before :meth:`append` returns (thread-safe)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / RESULTS
        self._lock = threading.Lock()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if self.path.stat().st_size and not self._ends_with_newline():
            os.write(self._fd, b"\n")  # a line cut short by a crash stays on its own line

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def append(self, record: RunRecord) -> None:
        line = orjson.dumps(record.to_dict()) + b"\n"
        with self._lock:
            os.write(self._fd, line)
            os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            os.close(self._fd)


def _write_durably(path: Path, data: bytes) -> None:
    temporary = path.with_suffix(".tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
