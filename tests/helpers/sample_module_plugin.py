"""A plugin that is a module, registered as is."""

from __future__ import annotations

from rlm_core import hookimpl
from rlm_core.events import RunInfo

started: list[str] = []


@hookimpl
def run_start(run: RunInfo) -> None:
    started.append(run.run_id)
