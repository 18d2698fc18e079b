"""The JSONL tracker: rlm-core's write-ahead log, every event of every run, in order.

Each run appends to one file (``runs/<run_id>.jsonl`` by default): a header line, then one line
per hook call. Every line is a single ``write`` of complete bytes on an unbuffered append-mode
file, so a killed process leaves whole lines only. :mod:`rlm_core.runlog` reads the files back, and
``rlm replay`` feeds them to any other tracker. Secrets are redacted before anything is written.
"""

from __future__ import annotations

import dataclasses
import os
import string
import threading
import weakref
from collections.abc import Mapping
from datetime import UTC
from pathlib import Path, PurePath
from typing import IO

from rlm_core._redact import REDACTED, Redactor
from rlm_core.events import (
    Event,
    Grade,
    Iteration,
    JSONValue,
    Judgment,
    LLMCall,
    MemoryExtraction,
    MemoryRetrieval,
    RunInfo,
    RunResult,
    Setup,
    ToolCall,
    utc_now,
)
from rlm_core.hookspecs import RunLocation, hookimpl
from rlm_core.runlog import (
    MetricsPoint,
    encode_record,
    event_line,
    file_name_safe,
    header_record,
)

__all__ = ["DEFAULT_PATH", "FSYNC_POLICIES", "REDACTED", "JsonlTracker"]

DEFAULT_PATH = "runs/{run_id}.jsonl"
# The keys to_dict() puts before an event's fields, as bytes to put before orjson's.
FSYNC_POLICIES = ("never", "run_end", "every_event")

_PLACEHOLDERS = ("run_id", "date", "ontology")


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
        self._scrubber = Redactor.from_environment(max_field_chars)
        self._runs: dict[str, _RunFile] = {}
        self._locations: dict[str, Path] = {}
        self._lock = threading.Lock()
        weakref.finalize(self, _release_runs, self._runs)

    def destination(self, run: RunInfo) -> Path:
        """The file this run's events go to, from the path template."""
        return self._template.resolve(run)

    @hookimpl
    def run_location(self, run: RunInfo) -> RunLocation | None:
        """The run's log: where it was written, or for a run not seen yet (``rlm replay`` asks
        before replaying), where it would be; None when the template cannot place it."""
        path = self._locations.get(run.run_id)
        if path is None:
            try:
                path = self.destination(run)
            except ValueError:
                return None  # run_start will say why, if the run ever reaches this tracker
        return RunLocation(str(path), run_log=path)

    @hookimpl
    def run_start(self, run: RunInfo) -> None:
        self._emit(self._open(run), run.to_dict())

    @hookimpl
    def setup(self, run: RunInfo, setup: Setup) -> None:
        self._emit_event(self._open(run), setup)

    @hookimpl
    def memory_retrieved(self, run: RunInfo, retrieval: MemoryRetrieval) -> None:
        self._emit_event(self._open(run), retrieval)

    @hookimpl
    def iteration(self, run: RunInfo, step: Iteration) -> None:
        self._emit_event(self._open(run), step)

    @hookimpl
    def llm_call(self, run: RunInfo, call: LLMCall) -> None:
        self._emit_event(self._open(run), call)

    @hookimpl
    def tool_call(self, run: RunInfo, call: ToolCall) -> None:
        self._emit_event(self._open(run), call)

    @hookimpl
    def judgment(self, run: RunInfo, verdict: Judgment) -> None:
        self._emit_event(self._open(run), verdict)

    @hookimpl
    def graded(self, run: RunInfo, grade: Grade) -> None:
        self._emit_event(self._open(run), grade)

    @hookimpl
    def memory_extracted(self, run: RunInfo, extraction: MemoryExtraction) -> None:
        self._emit_event(self._open(run), extraction)

    @hookimpl
    def metrics(self, run: RunInfo, values: Mapping[str, float], step: int | None) -> None:
        point = MetricsPoint(
            run.run_id, {str(k): float(v) for k, v in values.items()}, step, utc_now()
        )
        self._emit(self._open(run), point.to_dict())

    @hookimpl
    def run_end(self, run: RunInfo, result: RunResult) -> None:
        log = self._open(run)
        try:
            self._emit_event(log, result)
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
                self._emit(log, header_record(run))
            except BaseException:
                _open_files.release(path)
                raise
            self._runs[run.run_id] = log
            self._locations[run.run_id] = path
            return log

    def _emit_event(self, log: _RunFile, event: Event) -> None:
        """Write one event as its ``to_dict()`` would serialize.

        :func:`~rlm_core.runlog.event_line` skips building a dict for the events that need no
        redaction; the others take the dict.
        """
        line = event_line(event)
        if line is not None and self._scrubber.leaves_alone(event.kind, line):
            log.shared.write(line)
            if self._fsync == "every_event":
                os.fsync(log.shared.file.fileno())
        else:
            self._emit(log, event.to_dict())

    def _emit(self, log: _RunFile, record: dict[str, JSONValue]) -> None:
        truncated = self._scrubber.scrub(record)
        if truncated:
            record["truncated"] = list(truncated)
        log.shared.write(encode_record(record))
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
                run_id=file_name_safe(run.run_id),
                date=run.started_at.astimezone(UTC).strftime("%Y-%m-%d"),
                ontology=file_name_safe(run.ontology.name),
            )
        )
        if ".." in relative.parts:
            raise ValueError(f"jsonl: log path {relative} for run {run.run_id!r} contains '..'")
        return (self._cwd / relative).resolve()
