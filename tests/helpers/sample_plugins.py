"""Plugins used by the plugin-manager tests, loaded through fake entry points."""

from __future__ import annotations

from collections.abc import Mapping

from rlm_core import hookimpl
from rlm_core.events import Iteration, RunInfo, RunResult


class CountingTracker:
    """Counts events; takes settings like a real tracker."""

    def __init__(self, label: str = "default", threshold: int = 0) -> None:
        self.label = label
        self.threshold = threshold
        self.seen: list[str] = []

    @hookimpl
    def run_start(self, run: RunInfo) -> None:
        self.seen.append("run_start")

    @hookimpl
    def iteration(self, step: Iteration) -> None:
        self.seen.append("iteration")

    @hookimpl
    def run_end(self, run: RunInfo, result: RunResult) -> None:
        self.seen.append("run_end")


class RaisingTracker:
    """Raises in every hook it implements."""

    @hookimpl
    def run_start(self, run: RunInfo) -> None:
        raise RuntimeError("run_start is broken")

    @hookimpl
    def iteration(self, run: RunInfo, step: Iteration) -> None:
        raise RuntimeError("iteration is broken")

    @hookimpl
    def metrics(self, run: RunInfo, values: Mapping[str, float], step: int | None) -> None:
        raise RuntimeError("metrics is broken")

    @hookimpl
    def run_end(self, run: RunInfo, result: RunResult) -> None:
        raise RuntimeError("run_end is broken")


class ConstructorFails:
    """Cannot be constructed."""

    def __init__(self) -> None:
        raise OSError("backend directory is read-only")

    @hookimpl
    def run_start(self, run: RunInfo) -> None:
        """Never reached."""


class TypoTracker:
    """Implements a hook that does not exist."""

    @hookimpl
    def iterations(self, run: RunInfo) -> None:
        """Misspelled hook name."""
