"""The JSONL tracker: rlm-core's write-ahead log, every event of every run, in order.

Each run appends to one file (``runs/<run_id>.jsonl`` by default): a header line, then one line
per hook call. Every line is a single ``write`` of complete bytes on an unbuffered append-mode
file, so a killed process leaves whole lines only. :mod:`rlm_core.runlog` reads the files back, and
``rlm replay`` feeds them to any other tracker. Secrets are redacted before anything is written.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import string
import threading
import typing
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import IO

import orjson
import structlog

from rlm_core import __version__
from rlm_core.events import (
    EVENT_TYPES,
    SCHEMA_VERSION,
    Iteration,
    JSONValue,
    Judgment,
    LLMCall,
    MemoryExtraction,
    MemoryRetrieval,
    RunInfo,
    RunResult,
    ToolCall,
    utc_now,
)
from rlm_core.hookspecs import hookimpl

__all__ = ["DEFAULT_PATH", "FSYNC_POLICIES", "REDACTED", "JsonlTracker"]

DEFAULT_PATH = "runs/{run_id}.jsonl"
FSYNC_POLICIES = ("never", "run_end", "every_event")
REDACTED = "[REDACTED]"

_PLACEHOLDERS = ("run_id", "date", "ontology")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
# Keys of a line that identify the record; never redacted or truncated.
_IDENTITY_KEYS = frozenset(
    {
        "event",
        "record",
        "schema_version",
        "rlm_core_version",
        "run_id",
        "parent_run_id",
        "seq",
        "timestamp",
    }
)

_SECRET_WORDS = (
    r"api[_-]?key|apikey|access[_-]?key|private[_-]?key|token|secret|passw(?:or)?d"
    r"|authorization|credential"
)
_SECRET_KEY = re.compile(_SECRET_WORDS, re.IGNORECASE)
# Provider key formats, searched inside one run of token characters.
_PROVIDER_KEY = re.compile(
    r"(?<![A-Za-z0-9])(?:sk-[\w-]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|github_pat_\w{20,}|AKIA[0-9A-Z]{16}|AIza[\w-]{35}|hf_[A-Za-z0-9]{30,})"
)
# A key-ish word and a separator just before a long token: ``api_key = "..."``, ``token: ...``.
_SECRET_WORD_BEFORE = re.compile(
    r"(?i:" + _SECRET_WORDS + r")[\w-]*[\"']?(?:\s*[:=]\s*|\s+)[\"']?$"
)
_BEARER = re.compile(r"\b(?i:bearer)\s+[\w.~+/=-]{8,}")
_MIN_KEY_CHARS = 20
_MIN_WORD_PREFIXED_CHARS = 32
_MIN_ENV_SECRET_CHARS = 8
# Bytes tables for a C-speed first look: every key format above has a run of at least
# _MIN_KEY_CHARS word characters (IRIs and paths, split by "/" and ".", rarely do).
_WORD_BYTES = frozenset((string.ascii_letters + string.digits + "_-").encode())
_TOKEN_BYTES = _WORD_BYTES | frozenset(b".~+/")
_FLAG_WORDS = bytes(0x61 if byte in _WORD_BYTES else 0x20 for byte in range(256))
_KEEP_TOKENS = bytes(byte if byte in _TOKEN_BYTES else 0x20 for byte in range(256))
_LONG_RUN = b"a" * _MIN_KEY_CHARS


class JsonlTracker:
    """Writes every hook call of every run to a JSONL file, losslessly and crash-safely.

    :param path: file name template, relative to the working directory; ``{run_id}``, ``{date}``
        (UTC day of the run's start, YYYY-MM-DD) and ``{ontology}`` (ontology name) are filled in.
        Runs whose template resolves to the same file share it.
    :param fsync: ``"never"``, ``"run_end"`` (default: once, when the run ends) or
        ``"every_event"``.
    :param max_field_chars: cut longer strings and mark them (default: no limit).
    """

    name = "jsonl"

    def __init__(
        self,
        path: str = DEFAULT_PATH,
        fsync: str = "run_end",
        max_field_chars: int | None = None,
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(
                f"jsonl: fsync must be one of {', '.join(FSYNC_POLICIES)}; got {fsync!r}"
            )
        self._template = _PathTemplate(path, Path.cwd())
        self._fsync = fsync
        self._scrubber = _Scrubber(max_field_chars, _environment_secrets(os.environ))
        # structlog's JSONRenderer on orjson renders each record. The tracker writes the line
        # itself: one write() of the whole line under the file's lock is the crash-safety
        # guarantee, and structlog's BoundLogger/BytesLogger layers (context binding, a flush per
        # line on an unbuffered file) would add a third to the cost of every event.
        self._render = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        self._runs: dict[str, _RunFile] = {}
        self._locations: dict[str, Path] = {}
        self._lock = threading.Lock()
        weakref.finalize(self, _release_runs, self._runs)

    def destination(self, run: RunInfo) -> Path:
        """The file this run's events go to (``rlm replay`` refuses to append a log to itself)."""
        return self._template.resolve(run)

    def output_location(self, run_id: str) -> str | None:
        """Where the run with this id was logged by this tracker (``rlm run`` prints it)."""
        path = self._locations.get(run_id)
        return None if path is None else str(path)

    @hookimpl
    def run_start(self, run: RunInfo) -> None:
        self._emit(self._open(run), run.to_dict())

    @hookimpl
    def memory_retrieved(self, run: RunInfo, retrieval: MemoryRetrieval) -> None:
        self._emit(self._open(run), retrieval.to_dict())

    @hookimpl
    def iteration(self, run: RunInfo, step: Iteration) -> None:
        self._emit(self._open(run), step.to_dict())

    @hookimpl
    def llm_call(self, run: RunInfo, call: LLMCall) -> None:
        self._emit(self._open(run), call.to_dict())

    @hookimpl
    def tool_call(self, run: RunInfo, call: ToolCall) -> None:
        self._emit(self._open(run), call.to_dict())

    @hookimpl
    def judgment(self, run: RunInfo, verdict: Judgment) -> None:
        self._emit(self._open(run), verdict.to_dict())

    @hookimpl
    def memory_extracted(self, run: RunInfo, extraction: MemoryExtraction) -> None:
        self._emit(self._open(run), extraction.to_dict())

    @hookimpl
    def metrics(self, run: RunInfo, values: Mapping[str, float], step: int | None) -> None:
        record: dict[str, JSONValue] = {
            "event": "metrics",
            "schema_version": SCHEMA_VERSION,
            "run_id": run.run_id,
            "values": {str(name): float(value) for name, value in values.items()},
            "step": step,
            "timestamp": utc_now().isoformat(),
        }
        self._emit(self._open(run), record)

    @hookimpl
    def run_end(self, run: RunInfo, result: RunResult) -> None:
        log = self._open(run)
        try:
            self._emit(log, result.to_dict())
            if self._fsync == "run_end":
                os.fsync(log.shared.file.fileno())
        finally:
            with self._lock:
                self._runs.pop(run.run_id, None)
            _open_files.release(log.path)

    def _open(self, run: RunInfo) -> _RunFile:
        """The run's log, opened (with its header written) on the run's first event."""
        log = self._runs.get(run.run_id)
        if log is not None:
            return log
        with self._lock:
            log = self._runs.get(run.run_id)
            if log is not None:
                return log
            path = self._template.resolve(run)
            shared = _open_files.acquire(path)
            try:
                log = _RunFile(path, shared)
                header: dict[str, JSONValue] = {
                    "record": "header",
                    "schema_version": SCHEMA_VERSION,
                    "rlm_core_version": __version__,
                    "run": run.to_dict(),
                }
                self._emit(log, header)
            except BaseException:
                _open_files.release(path)
                raise
            self._runs[run.run_id] = log
            self._locations[run.run_id] = path
            return log

    def _emit(self, log: _RunFile, record: dict[str, JSONValue]) -> None:
        truncated = self._scrubber.scrub(record)
        if truncated:
            record["truncated"] = list(truncated)
        try:
            line = typing.cast(bytes, self._render(None, "msg", record))
        except orjson.JSONEncodeError:
            # Integers beyond 64 bits (SPARQL results) and lone surrogates: orjson refuses them,
            # the standard library writes them exactly. Same file, same lock, one write.
            line = json.dumps(record, ensure_ascii=True).encode()
        log.shared.write(line)
        if self._fsync == "every_event":
            os.fsync(log.shared.file.fileno())


@dataclasses.dataclass(frozen=True)
class _RunFile:
    """One run's view of its log file: the path and the shared file."""

    path: Path
    shared: _SharedFile


@dataclasses.dataclass
class _SharedFile:
    """An open log file and the one lock all its writers use."""

    file: IO[bytes]
    users: int = 0
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def write(self, line: bytes) -> None:
        """Append one complete line with a single write call, so lines never interleave and a
        killed process leaves whole lines only.

        An unbuffered file reports a short write (disk full, file size limit) only through the
        count it returns: that is an error here, since the line is then incomplete.
        """
        data = line + b"\n"
        with self.lock:
            written = self.file.write(data)
        if written != len(data):
            raise OSError(
                f"jsonl: only {written} of {len(data)} bytes of a line reached {self.file.name} "
                "(disk full or file size limit?); the log ends with an incomplete line"
            )


class _OpenFiles:
    """Process-wide registry of open log files, so runs sharing a file share one lock.

    Reference-counted: the file is closed when the last run writing to it ends.
    """

    def __init__(self) -> None:
        self._files: dict[Path, _SharedFile] = {}
        self._lock = threading.Lock()

    def acquire(self, path: Path) -> _SharedFile:
        with self._lock:
            shared = self._files.get(path)
            if shared is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed in release()
                shared = _SharedFile(file)
                self._files[path] = shared
            shared.users += 1
            return shared

    def release(self, path: Path) -> None:
        with self._lock:
            shared = self._files[path]
            shared.users -= 1
            if shared.users == 0:
                del self._files[path]
                shared.file.close()


_open_files = _OpenFiles()


def _release_runs(runs: dict[str, _RunFile]) -> None:
    """A tracker that is gone (or the process exiting) cannot end its runs any more: give their
    files back, so a run that never got its run_end does not hold a file open forever."""
    for log in runs.values():
        _open_files.release(log.path)
    runs.clear()


class _PathTemplate:
    """The ``path`` option: validated once, filled in per run with file-name-safe values."""

    def __init__(self, template: str, cwd: Path) -> None:
        if not isinstance(template, str) or not template.strip():
            raise ValueError(f"jsonl: path must be a non-empty string, got {template!r}")
        try:
            fields = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise ValueError(f"jsonl: path template {template!r}: {exc}") from None
        for _, name, spec, conversion in fields:
            if name is not None and (name not in _PLACEHOLDERS or spec or conversion):
                raise ValueError(
                    f"jsonl: path template {template!r}: unknown placeholder {{{name}}} "
                    f"(use {', '.join('{' + p + '}' for p in _PLACEHOLDERS)})"
                )
        expanded = os.path.expanduser(template)
        if ".." in PurePath(expanded).parts:
            raise ValueError(
                f"jsonl: path template {template!r} must not contain '..' segments: "
                "logs stay inside the directory the template names"
            )
        if expanded.endswith(("/", os.sep)):
            raise ValueError(f"jsonl: path template {template!r} names a directory, not a file")
        self._template = expanded
        self._cwd = cwd

    def resolve(self, run: RunInfo) -> Path:
        relative = Path(
            self._template.format(
                run_id=_file_name_safe(run.run_id),
                date=run.started_at.astimezone(UTC).strftime("%Y-%m-%d"),
                ontology=_file_name_safe(run.ontology.name),
            )
        )
        if ".." in relative.parts:
            raise ValueError(f"jsonl: log path {relative} for run {run.run_id!r} contains '..'")
        return (self._cwd / relative).resolve()


def _file_name_safe(value: str) -> str:
    return _UNSAFE_NAME_CHARS.sub("_", value) or "_"


class _Scrubber:
    """Redacts secrets and truncates long strings in a record, in place, before it is written.

    Most strings hold no secret; a bytes ``translate`` finds the candidates (long runs of token
    characters, "bearer", known secret values) so the regular expressions only see those.
    """

    def __init__(self, max_field_chars: int | None, secrets: tuple[str, ...]) -> None:
        if max_field_chars is not None and (
            type(max_field_chars) is not int or max_field_chars < 1
        ):
            raise ValueError(
                f"jsonl: max_field_chars must be a positive integer, got {max_field_chars!r}"
            )
        self._max_chars = max_field_chars
        self._secrets = secrets

    def scrub(self, record: dict[str, JSONValue]) -> list[str]:
        """Clean ``record`` in place; return the paths of the strings that were cut.

        The record's own strings get one first look, joined (no key spans a newline); only when
        it finds something are they looked at one by one.
        """
        truncated: list[str] = []
        kind = record.get("event")
        plan = _field_plan(kind) if isinstance(kind, str) else None
        if plan is None:
            text_keys = [k for k, v in record.items() if type(v) is str and k not in _IDENTITY_KEYS]
            nested_keys = [k for k in record if k not in _IDENTITY_KEYS and k not in text_keys]
        else:
            text_keys, nested_keys = plan
        for key in nested_keys:
            value = record[key]
            if value is not None:
                record[key] = self._nested(value, key, truncated)
        texts = [value for key in text_keys if type(value := record[key]) is str]
        if texts and (self._max_chars is not None or self._suspicious("\n".join(texts))):
            for key in text_keys:
                value = record[key]
                if type(value) is str:
                    record[key] = self._string(value, key, truncated)
        return truncated

    def _nested(self, value: JSONValue, path: str, truncated: list[str]) -> JSONValue:
        if isinstance(value, str):
            return self._string(value, path, truncated)
        if isinstance(value, dict):
            return {key: self._entry(key, item, path, truncated) for key, item in value.items()}
        if isinstance(value, list):
            return [self._nested(item, f"{path}[{i}]", truncated) for i, item in enumerate(value)]
        return value

    def _entry(self, key: str, item: JSONValue, path: str, truncated: list[str]) -> JSONValue:
        if key in _IDENTITY_KEYS:
            return item
        if _is_secret_key(key) and not _is_scalar_number(item):
            return REDACTED
        return self._nested(item, f"{path}.{key}", truncated)

    def _string(self, text: str, path: str, truncated: list[str]) -> str:
        if self._suspicious(text):
            text = self._redact(text)
        if self._max_chars is not None and len(text) > self._max_chars:
            cut = len(text) - self._max_chars
            text = f"{text[: self._max_chars]}…[truncated {cut} chars]"
            truncated.append(path)
        return text

    def _suspicious(self, text: str) -> bool:
        """The first look: false for most strings, and fast (a translate and two searches).

        A long run of word characters may be a key; "earer" may start a short bearer token
        (long ones are runs too); known secret values are looked for as they are.
        """
        return (
            _LONG_RUN in text.encode("utf-8", "surrogatepass").translate(_FLAG_WORDS)
            or "earer" in text
            or (bool(self._secrets) and any(secret in text for secret in self._secrets))
        )

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        if "earer" in text or "EARER" in text:
            text = _BEARER.sub(REDACTED, text)
        runs = text.encode("utf-8", "surrogatepass").translate(_KEEP_TOKENS).split()
        for run in {run.decode("ascii") for run in runs if len(run) >= _MIN_KEY_CHARS}:
            key = _PROVIDER_KEY.search(run)
            if key is not None:
                text = text.replace(key.group(), REDACTED)
            elif len(run) >= _MIN_WORD_PREFIXED_CHARS:
                text = _redact_after_secret_word(text, run)
        return text


def _redact_after_secret_word(text: str, token: str) -> str:
    """Redact the occurrences of ``token`` that follow a key-ish word (``api_key=...``)."""
    start = 0
    while (position := text.find(token, start)) >= 0:
        if _SECRET_WORD_BEFORE.search(text, max(0, position - 48), position):
            text = text[:position] + REDACTED + text[position + len(token) :]
            start = position + len(REDACTED)
        else:
            start = position + len(token)
    return text


_TEXT_TYPES = (str, str | None)
_NUMBER_TYPES = (int, float, bool, int | None, float | None, bool | None, datetime)


@functools.cache
def _field_plan(kind: str) -> tuple[list[str], list[str]] | None:
    """For an event kind: the fields that hold plain text, and those that may hold nested data
    (numbers, booleans and timestamps cannot carry a secret). None for other records."""
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        return None
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls) if f.name not in _IDENTITY_KEYS]
    texts = [name for name in fields if hints[name] in _TEXT_TYPES]
    nested = [name for name in fields if name not in texts and hints[name] not in _NUMBER_TYPES]
    return texts, nested


@functools.lru_cache(maxsize=1024)
def _is_secret_key(key: str) -> bool:
    return _SECRET_KEY.search(key) is not None


def _is_scalar_number(value: JSONValue) -> bool:
    """Numbers under key-ish names (``max_tokens``, ``prompt_tokens``) are counts, not secrets."""
    return value is None or isinstance(value, bool | int | float)


def _environment_secrets(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Values of secret-looking environment variables (``OPENAI_API_KEY``), longest first, so a
    key without a recognizable format is still redacted wherever it shows up."""
    values = {
        value
        for name, value in environ.items()
        if _SECRET_KEY.search(name) and len(value) >= _MIN_ENV_SECRET_CHARS
    }
    return tuple(sorted(values, key=len, reverse=True))
