"""The spool: spans that did not reach the endpoint, kept as a run log for ``rlm replay``.

A spool file is an ordinary run log (header line, then one line per hook call) holding only the
payloads whose spans were not acknowledged, so replaying it into the tracker sends exactly those
spans again, with their original ids.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from rlm_core import __version__
from rlm_core._redact import Redactor
from rlm_core.events import SCHEMA_VERSION, Event, JSONValue, RunInfo

__all__ = ["MetricsCall", "write_spool"]

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")


@dataclasses.dataclass(frozen=True)
class MetricsCall:
    """A ``metrics`` hook call (it has no event class)."""

    values: dict[str, float]
    step: int | None
    timestamp: datetime


def write_spool(
    directory: Path, run: RunInfo, events: Iterable[Event], metrics: Iterable[MetricsCall]
) -> Path:
    """Write ``DIRECTORY/RUN_ID.jsonl``, redacted like every file rlm-core writes."""
    redactor = Redactor.from_environment()
    path = directory / f"{_UNSAFE_NAME_CHARS.sub('_', run.run_id) or '_'}.jsonl"
    lines: list[dict[str, JSONValue]] = [
        {
            "record": "header",
            "schema_version": SCHEMA_VERSION,
            "rlm_core_version": __version__,
            "run": run.to_dict(),
        }
    ]
    lines.extend(_metrics_line(run.run_id, call) for call in metrics)
    lines.extend(event.to_dict() for event in sorted(events, key=lambda event: event.seq))
    directory.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(json.dumps(redactor.json(line), ensure_ascii=False) + "\n")
    return path


def _metrics_line(run_id: str, call: MetricsCall) -> dict[str, JSONValue]:
    return {
        "event": "metrics",
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "values": {
            name: value if math.isfinite(value) else None for name, value in call.values.items()
        },
        "step": call.step,
        "timestamp": call.timestamp.isoformat(),
    }
