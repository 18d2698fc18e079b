"""Diagnostics of rlm-core and its trackers, through structlog.

``get_logger(name)`` gives a structlog logger over the standard-library logger ``name`` (so an
application's logging configuration, and pytest's ``caplog``, see every record). Each record is
one line for people (the sentence, with the plugin, hook, error and count in it) or, with
``RLM_LOG_FORMAT=json``, one JSON object with those as fields. A traceback is added only when
asked for: ``RLM_TRACE_PLUGINS=1`` or ``rlm -v``. Inside ``structlog.testing.capture_logs()``
the records are captured as structlog entries, the fields as keys, so tests read them as data.
structlog itself is imported when the first record is logged, not before, so importing a module
that logs costs nothing at start-up.

Plugins log the same way: ``log = get_logger("rlm.my_tracker")``, then
``log.warning("my_tracker: upload failed: %s", error, error=str(error))``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any

__all__ = ["FORMAT_VARIABLE", "TRACEBACK_VARIABLE", "Logger", "configure_cli", "get_logger"]

FORMAT_VARIABLE = "RLM_LOG_FORMAT"
TRACEBACK_VARIABLE = "RLM_TRACE_PLUGINS"
_TRUE = frozenset({"1", "true", "yes", "on"})

_verbose = False
_cli_handler: logging.Handler | None = None


def verbose() -> bool:
    """Tracebacks and third-party chatter wanted: ``rlm -v`` or ``RLM_TRACE_PLUGINS=1``."""
    return _verbose or os.environ.get(TRACEBACK_VARIABLE, "").strip().lower() in _TRUE


def json_lines() -> bool:
    """``RLM_LOG_FORMAT=json``: one JSON object per record instead of a sentence."""
    return os.environ.get(FORMAT_VARIABLE, "").strip().lower() == "json"


class Logger:
    """A structlog logger over the standard-library logger ``name``, built on first use.

    ``debug``/``info``/``warning``/``error`` take the sentence (with ``%`` arguments, like
    :mod:`logging`), ``exc_info`` and any number of keyword fields, which JSON lines carry.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.stdlib = logging.getLogger(name)
        self._bound: Any = None

    def debug(self, event: str, *args: object, **fields: Any) -> None:
        self._log(logging.DEBUG, "debug", event, args, fields)

    def info(self, event: str, *args: object, **fields: Any) -> None:
        self._log(logging.INFO, "info", event, args, fields)

    def warning(self, event: str, *args: object, **fields: Any) -> None:
        self._log(logging.WARNING, "warning", event, args, fields)

    def error(self, event: str, *args: object, **fields: Any) -> None:
        self._log(logging.ERROR, "error", event, args, fields)

    def exception(self, event: str, *args: object, **fields: Any) -> None:
        """``error`` with the exception being handled (its traceback only when verbose)."""
        self._log(logging.ERROR, "error", event, args, {"exc_info": True, **fields})

    def _log(
        self, level: int, method: str, event: str, args: tuple[object, ...], fields: Any
    ) -> None:
        if _capturing():
            import structlog

            message = event % args if args else event
            getattr(structlog.get_logger(), method)(message, logger=self.name, **fields)
            return
        if not self.stdlib.isEnabledFor(level):
            return  # structlog is not imported for a record nobody prints
        message = event % args if args else event
        if self._bound is None:
            import structlog

            self._bound = structlog.wrap_logger(
                self.stdlib,
                processors=[
                    structlog.processors.add_log_level,
                    _traceback_when_verbose,
                    _render,
                ],
                wrapper_class=structlog.stdlib.BoundLogger,
            )
        getattr(self._bound, method)(message, **fields)


def _capturing() -> bool:
    """Inside ``structlog.testing.capture_logs()`` (which cannot be open if structlog is not
    even imported)."""
    if "structlog.testing" not in sys.modules:
        return False
    import structlog
    from structlog.testing import LogCapture

    return any(isinstance(step, LogCapture) for step in structlog.get_config()["processors"])


def get_logger(name: str) -> Logger:
    """The logger of component ``name`` (``rlm.plugins``, ``rlm.my_tracker``, ...)."""
    return Logger(name)


def _traceback_when_verbose(
    logger: object, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    exc_info = event.pop("exc_info", None)
    if exc_info and verbose():
        import traceback

        if isinstance(exc_info, BaseException):
            lines = traceback.format_exception(exc_info)
        else:
            lines = traceback.format_exception(*sys.exc_info())
        event["exception"] = "".join(lines).rstrip()
    return event


def _render(logger: object, method: str, event: MutableMapping[str, Any]) -> str:
    if json_lines():
        import orjson

        record = {"logger": getattr(logger, "name", None), **event}
        return orjson.dumps(record, default=str).decode()
    line = str(event["event"])
    exception = event.get("exception")
    return f"{line}\n{exception}" if exception else line


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes (like logging's last resort), not
    to the stream that was current when the command started."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_cli(*, verbose_output: bool) -> None:
    """How the ``rlm`` command prints diagnostics: on stderr, ``rlm: `` and the sentence (or the
    JSON object), warnings and up; with ``verbose_output`` (``-v``) info too, and tracebacks."""
    global _cli_handler, _verbose
    _verbose = verbose_output
    root = logging.getLogger("rlm")
    if _cli_handler is not None:
        root.removeHandler(_cli_handler)
    _cli_handler = _StderrHandler()
    _cli_handler.setFormatter(
        logging.Formatter("%(message)s" if json_lines() else "rlm: %(message)s")
    )
    root.addHandler(_cli_handler)
    root.setLevel(logging.INFO if verbose_output else logging.WARNING)
