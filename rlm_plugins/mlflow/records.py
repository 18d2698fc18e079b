"""What the engine thread hands to the MLflow worker: small immutable records, built without I/O.

Metric points carry the timestamp of the event they come from (milliseconds since the epoch), so
a replay of the same events produces identical points, which MLflow stores only once.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TypeAlias

from rlm_core.events import Event, RunInfo
from rlm_core.runlog import MetricsPoint

__all__ = [
    "Artifact",
    "End",
    "MetricPoint",
    "Record",
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
    """Find or create the MLflow run of ``run``, named ``run_name``, with its params and tags
    (``tags``: the tracker's configured ones)."""

    run: RunInfo
    run_name: str
    tags: tuple[tuple[str, str], ...] = ()

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
class End:
    """Upload the run's log (built from ``events``, the run's hook calls), end the MLflow run
    with ``status`` at ``end_time`` (ms), describe it, and mark it complete. A run that did not
    fully arrive has the same log written to a spool file instead. With ``trace``, the run's
    spans become an MLflow trace linked to the run."""

    run: RunInfo
    status: str
    end_time: int
    description: str
    events: tuple[Event | MetricsPoint, ...]
    trace: bool = False

    @property
    def run_id(self) -> str:
        return self.run.run_id


Record: TypeAlias = Start | Values | Artifact | End
