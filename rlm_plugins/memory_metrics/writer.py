"""The state file's rows, written off the engine thread.

``run_end`` hands a run's row to a :class:`~rlm_core.delivery.BackgroundDelivery` worker and
returns: an SQLite commit takes a millisecond on an idle disk but tens of milliseconds on a busy
one, and hooks must not hold up the engine. The writer remembers each run's outcome (stored,
pending, or not written and why), so ``run_location`` tells the truth, and a row that could not
be written is logged with its run id and counted, never lost silently.
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

__all__ = ["FLUSH_TIMEOUT", "Outcome", "PendingRow", "StateWriter"]

FLUSH_TIMEOUT = 15.0
"""Default bound of ``close`` and of the flush at process exit: longer than the state file's
own lock timeout (10 s), so a file another process holds fails with a reason instead."""

log = get_logger("rlm.memory_metrics")


@dataclasses.dataclass(frozen=True)
class PendingRow:
    """A run's row, built on the worker (measuring a replayed run reads the memory database)."""

    run_id: str
    build: Callable[[], RunRow]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of a run's row; ``reason`` says why it was not written."""

    state: Literal["pending", "stored", "failed"]
    reason: str | None = None


class StateWriter:
    """One worker per state file; it starts with the first row, so a plugin that is only
    listed (``rlm plugins``) starts no thread."""

    def __init__(self, path: Path, exit_timeout: float = FLUSH_TIMEOUT) -> None:
        self.path = path
        self._exit_timeout = exit_timeout
        self._delivery: BackgroundDelivery[PendingRow] | None = None
        self._open = False  # whether _delivery takes rows; a row after close starts a new one
        self._earlier = _NONE  # the counts of the workers closed before
        self._outcomes: dict[str, Outcome] = {}
        self._lock = threading.Lock()

    def submit(self, row: PendingRow) -> None:
        """Queue the row; returns at once."""
        with self._lock:
            self._outcomes[row.run_id] = Outcome("pending")
            if not self._open:
                if self._delivery is not None:
                    self._earlier = _sum(self._earlier, self._delivery.stats)
                self._open = True
                self._delivery = BackgroundDelivery(
                    self._write,
                    name="rlm-memory-metrics",
                    batch_size=1,  # one transaction per run: each row stored or failed alone
                    when_full="drop",  # never block the engine thread; drops are reported
                    exit_timeout=self._exit_timeout,
                    on_drop=self._dropped,
                )
            delivery = self._delivery
        assert delivery is not None
        delivery.submit(row)

    def outcome(self, run_id: str) -> Outcome | None:
        """The run's outcome; None for a run never submitted."""
        with self._lock:
            return self._outcomes.get(run_id)

    @property
    def stats(self) -> DeliveryStats:
        """Rows submitted, written (delivered), failed, dropped and still pending."""
        with self._lock:
            delivery, earlier = self._delivery, self._earlier
        return earlier if delivery is None else _sum(earlier, delivery.stats)

    def flush(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for the rows queued so far to be written or to fail."""
        with self._lock:
            delivery = self._delivery
        return True if delivery is None else delivery.flush(timeout)

    def close(self, timeout: float) -> bool:
        """Flush, then stop the worker; rows still queued then are reported as not written."""
        with self._lock:
            delivery, self._open = self._delivery, False
        return True if delivery is None else delivery.close(timeout)

    def _write(self, batch: list[PendingRow]) -> None:
        """Store the rows; the outcome is settled here, before the delivery counts the row, so
        whoever a flush wakes sees it."""
        for pending in batch:
            try:
                write_run(self.path, pending.build())
            except Exception as exc:
                self._not_written([pending], f"{type(exc).__name__}: {exc}")
                raise  # counted as failed
            with self._lock:
                self._outcomes[pending.run_id] = Outcome("stored")

    def _dropped(self, batch: list[PendingRow]) -> None:
        self._not_written(batch, "still queued when the tracker was closed, or the queue was full")

    def _not_written(self, batch: list[PendingRow], reason: str) -> None:
        for pending in batch:
            log.warning(
                "memory_metrics: run %s was not stored in %s: %s",
                pending.run_id,
                self.path,
                reason,
            )
            with self._lock:
                self._outcomes[pending.run_id] = Outcome("failed", reason)


_NONE = DeliveryStats(submitted=0, delivered=0, failed=0, dropped=0, pending=0)


def _sum(first: DeliveryStats, second: DeliveryStats) -> DeliveryStats:
    pairs = zip(dataclasses.astuple(first), dataclasses.astuple(second), strict=True)
    return DeliveryStats(*(a + b for a, b in pairs))
