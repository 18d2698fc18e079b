"""Task files: the questions of an eval and how to grade each answer.

A task file is YAML (a list of tasks, or a mapping with a ``tasks`` list) or JSONL (one task per
line). Each task has ``id``, ``question``, ``ontology`` (a path relative to the task file),
optional ``tags``, and at least one grader: ``expected_sparql`` (a reference query),
``answer_contains`` (strings, or ``{regex: PATTERN}`` items) and/or ``rubric`` (instructions for
an LM judge). A file that does not fit raises :class:`TaskFileError` naming the file, the line or
task and the field, before anything runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from rlm_core.errors import RLMError

__all__ = ["AnswerPattern", "Task", "TaskFileError", "TaskSet", "load_tasks"]

_FIELDS = frozenset(
    {"id", "question", "ontology", "tags", "expected_sparql", "answer_contains", "rubric"}
)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class TaskFileError(RLMError):
    """A task file cannot be used; the message names the file, the line or task and the field."""


@dataclasses.dataclass(frozen=True)
class AnswerPattern:
    """One ``answer_contains`` item: a case-insensitive substring, or a regular expression."""

    text: str
    regex: bool = False

    def found_in(self, answer: str) -> bool:
        if self.regex:
            return re.search(self.text, answer) is not None
        return self.text.casefold() in answer.casefold()


@dataclasses.dataclass(frozen=True)
class Task:
    """One question of an eval and its graders."""

    id: str
    question: str
    ontology: Path
    line: int
    tags: tuple[str, ...] = ()
    expected_sparql: str | None = None
    answer_contains: tuple[AnswerPattern, ...] = ()
    rubric: str | None = None


@dataclasses.dataclass(frozen=True)
class TaskSet:
    """The tasks of one file, in file order, and the file's SHA-256 (an eval's identity)."""

    path: Path
    sha256: str
    tasks: tuple[Task, ...]

    def task(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)


def load_tasks(path: str | Path) -> TaskSet:
    """Read and check a task file; raise :class:`TaskFileError` on the first problem."""
    path = Path(path).expanduser().resolve()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TaskFileError(f"{path}: cannot read task file: {exc.strerror}") from None
    if path.suffix.lower() == ".jsonl":
        raw = _jsonl(path, data)
    elif path.suffix.lower() in (".yaml", ".yml"):
        raw = _yaml(path, data)
    else:
        raise TaskFileError(f"{path}: a task file must end in .yaml, .yml or .jsonl")
    if not raw:
        raise TaskFileError(f"{path}: holds no tasks")
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for line, record in raw:
        task = _task(path, line, record)
        if task.id in seen:
            raise TaskFileError(
                f"{path}:{line}: task {task.id!r}: id: already used by the task on line "
                f"{seen[task.id]}"
            )
        seen[task.id] = line
        tasks.append(task)
    return TaskSet(path=path, sha256=hashlib.sha256(data).hexdigest(), tasks=tuple(tasks))


def _jsonl(path: Path, data: bytes) -> list[tuple[int, Any]]:
    records = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((number, orjson.loads(line)))
        except orjson.JSONDecodeError as exc:
            raise TaskFileError(f"{path}:{number}: not JSON: {exc}") from None
    return records


def _yaml(path: Path, data: bytes) -> list[tuple[int, Any]]:
    import yaml

    try:
        root = yaml.compose(data.decode("utf-8"), Loader=yaml.SafeLoader)
        document = yaml.safe_load(data)
    except UnicodeDecodeError:
        raise TaskFileError(f"{path}: not UTF-8 text") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise TaskFileError(f"{where}: not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise TaskFileError(f"{path}: not valid YAML: {exc}") from None
    if isinstance(document, dict) and isinstance(root, yaml.MappingNode):
        if set(document) != {"tasks"}:
            raise TaskFileError(f"{path}:1: expected a list of tasks, or one key 'tasks'")
        document = document["tasks"]
        root = root.value[0][1]
    if not isinstance(document, list) or not isinstance(root, yaml.SequenceNode):
        raise TaskFileError(f"{path}:1: expected a list of tasks")
    return [
        (node.start_mark.line + 1, item) for node, item in zip(root.value, document, strict=True)
    ]


def _task(path: Path, line: int, record: Any) -> Task:
    where = f"{path}:{line}"
    if not isinstance(record, dict):
        raise TaskFileError(f"{where}: expected a task (a mapping with id, question, ontology)")
    task_id = record.get("id")
    if not isinstance(task_id, str) or not _ID.match(task_id):
        raise TaskFileError(
            f"{where}: id: expected a name of letters, digits, '_', '.', '-', got {task_id!r}"
        )
    where = f"{where}: task {task_id!r}"
    unknown = sorted(set(record) - _FIELDS)
    if unknown:
        raise TaskFileError(
            f"{where}: {unknown[0]}: unknown field (known: {', '.join(sorted(_FIELDS))})"
        )
    question = _text(record, "question", where, required=True)
    ontology_name = _text(record, "ontology", where, required=True)
    assert question is not None
    assert ontology_name is not None
    ontology = (path.parent / ontology_name).resolve()
    if not ontology.is_file():
        raise TaskFileError(f"{where}: ontology: {ontology} does not exist")
    tags = record.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise TaskFileError(f"{where}: tags: expected a list of strings")
    task = Task(
        id=task_id,
        question=question,
        ontology=ontology,
        line=line,
        tags=tuple(tags),
        expected_sparql=_text(record, "expected_sparql", where),
        answer_contains=_patterns(record.get("answer_contains", []), where),
        rubric=_text(record, "rubric", where),
    )
    if task.expected_sparql is None and not task.answer_contains and task.rubric is None:
        raise TaskFileError(
            f"{where}: graders: give at least one of expected_sparql, answer_contains, rubric"
        )
    return task


def _text(
    record: Mapping[str, Any], field: str, where: str, *, required: bool = False
) -> str | None:
    value = record.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise TaskFileError(f"{where}: {field}: expected a non-empty string, got {value!r}")
    return value


def _patterns(value: Any, where: str) -> tuple[AnswerPattern, ...]:
    if isinstance(value, str | dict):
        value = [value]
    if not isinstance(value, list):
        raise TaskFileError(
            f"{where}: answer_contains: expected a list of strings or {{regex: ...}}"
        )
    patterns = []
    for item in value:
        if isinstance(item, str) and item:
            patterns.append(AnswerPattern(item))
            continue
        if isinstance(item, dict) and set(item) == {"regex"} and isinstance(item["regex"], str):
            try:
                re.compile(item["regex"])
            except re.error as exc:
                raise TaskFileError(
                    f"{where}: answer_contains: bad regex {item['regex']!r}: {exc}"
                ) from None
            patterns.append(AnswerPattern(item["regex"], regex=True))
            continue
        raise TaskFileError(
            f"{where}: answer_contains: expected a non-empty string or {{regex: PATTERN}}, "
            f"got {item!r}"
        )
    return tuple(patterns)
