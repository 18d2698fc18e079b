"""What the engine thread hands to the MLflow worker: small immutable records, built without I/O.

Metric points carry the timestamp of the event they come from (milliseconds since the epoch), so
a replay of the same events produces identical points, which MLflow stores only once.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TypeAlias

from rlm_core.events import RunInfo

__all__ = [
    "Artifact",
    "End",
    "LinkTraces",
    "MetricPoint",
    "Record",
    "RunLogText",
    "Start",
    "Values",
    "millis",
]

MetricPoint: TypeAlias = tuple[str, float, int, int]
"""``(key, value, timestamp in ms, step)``."""


def millis(moment: datetime) -> int:
    """MLflow's timestamps: integer milliseconds since the epoch."""
    return int(moment.timestamp() * 1000)


@dataclasses.dataclass(frozen=True, slots=True)
class Start:
    """Find or create the MLflow run of ``run``, with its params and tags."""

    run: RunInfo

    @property
    def run_id(self) -> str:
        return self.run.run_id


@dataclasses.dataclass(frozen=True, slots=True)
class Values:
    """Metric points and tags of one run; consecutive ones are merged into ``log_batch`` calls."""

    run_id: str
    metrics: tuple[MetricPoint, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Artifact:
    """A text artifact, e.g. ``answer.md``."""

    run_id: str
    name: str
    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class RunLogText:
    """The run's log (:mod:`rlm_core.runlog` format, already redacted), uploaded as ``name``."""

    run_id: str
    name: str
    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class End:
    """End the MLflow run with ``status`` at ``end_time`` (ms) and mark it complete."""

    run_id: str
    status: str
    end_time: int


@dataclasses.dataclass(frozen=True, slots=True)
class LinkTraces:
    """Link the run's DSPy traces to it, once MLflow has exported them."""

    run_id: str


Record: TypeAlias = Start | Values | Artifact | RunLogText | End | LinkTraces
