"""The run-log format, writer and reader: one JSON object per line, a header line per run, then
one line per hook call.

Writing: :func:`header_record`, :func:`event_line` (the fast path: an event's line without
building a dict), :func:`encode_record` and :func:`run_log_text` (a whole run's log from events
held in memory). Every tracker that writes run logs (``jsonl``, a tracker's spool) uses these,
so there is one format. Reading never stops at a bad line: each problem is kept with its file and
line number, and the good lines stay available to show (``rlm runs``) or to emit again
(``rlm replay``), because a log from a crashed run is exactly the one worth reading.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import orjson

from rlm_core.errors import RLMError
from rlm_core.events import (
    EVENT_TYPES,
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    Event,
    EventDecodeError,
    JSONValue,
    RunInfo,
    event_from_dict,
)
from rlm_core.hookspecs import PAYLOAD_ARGUMENTS

__all__ = [
    "DEFAULT_LOG_DIR",
    "LATEST",
    "LogNotFoundError",
    "LogProblem",
    "LogRecord",
    "MetricsPoint",
    "RunLog",
    "encode_record",
    "event_line",
    "file_name_safe",
    "find_logs",
    "header_record",
    "iter_hook_calls",
    "locate_run",
    "logged_run_ids",
    "read_log",
    "run_log_text",
    "write_new_log",
]

DEFAULT_LOG_DIR = "runs"

_E = TypeVar("_E", bound="Event | MetricsPoint")
_HEADER_PREFIXES = (b'{"record":"header"', b'{"event":"run_start"')


class LogNotFoundError(RLMError):
    """The file or run asked for does not exist, or is not a run log."""


@dataclasses.dataclass(frozen=True)
class LogProblem:
    """A line that could not be used (or a whole file, with ``line_number`` 0)."""

    path: str
    line_number: int
    message: str

    def __str__(self) -> str:
        if self.line_number:
            return f"{self.path}:{self.line_number}: {self.message}"
        return f"{self.path}: {self.message}"


@dataclasses.dataclass(frozen=True)
class MetricsPoint:
    """The payload of a ``metrics`` hook call, as a run log holds it (no ``seq``: metrics are
    published, not emitted by the engine in sequence)."""

    kind: ClassVar[str] = "metrics"

    run_id: str
    values: dict[str, float]
    step: int | None
    timestamp: datetime

    def to_dict(self) -> dict[str, JSONValue]:
        """The logged form; JSON has no NaN, so a non-finite value is written as null."""
        return {
            "event": self.kind,
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "values": {
                str(name): float(value) if math.isfinite(value) else None
                for name, value in self.values.items()
            },
            "step": self.step,
            "timestamp": self.timestamp.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricsPoint:
        """The payload of a logged ``metrics`` line; :class:`EventDecodeError` when malformed."""
        _check_version(data, "metrics")
        run_id, values, step = data.get("run_id"), data.get("values"), data.get("step")
        if not isinstance(run_id, str):
            raise EventDecodeError("metrics: 'run_id' must be a string")
        if not isinstance(values, dict) or not all(
            isinstance(value, int | float | None) and not isinstance(value, bool)
            for value in values.values()
        ):
            raise EventDecodeError("metrics: 'values' must map names to numbers")
        if step is not None and type(step) is not int:
            raise EventDecodeError(f"metrics: 'step' must be an integer or null, got {step!r}")
        timestamp = data.get("timestamp")
        if not isinstance(timestamp, str):
            raise EventDecodeError("metrics: 'timestamp' must be an ISO 8601 string")
        return cls(
            run_id=run_id,
            values={
                name: float("nan") if value is None else float(value)
                for name, value in values.items()
            },
            step=step,
            timestamp=datetime.fromisoformat(timestamp),
        )


# -- writing ------------------------------------------------------------------------------------

_EVENT_PREFIXES = {
    kind: b'{"event":"%s","schema_version":%d,' % (kind.encode(), SCHEMA_VERSION)
    for kind in EVENT_TYPES
}


def header_record(run: RunInfo) -> dict[str, JSONValue]:
    """The line that opens a run in a log."""
    from rlm_core import __version__

    return {
        "record": "header",
        "schema_version": SCHEMA_VERSION,
        "rlm_core_version": __version__,
        "run": run.to_dict(),
    }


def event_line(event: Event) -> bytes | None:
    """The line of an event, serialized from the dataclass itself (no dict is built), equal to
    ``encode_record(event.to_dict())``; None when orjson refuses a value (then use that)."""
    try:
        return _EVENT_PREFIXES[event.kind] + orjson.dumps(event)[1:]
    except (orjson.JSONEncodeError, KeyError):
        return None


def encode_record(record: JSONValue) -> bytes:
    """One line (without the newline) for a record: a header, ``to_dict()`` of a payload."""
    try:
        return orjson.dumps(record)
    except orjson.JSONEncodeError:
        # Integers beyond 64 bits (SPARQL results) and lone surrogates: orjson refuses them,
        # the standard library writes them exactly, as compact as orjson would.
        return json.dumps(record, ensure_ascii=True, separators=(",", ":")).encode()


_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def file_name_safe(value: str) -> str:
    """``value`` as part of a file name: anything but letters, digits and ``._-`` becomes ``_``."""
    return _UNSAFE_NAME_CHARS.sub("_", value) or "_"


def write_new_log(
    directory: Path,
    run: RunInfo,
    payloads: Iterable[Event | MetricsPoint],
    redact: Callable[[JSONValue], JSONValue] | None = None,
) -> Path:
    """Write a run's log (a tracker's spool) to a *new* file ``DIRECTORY/RUN_ID[.N].jsonl``,
    fsync'd, and return its path. Never over an existing file: that may be the very log a
    replay is reading, so nothing recorded is lost."""
    text = run_log_text(run, payloads, redact)
    directory.mkdir(parents=True, exist_ok=True)
    stem = file_name_safe(run.run_id)
    for attempt in range(1, 10_000):
        path = directory / (f"{stem}.jsonl" if attempt == 1 else f"{stem}.{attempt}.jsonl")
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        return path
    raise FileExistsError(f"{directory}: no free log file name for run {run.run_id}")


def run_log_text(
    run: RunInfo,
    payloads: Iterable[Event | MetricsPoint],
    redact: Callable[[JSONValue], JSONValue] | None = None,
) -> str:
    """A whole run's log, from the payloads a tracker held in memory (``run`` itself, if among
    them, is the header); ``redact`` maps every record before it is written."""
    records: list[JSONValue] = [header_record(run)]
    records += [payload.to_dict() for payload in payloads if payload is not run]
    lines = [encode_record(redact(record) if redact else record) for record in records]
    return b"".join(line + b"\n" for line in lines).decode()


@dataclasses.dataclass(frozen=True)
class LogRecord:
    """One usable line: its payload and the fields the writer cut (not round-trippable then)."""

    line_number: int
    payload: Event | MetricsPoint
    truncated: tuple[str, ...] = ()

    @property
    def hook(self) -> str:
        """The hook this line was written for."""
        return self.payload.kind

    @property
    def run_id(self) -> str:
        return self.payload.run_id


@dataclasses.dataclass
class RunLog:
    """A parsed log file. Most files hold one run; a path template without ``{run_id}`` makes
    runs share a file, so ``runs`` maps every run id to its :class:`RunInfo`."""

    path: Path
    runs: dict[str, RunInfo] = dataclasses.field(default_factory=dict)
    records: list[LogRecord] = dataclasses.field(default_factory=list)
    problems: list[LogProblem] = dataclasses.field(default_factory=list)
    truncated_lines: list[int] = dataclasses.field(default_factory=list)

    @property
    def header(self) -> RunInfo | None:
        """The (first) run of the file, from its header or else its ``run_start`` line."""
        return next(iter(self.runs.values()), None)

    def records_of(self, run_id: str) -> list[LogRecord]:
        """The records of one run, in file order."""
        return [record for record in self.records if record.run_id == run_id]


def read_log(path: str | Path) -> RunLog:
    """Parse a log file, going on past bad lines; raise :class:`LogNotFoundError` if it cannot be
    opened."""
    log = RunLog(Path(path))
    try:
        handle = log.path.open("rb")
    except OSError as exc:
        raise LogNotFoundError(f"{path}: cannot read run log: {exc.strerror}") from None
    seen_lines = False
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            seen_lines = True
            _read_line(log, number, line)
    if not seen_lines:
        log.problems.append(
            LogProblem(str(path), 0, "empty file: the run wrote nothing (did it crash at once?)")
        )
    _report_orphans(log)
    return log


def _read_line(log: RunLog, number: int, line: bytes) -> None:
    def problem(message: str) -> None:
        log.problems.append(LogProblem(str(log.path), number, message))

    try:
        data = json.loads(line.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError or JSONDecodeError
        if not line.endswith(b"\n"):
            problem("truncated last line (the writer stopped in the middle of it)")
        elif isinstance(exc, json.JSONDecodeError):
            problem(f"not valid JSON: {exc.msg} at column {exc.colno}")
        else:
            problem("not UTF-8 text")
        return
    if not isinstance(data, dict):
        problem(f"expected a JSON object, got {type(data).__name__}")
        return
    try:
        if "record" in data:
            _read_header(log, data)
            payload: Event | MetricsPoint | None = None
        elif data.get("event") == MetricsPoint.kind:
            payload = _aware(MetricsPoint.from_dict(data))
        else:
            payload = _aware(event_from_dict(data))
    except (EventDecodeError, TypeError, ValueError) as exc:
        problem(str(exc))
        return
    truncated = data.get("truncated")
    if truncated:
        log.truncated_lines.append(number)
    if payload is None:
        return
    if isinstance(payload, RunInfo):
        log.runs.setdefault(payload.run_id, payload)
    fields = tuple(str(name) for name in truncated) if isinstance(truncated, list) else ()
    log.records.append(LogRecord(number, payload, fields))


def _read_header(log: RunLog, data: dict[str, Any]) -> None:
    if data["record"] != "header":
        raise EventDecodeError(f"unknown record type {data['record']!r} (known: header)")
    _check_version(data, "header")
    run = data.get("run")
    if not isinstance(run, dict):
        raise EventDecodeError("header: 'run' must be an object")
    info = _aware(RunInfo.from_dict(run))
    log.runs.setdefault(info.run_id, info)


def _aware(event: _E) -> _E:
    """The writer always writes UTC offsets; a naive timestamp cannot be placed on a timeline."""
    if event.timestamp.tzinfo is None:
        raise EventDecodeError(f"{event.kind}: timestamp {event.timestamp} has no UTC offset")
    return event


def _check_version(data: Mapping[str, Any], what: str) -> None:
    version = data.get("schema_version")
    if version not in READABLE_VERSIONS:
        readable = ", ".join(map(str, sorted(READABLE_VERSIONS)))
        raise EventDecodeError(
            f"{what}: schema_version {version!r} is not supported (this rlm-core reads {readable})"
        )


def _report_orphans(log: RunLog) -> None:
    """Records of a run whose header and run_start are both missing cannot be replayed: there is
    no RunInfo to pass as ``run``."""
    orphans: dict[str, list[int]] = {}
    for record in log.records:
        if record.run_id not in log.runs:
            orphans.setdefault(record.run_id, []).append(record.line_number)
    for run_id, lines in orphans.items():
        log.problems.append(
            LogProblem(
                str(log.path),
                lines[0],
                f"{len(lines)} line(s) of run {run_id!r} have no header or run_start line "
                "before them; they cannot be replayed",
            )
        )


def iter_hook_calls(log: RunLog, run_id: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(hook, kwargs)`` pairs in file order, for ``getattr(manager.hook, hook)(**kwargs)``.

    ``run`` is the run's RunInfo from its header (or its ``run_start`` line). A run whose log has a
    header but no ``run_start`` line (the tracker joined late) gets a ``run_start`` first. Records
    without any RunInfo are skipped; :func:`read_log` reported them as a problem.
    """
    started: set[str] = set()
    for record in log.records:
        if run_id is not None and record.run_id != run_id:
            continue
        run = log.runs.get(record.run_id)
        if run is None:
            continue
        payload = record.payload
        if isinstance(payload, RunInfo):
            started.add(payload.run_id)
            yield "run_start", {"run": payload}
            continue
        if record.run_id not in started:
            started.add(record.run_id)
            yield "run_start", {"run": run}
        if isinstance(payload, MetricsPoint):
            yield "metrics", {"run": run, "values": dict(payload.values), "step": payload.step}
        else:
            yield payload.kind, {"run": run, PAYLOAD_ARGUMENTS[payload.kind]: payload}


def find_logs(directory: str | Path = DEFAULT_LOG_DIR) -> list[Path]:
    """Every ``*.jsonl`` file under ``directory`` (templates may use subdirectories), sorted."""
    return sorted(path for path in Path(directory).rglob("*.jsonl") if path.is_file())


LATEST = "latest"
"""The run reference that means the newest run under the log directory."""


def locate_run(reference: str, directory: str | Path = DEFAULT_LOG_DIR) -> tuple[Path, str | None]:
    """The log file for ``reference`` and the run id to show from it (None: every run in it).

    ``reference`` is a file (also ``NAME.jsonl`` under ``directory``), ``latest`` (the newest
    run), a run id or the start of one: looked up as ``DIRECTORY/RUN_ID.jsonl``, then in the
    headers of every log under ``DIRECTORY``. Raises :class:`LogNotFoundError` when nothing or
    more than one run matches.
    """
    as_path = Path(reference)
    if as_path.is_file():
        return as_path, None
    if as_path.is_dir():
        raise LogNotFoundError(
            f"{reference}: is a directory, not a run log (try: rlm runs list --dir {reference})"
        )
    for named in (Path(directory) / reference, Path(directory) / f"{reference}.jsonl"):
        if named.is_file():
            return named, None
    logged = {path: logged_run_ids(path) for path in find_logs(directory)}
    if reference == LATEST:
        newest = max(
            (
                (run_id, path.stat().st_mtime, path)
                for path, ids in logged.items()
                for run_id in ids
            ),
            default=None,
        )
        if newest is None:
            raise LogNotFoundError(f"no runs logged under {directory}/ yet")
        return newest[2], newest[0]
    matches = sorted(
        (run_id, path)
        for path, ids in logged.items()
        for run_id in ids
        if run_id.startswith(reference)
    )
    exact = [(run_id, path) for run_id, path in matches if run_id == reference]
    if exact or len(matches) == 1:
        run_id, path = (exact or matches)[0]
        return path, run_id
    if matches:
        shown = ", ".join(run_id for run_id, _ in matches[:5])
        more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
        raise LogNotFoundError(
            f"run id {reference!r} is ambiguous: {len(matches)} runs start with it "
            f"({shown}{more}); give more of it"
        )
    if as_path.suffix == ".jsonl" or "/" in reference:
        raise LogNotFoundError(f"{reference}: no such file")
    raise LogNotFoundError(
        f"no run {reference!r}: it is not a file, and no log under {directory}/ has a run id "
        "that starts with it"
    )


def logged_run_ids(path: Path) -> set[str]:
    """Run ids named by the header and run_start lines of a log, without decoding the rest."""
    found: set[str] = set()
    try:
        with path.open("rb") as handle:
            for line in handle:
                if not line.startswith(_HEADER_PREFIXES):
                    continue
                try:
                    data = json.loads(line)
                except ValueError:
                    continue
                run = data.get("run", data)
                if isinstance(run, dict) and isinstance(run.get("run_id"), str):
                    found.add(run["run_id"])
    except OSError:
        return found
    return found
