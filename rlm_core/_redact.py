"""Secrets never written: one redactor for every place rlm-core writes to.

What counts as a secret: values of environment variables whose names look secret
(``OPENAI_API_KEY``), provider key formats (``sk-…``, ``xoxb-…``, ``ghp_…``, ``AKIA…``, ...),
``Bearer`` tokens, long tokens after key-ish words (``api_key=…``), and any value under a
key-ish name in nested data (``{"api_key": …}``; numbers there are counts and stay).

Most strings hold none; a bytes ``translate`` finds the candidates first, so the regular
expressions only look at those (this runs once per event logged).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import string
import typing
from collections.abc import Mapping
from datetime import datetime

from rlm_core.events import EVENT_TYPES, JSONValue

__all__ = ["REDACTED", "Redactor", "environment_secrets"]

REDACTED = "[REDACTED]"

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
        "span_id",
        "parent_span_id",
        "trace_id",
        "started_at",
        "timestamp",
    }
)

_SECRET_WORDS = (
    r"api[_-]?key|apikey|access[_-]?key|private[_-]?key|token|secret|passw(?:or)?d"
    r"|authorization|credential|cookie"
)
_SECRET_KEY = re.compile(_SECRET_WORDS, re.IGNORECASE)
# Provider key formats, searched inside one run of token characters.
_PROVIDER_KEY = re.compile(
    r"(?<![A-Za-z0-9])(?:sk-[\w-]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|github_pat_\w{20,}|AKIA[0-9A-Z]{16}|AIza[\w-]{35}|hf_[A-Za-z0-9]{30,}"
    r"|eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,})"
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


class Redactor:
    """Redacts secrets (and optionally cuts long strings) before anything is written down.

    Most strings hold no secret; a bytes ``translate`` finds the candidates (long runs of token
    characters, "bearer", known secret values) so the regular expressions only see those.
    """

    def __init__(self, max_field_chars: int | None, secrets: tuple[str, ...]) -> None:
        if max_field_chars is not None and (
            type(max_field_chars) is not int or max_field_chars < 1
        ):
            raise ValueError(f"max_field_chars must be a positive integer, got {max_field_chars!r}")
        self._max_chars = max_field_chars
        self._secrets = secrets
        self._secret_bytes = tuple(secret.encode("utf-8", "surrogatepass") for secret in secrets)

    @classmethod
    def from_environment(cls, max_field_chars: int | None = None) -> Redactor:
        """A redactor that knows this process's secret-looking environment variables."""
        return cls(max_field_chars, environment_secrets(os.environ))

    def text(self, value: str) -> str:
        """``value`` with every secret in it replaced by ``[REDACTED]``."""
        return self._redact(value) if self._suspicious(value) else value

    def pair(self, key: str, value: str) -> str:
        """The value to keep under ``key``: all of it redacted when the key names a secret."""
        return REDACTED if _is_secret_key(key) else self.text(value)

    def json(self, value: JSONValue, key: str = "") -> JSONValue:
        """A copy of JSON data with its strings redacted (identity fields and numbers kept)."""
        if key in _IDENTITY_KEYS:
            return value
        if isinstance(value, str):
            return self.pair(key, value) if key else self.text(value)
        if isinstance(value, dict):
            return {name: self.json(item, name) for name, item in value.items()}
        if isinstance(value, list):
            return [self.json(item) for item in value]
        return value

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

    def leaves_alone(self, kind: str, line: bytes) -> bool:
        """Whether the serialized event ``line`` of kind ``kind`` is written as it is.

        True only for events without nested data (key-named secrets hide in nested data) whose
        text, after the identity fields, passes the same first look as :meth:`scrub` gives each
        string. Saves building and walking a dict for the common events (iterations, LM calls).
        """
        plan = _field_plan(kind)
        if plan is None or plan[1] or self._max_chars is not None:
            return False
        # Events serialize run_id, seq and timestamp first; only what follows is content.
        stamp = line.find(b'"timestamp":"')
        body = line[line.find(b'"', stamp + 13) :] if stamp >= 0 else line
        return not (
            _LONG_RUN in body.translate(_FLAG_WORDS)
            or b"earer" in body
            or any(secret in body for secret in self._secret_bytes)
        )

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


def environment_secrets(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Values of secret-looking environment variables (``OPENAI_API_KEY``), longest first, so a
    key without a recognizable format is still redacted wherever it shows up."""
    values = {
        value
        for name, value in environ.items()
        if _SECRET_KEY.search(name) and len(value) >= _MIN_ENV_SECRET_CHARS
    }
    return tuple(sorted(values, key=len, reverse=True))
