"""Memory packs: memories as JSONL, to share strategies between databases and people.

The first line is a header ``{"memory_pack": 1, "exported_at": "...", "ontology": ...}``; every
other line is one memory (see :func:`record_to_json`). Import checks each line on its own: a bad
line is reported with its number and the others still go in, and a memory already stored (same
content hash) is counted as a duplicate, so importing a pack twice adds nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from rlm_core.memory.base import (
    MemoryRecord,
    MemoryStore,
    MemoryStoreError,
    memory_id,
    normalize_tags,
)

__all__ = [
    "PACK_VERSION",
    "ImportReport",
    "PackProblem",
    "export_pack",
    "import_pack",
    "record_from_json",
    "record_to_json",
]

PACK_VERSION = 1
_BATCH = 1000
_COUNTS = ("access_count", "success_count", "failure_count")
# A count above this is no real count (and SQLite stores at most 2**63 - 1).
_MAX_COUNT = 2**53 - 1
# Timestamps from before this or more than a day ahead of now are refused as impossible.
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_AHEAD = timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class PackProblem:
    """A line that was not imported, and why."""

    line: int
    message: str


@dataclasses.dataclass(frozen=True)
class ImportReport:
    """What an import did: memories added, duplicates skipped, lines rejected."""

    source: str
    added: int
    duplicates: int
    problems: tuple[PackProblem, ...]


def record_to_json(record: MemoryRecord) -> dict[str, Any]:
    """One pack line: the memory's text, scope, provenance and track record."""
    return {
        "id": record.memory_id,
        "title": record.title,
        "description": record.description,
        "content": record.content,
        "tags": list(record.tags),
        "scope": record.scope,
        "source": record.source,
        "run_id": record.run_id,
        "created_at": record.created_at.isoformat(),
        **{key: getattr(record, key) for key in _COUNTS},
    }


def record_from_json(data: Any) -> MemoryRecord:
    """The memory of one pack line; raise ``ValueError`` saying what is wrong with it.

    ``title`` and ``content`` are required; ``id`` is ignored (recomputed from the text); other
    keys have defaults (unscoped, source "import", counts 0); unknown keys are ignored.
    """
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    title, content = _required_text(data, "title"), _required_text(data, "content")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ValueError("'tags' must be a list of strings")
    counts = {key: data.get(key, 0) for key in _COUNTS}
    for key, value in counts.items():
        if type(value) is not int or not 0 <= value <= _MAX_COUNT:
            raise ValueError(
                f"{key!r} must be an integer from 0 to {_MAX_COUNT:,}, got {_clip(value)}"
            )
    created_at = _timestamp(_optional_text(data, "created_at"))
    return MemoryRecord(
        memory_id=memory_id(title, content),
        title=title,
        description=_optional_text(data, "description") or "",
        content=content,
        tags=normalize_tags(tags),
        scope=_optional_text(data, "scope"),
        source=_optional_text(data, "source") or "import",
        run_id=_optional_text(data, "run_id"),
        created_at=created_at,
        **counts,
    )


def export_pack(
    store: MemoryStore, destination: str | os.PathLike[str] | IO[str], *, ontology: str | None
) -> int:
    """Write every memory (of scope ``ontology`` when given) as a pack; return how many."""
    with _open(destination, "w") as handle:
        header = {
            "memory_pack": PACK_VERSION,
            "exported_at": datetime.now(UTC).isoformat(),
            "ontology": ontology,
        }
        handle.write(json.dumps(header) + "\n")
        count = 0
        for record in store.records(ontology=ontology):
            handle.write(json.dumps(record_to_json(record), ensure_ascii=False) + "\n")
            count += 1
    return count


def import_pack(
    store: MemoryStore,
    source: str | os.PathLike[str] | IO[bytes],
    *,
    redact: Callable[[str], str] | None = None,
) -> ImportReport:
    """Add the memories of a pack; bad lines are reported and skipped, the others go in.

    ``redact`` cleans each memory's text before it is stored (the memory database holds no
    secrets, whatever the pack held); the id is computed from the cleaned text.

    :raises MemoryStoreError: the file cannot be read, or its header names a pack version this
        rlm-core does not know.
    """
    name = (
        os.fspath(source)
        if isinstance(source, str | os.PathLike)
        else str(getattr(source, "name", "<stream>"))
    )
    added = duplicates = 0
    problems: list[PackProblem] = []
    batch: list[tuple[int, MemoryRecord]] = []

    def store_records(records: list[MemoryRecord]) -> None:
        nonlocal added, duplicates
        results = store.add_records(records)
        duplicates += sum(result.duplicate for result in results)
        added += len(results) - sum(result.duplicate for result in results)

    def flush() -> None:
        try:
            store_records([record for _, record in batch])
        except (ValueError, OverflowError, MemoryStoreError):
            # One line the store refuses must not cost the others: add them one by one.
            for number, record in batch:
                try:
                    store_records([record])
                except (ValueError, OverflowError, MemoryStoreError) as exc:
                    problems.append(PackProblem(number, f"not stored: {exc}"))
        batch.clear()

    with _open(source, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
            except ValueError as exc:  # also bad UTF-8
                problems.append(PackProblem(number, f"not JSON: {exc}"))
                continue
            if isinstance(data, dict) and "memory_pack" in data:
                _check_header(data, number, name)
                continue
            try:
                record = record_from_json(data)
            except ValueError as exc:
                problems.append(PackProblem(number, str(exc)))
                continue
            batch.append((number, record if redact is None else _redacted(record, redact)))
            if len(batch) >= _BATCH:
                flush()
    flush()
    problems.sort(key=lambda problem: problem.line)
    return ImportReport(name, added, duplicates, tuple(problems))


def _redacted(record: MemoryRecord, redact: Callable[[str], str]) -> MemoryRecord:
    title, content = redact(record.title), redact(record.content)
    return dataclasses.replace(
        record,
        memory_id=memory_id(title, content),
        title=title,
        description=redact(record.description),
        content=content,
        tags=normalize_tags([redact(tag) for tag in record.tags]),
    )


def _check_header(data: dict[str, Any], number: int, name: str) -> None:
    if data["memory_pack"] != PACK_VERSION:
        raise MemoryStoreError(
            f"{name}:{number}: memory pack version {data['memory_pack']!r} is not supported "
            f"(this rlm-core reads version {PACK_VERSION})"
        )


def _timestamp(text: str | None) -> datetime:
    """``created_at``: an ISO 8601 time (UTC when it names no zone) that could be real."""
    now = datetime.now(UTC)
    if not text:
        return now
    try:
        parsed = datetime.fromisoformat(text)
        when = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        in_range = _EARLIEST <= when <= now + _AHEAD
    except (ValueError, OverflowError):
        raise ValueError(f"'created_at' is not an ISO 8601 timestamp: {_clip(text)}") from None
    if not in_range:
        raise ValueError(
            f"'created_at' must lie between {_EARLIEST:%Y-%m-%d} and now, got {_clip(text)}"
        )
    return when


def _clip(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _required_text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key!r} must be a non-empty string, got {value!r}")
    return value


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string or null, got {value!r}")
    return value


@contextlib.contextmanager
def _open(target: str | os.PathLike[str] | IO[Any], mode: str) -> Iterator[IO[Any]]:
    """Open a path (errors named with the path), or use an open file as it is."""
    if not isinstance(target, str | os.PathLike):
        yield target
        return
    try:
        handle = open(target, mode, encoding=None if "b" in mode else "utf-8")  # noqa: SIM115
    except OSError as exc:
        raise MemoryStoreError(f"cannot open {os.fspath(target)}: {exc.strerror}") from None
    with handle:
        yield handle
