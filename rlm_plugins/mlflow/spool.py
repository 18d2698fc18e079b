"""Spool files: the events of a run that did not fully reach MLflow, as a run log that
``rlm replay FILE --to mlflow`` reads. Written on the delivery worker, never over an existing
file (that may be the very log a replay is reading), so nothing recorded is ever lost.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from rlm_core._redact import Redactor
from rlm_core.events import Event, RunInfo
from rlm_core.runlog import MetricsPoint, run_log_text

__all__ = ["file_name_safe", "write_spool"]

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def file_name_safe(value: str) -> str:
    return _UNSAFE_NAME_CHARS.sub("_", value) or "_"


def write_spool(
    directory: Path, run: RunInfo, events: tuple[Event | MetricsPoint, ...], redactor: Redactor
) -> Path:
    """Write the run's events as a run log to a new file in ``directory``; its path."""
    text = run_log_text(run, events, redactor.json)
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
    raise FileExistsError(f"{directory}: no free spool file name for run {run.run_id}")
