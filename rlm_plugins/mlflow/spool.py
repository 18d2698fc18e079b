"""Spool files: the events of a run that did not fully reach MLflow, as a run log that
``rlm replay FILE --to mlflow`` reads. Written on the delivery worker, never over an existing
file (that may be the very log a replay is reading), so nothing recorded is ever lost.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from datetime import datetime
from pathlib import Path

from rlm_core import __version__
from rlm_core._redact import Redactor
from rlm_core.events import SCHEMA_VERSION, Event, JSONValue, RunInfo

__all__ = ["MetricsCall", "file_name_safe", "write_spool"]

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")


@dataclasses.dataclass(frozen=True)
class MetricsCall:
    """A ``metrics`` hook call, kept for the spool file (it has no event class)."""

    values: dict[str, float]
    step: int | None
    timestamp: datetime


def file_name_safe(value: str) -> str:
    return _UNSAFE_NAME_CHARS.sub("_", value) or "_"


def write_spool(
    directory: Path, run: RunInfo, events: tuple[Event | MetricsCall, ...], redactor: Redactor
) -> Path:
    """Write the run's events to a new file in ``directory`` and return its path."""
    header: dict[str, JSONValue] = {
        "record": "header",
        "schema_version": SCHEMA_VERSION,
        "rlm_core_version": __version__,
        "run": run.to_dict(),
    }
    lines = [header, *(_serialize(event, run.run_id) for event in events)]
    text = "".join(
        json.dumps(redactor.json(line), ensure_ascii=False, allow_nan=False) + "\n"
        for line in lines
    )
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


def _serialize(event: Event | MetricsCall, run_id: str) -> dict[str, JSONValue]:
    if isinstance(event, Event):
        return event.to_dict()
    return {
        "event": "metrics",
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "values": {
            name: value if math.isfinite(value) else None for name, value in event.values.items()
        },
        "step": event.step,
        "timestamp": event.timestamp.isoformat(),
    }
