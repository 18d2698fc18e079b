"""Cassettes: recorded LM responses, replayed in order through DSPy's own LM class.

A cassette is a JSONL file. The optional first line is a header
``{"cassette": 1, "recorded_with": "...", "created": "...", "question": "...",
"ontology_sha256": "..."}``; every other line is one LM
response: ``{"role": "root", "text": "...", "usage": {"prompt_tokens": 12, "completion_tokens":
3}, "model": "openai/gpt-4o-mini", "latency_ms": 300}``. ``role`` says which LM answered:
``root`` (the RLM's own calls), ``sub`` (``llm_query`` from REPL code), or another role such as
``judge``. Each scripted LM replays the responses of its role in file order, so the root and sub
LMs interleave exactly as they did live. ``usage``, ``model`` and ``latency_ms`` are optional;
``latency_ms`` makes the scripted LM wait that long before answering (releasing the GIL, like a
network call), so benchmarks can show what running LM-bound runs in parallel buys.

Replay goes through ``dspy.LM`` with a custom engine, so DSPy's callbacks, history and usage
accounting run as with a live provider.

A recorded answer replayed for another question, or over another ontology, looks right and is
wrong, so the header says what was asked (``question``) over which file (``ontology_sha256``, the
SHA-256 of the ontology file's bytes) and :meth:`Cassette.check` refuses a run that differs,
before any tracker hears of it. A header without these fields (cassettes written before they
existed, or by hand for any question) is replayed unchecked: such cassettes are scripts, and
what they were meant for is not recorded anywhere to check against.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import threading
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from rlm_core.errors import RLMError

__all__ = [
    "CASSETTE_VERSION",
    "Cassette",
    "CassetteError",
    "CassetteExhausted",
    "CassetteMismatch",
    "CassetteWriter",
    "Response",
    "ScriptedEngine",
    "ontology_digest",
]

CASSETTE_VERSION = 1


class CassetteError(RLMError):
    """A cassette file is missing or malformed; the message names the file and line."""


class CassetteMismatch(CassetteError):
    """A cassette was recorded for another question or another ontology file."""


class CassetteExhausted(RLMError):
    """A scripted LM was asked for more responses than its cassette holds."""


@dataclasses.dataclass(frozen=True)
class Response:
    """One recorded LM response."""

    role: str
    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    model: str | None = None
    latency_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"role": self.role, "text": self.text}
        if self.prompt_tokens is not None or self.completion_tokens is not None:
            data["usage"] = {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
            }
        if self.model:
            data["model"] = self.model
        if self.latency_ms is not None:
            data["latency_ms"] = self.latency_ms
        return data


class Cassette:
    """The responses of a cassette file, handed out per role in file order (thread-safe)."""

    def __init__(
        self,
        responses: Iterable[Response],
        source: str = "<memory>",
        *,
        question: str | None = None,
        ontology_sha256: str | None = None,
    ) -> None:
        self.source = source
        self.question = question
        """The question the responses answered, when the header records it."""
        self.ontology_sha256 = ontology_sha256
        """SHA-256 of the ontology file the run read, when the header records it."""
        self._queues: dict[str, deque[Response]] = {}
        self._used: dict[str, int] = {}
        self._lock = threading.Lock()
        for response in responses:
            self._queues.setdefault(response.role, deque()).append(response)

    @classmethod
    def load(cls, path: str | Path) -> Cassette:
        """Read a cassette file; raise :class:`CassetteError` naming the line that is wrong."""
        path = Path(path)
        try:
            lines = path.read_bytes().splitlines()
        except OSError as exc:
            raise CassetteError(f"cannot read cassette {path}: {exc.strerror}") from None
        responses = []
        header: dict[str, Any] = {}
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise CassetteError(f"{path}:{number}: not JSON: {exc}") from None
            if not isinstance(record, dict):
                raise CassetteError(f"{path}:{number}: expected a JSON object")
            if "cassette" in record:
                if record["cassette"] != CASSETTE_VERSION:
                    raise CassetteError(
                        f"{path}:{number}: cassette version {record['cassette']!r} is not "
                        f"supported (this rlm-core reads {CASSETTE_VERSION})"
                    )
                header = _header_from(record, f"{path}:{number}")
                continue
            responses.append(_response_from(record, f"{path}:{number}"))
        if not responses:
            raise CassetteError(f"cassette {path} holds no responses")
        return cls(responses, source=str(path), **header)

    def check(self, question: str, ontology: str | os.PathLike[str]) -> None:
        """Raise :class:`CassetteMismatch` when the header says the responses were recorded
        for another question, or over an ontology file with other contents."""
        if self.question is not None and self.question.strip() != question.strip():
            raise CassetteMismatch(
                f"cassette {self.source} was recorded for the question {_cut(self.question)}, "
                f"not {_cut(question)}"
            )
        if self.ontology_sha256 is None:
            return
        digest = ontology_digest(ontology)
        if digest is not None and digest != self.ontology_sha256:
            raise CassetteMismatch(
                f"cassette {self.source} was recorded over another ontology than "
                f"{os.fspath(ontology)} (the file's contents differ)"
            )

    def next(self, role: str) -> Response:
        """The next unused response of ``role``."""
        with self._lock:
            queue = self._queues.get(role)
            if not queue:
                used = self._used.get(role, 0)
                raise CassetteExhausted(
                    f"cassette {self.source} ran out of {role!r} responses after {used}: the run "
                    "asked for more LM calls than were recorded"
                )
            self._used[role] = self._used.get(role, 0) + 1
            return queue.popleft()

    def remaining(self, role: str) -> int:
        """How many responses of ``role`` are left."""
        with self._lock:
            return len(self._queues.get(role, ()))


def _cut(question: str, limit: int = 100) -> str:
    """The question quoted for a one-line message, cut when long."""
    return repr(question if len(question) <= limit else question[: limit - 1] + "…")


def ontology_digest(path: str | os.PathLike[str]) -> str | None:
    """SHA-256 (hex) of the file's bytes; None when it cannot be read (the ontology loader
    reports that). Remembered per path, size and modification time: an eval replays many
    runs over the same file."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return _digest(os.path.abspath(path), status.st_size, status.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _digest(path: str, size: int, mtime_ns: int) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _header_from(record: dict[str, Any], where: str) -> dict[str, Any]:
    header = {}
    for key in ("question", "ontology_sha256"):
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            raise CassetteError(f"{where}: {key!r} must be a string")
        header[key] = value
    return header


def _response_from(record: dict[str, Any], where: str) -> Response:
    role, text = record.get("role"), record.get("text")
    if not isinstance(role, str) or not role:
        raise CassetteError(f"{where}: 'role' must be a non-empty string")
    if not isinstance(text, str):
        raise CassetteError(f"{where}: 'text' must be a string")
    usage = record.get("usage") or {}
    if not isinstance(usage, dict):
        raise CassetteError(f"{where}: 'usage' must be an object")
    counts = []
    for key in ("prompt_tokens", "completion_tokens"):
        value = usage.get(key)
        if value is not None and (type(value) is not int or value < 0):
            raise CassetteError(f"{where}: usage.{key} must be a non-negative integer")
        counts.append(value)
    model = record.get("model")
    if model is not None and not isinstance(model, str):
        raise CassetteError(f"{where}: 'model' must be a string")
    latency = record.get("latency_ms")
    if latency is not None and (
        isinstance(latency, bool) or not isinstance(latency, int | float) or not latency >= 0
    ):
        raise CassetteError(f"{where}: 'latency_ms' must be a non-negative number")
    return Response(role, text, counts[0], counts[1], model, latency)


class ScriptedEngine:
    """A DSPy LM engine (``complete(Request) -> Response``) that answers from a cassette."""

    def __init__(self, cassette: Cassette, role: str) -> None:
        self.cassette = cassette
        self.role = role

    def complete(self, request: Any) -> Any:
        from dspy.lm15 import Message, TextPart, Usage
        from dspy.lm15 import Response as LMResponse

        recorded = self.cassette.next(self.role)
        if recorded.latency_ms:
            time.sleep(recorded.latency_ms / 1000)
        return LMResponse(
            id=None,
            model=recorded.model or f"scripted-{self.role}",
            message=Message.assistant([TextPart(recorded.text)]),
            finish_reason="stop",
            usage=Usage(
                input_tokens=recorded.prompt_tokens, output_tokens=recorded.completion_tokens
            ),
        )

    def stream(self, request: Any) -> Any:
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))

    def close(self) -> None:
        """Nothing to release."""


class CassetteWriter:
    """Appends responses to a cassette file as they happen, so a crashed run keeps its tape.

    Responses are redacted before they are written (a cassette is a file to share, and a model
    may have echoed a key), with the same redactor as every tracker.
    """

    def __init__(
        self,
        path: str | Path,
        recorded_with: str,
        *,
        question: str | None = None,
        ontology_sha256: str | None = None,
    ) -> None:
        from rlm_core._redact import Redactor

        self._redact = Redactor.from_environment().text
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = self.path.open("wb", buffering=0)
        header = {
            "cassette": CASSETTE_VERSION,
            "recorded_with": recorded_with,
            "created": datetime.now(UTC).isoformat(),
            "question": question,
            "ontology_sha256": ontology_sha256,
        }
        recorded = {key: value for key, value in header.items() if value is not None}
        self._file.write(orjson.dumps(recorded) + b"\n")

    def write(self, response: Response) -> None:
        redacted = dataclasses.replace(response, text=self._redact(response.text))
        with self._lock:
            self._file.write(orjson.dumps(redacted.to_dict()) + b"\n")

    def close(self) -> None:
        with self._lock:
            self._file.close()
