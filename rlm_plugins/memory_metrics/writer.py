"""The state file's rows, written off the engine thread.

``run_end`` hands a run's row to a :class:`~rlm_core.delivery.BackgroundDelivery` worker and
returns: an SQLite commit takes a millisecond on an idle disk but tens of milliseconds on a busy
one, and hooks must not hold up the engine. There is one writer per state file and process
(:func:`writer_for`): every run's plugin manager builds its own tracker, and they must not each
leave a thread behind. Each tracker keeps its runs' :class:`Outcomes` (stored, pending, or not
written and why), so ``run_location`` tells the truth, and a row that could not be written is
logged with its run id and counted, never lost silently.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from rlm_core.delivery import BackgroundDelivery, DeliveryStats
from rlm_core.logs import get_logger
from rlm_plugins.memory_metrics.state import RunRow, write_run

__all__ = ["FLUSH_TIMEOUT", "Outcome", "Outcomes", "PendingRow", "StateWriter", "writer_for"]

FLUSH_TIMEOUT = 15.0
"""Default bound of ``flush`` and of the flush at process exit: longer than the state file's
own lock timeout (10 s), so a file another process holds fails with a reason instead."""

log = get_logger("rlm.memory_metrics")


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of a run's row; ``reason`` says why it was not written."""

    state: Literal["pending", "stored", "failed"]
    reason: str | None = None


class Outcomes:
    """One tracker's record of what became of its runs' rows (it goes with the tracker)."""

    def __init__(self) -> None:
        self._by_run: dict[str, Outcome] = {}
        self._lock = threading.Lock()

    def get(self, run_id: str) -> Outcome | None:
        with self._lock:
            return self._by_run.get(run_id)

    def set(self, run_id: str, outcome: Outcome) -> None:
        with self._lock:
            self._by_run[run_id] = outcome


@dataclasses.dataclass(frozen=True)
class PendingRow:
    """A run's row, built on the worker (measuring a replayed run reads the memory database),
    and where to note its outcome."""

    run_id: str
    build: Callable[[], RunRow]
    outcomes: Outcomes


def writer_for(path: Path) -> StateWriter:
    """The process's writer of the state file at ``path``."""
    with _writers_lock:
        writer = _writers.get(path)
        if writer is None:
            writer = _writers[path] = StateWriter(path)
        return writer


class StateWriter:
    """The worker of one state file. It starts with the first row, so a plugin that is only
    listed (``rlm plugins``) starts no thread, and it lives as long as the process: trackers
    flush it but never stop it, since other trackers of the file may still hand it rows. At
    process exit it gets one bounded flush."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._delivery: BackgroundDelivery[PendingRow] | None = None
        self._lock = threading.Lock()

    def submit(self, row: PendingRow) -> None:
        """Queue the row; returns at once."""
        row.outcomes.set(row.run_id, Outcome("pending"))
        with self._lock:
            if self._delivery is None:
                self._delivery = BackgroundDelivery(
                    self._write,
                    name="rlm-memory-metrics",
                    batch_size=1,  # one transaction per run: each row stored or failed alone
                    when_full="drop",  # never block the engine thread; drops are reported
                    exit_timeout=FLUSH_TIMEOUT,
                    on_drop=self._dropped,
                )
            delivery = self._delivery
        delivery.submit(row)

    @property
    def stats(self) -> DeliveryStats:
        """Rows submitted, written (delivered), failed, dropped and still pending."""
        with self._lock:
            delivery = self._delivery
        if delivery is None:
            return DeliveryStats(submitted=0, delivered=0, failed=0, dropped=0, pending=0)
        return delivery.stats

    def flush(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for the rows queued so far to be written or to fail."""
        with self._lock:
            delivery = self._delivery
        return True if delivery is None else delivery.flush(timeout)

    def _write(self, batch: list[PendingRow]) -> None:
        """Store the rows; the outcome is settled here, before the delivery counts the row, so
        whoever a flush wakes sees it."""
        for pending in batch:
            try:
                write_run(self.path, pending.build())
            except Exception as exc:
                self._not_written([pending], f"{type(exc).__name__}: {exc}")
                raise  # counted as failed
            pending.outcomes.set(pending.run_id, Outcome("stored"))

    def _dropped(self, batch: list[PendingRow]) -> None:
        self._not_written(batch, "the queue was full, or the flush at process exit timed out")

    def _not_written(self, batch: list[PendingRow], reason: str) -> None:
        for pending in batch:
            log.warning(
                "memory_metrics: run %s was not stored in %s: %s",
                pending.run_id,
                self.path,
                reason,
            )
            pending.outcomes.set(pending.run_id, Outcome("failed", reason))


_writers: dict[Path, StateWriter] = {}
_writers_lock = threading.Lock()
