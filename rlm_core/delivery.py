"""Background delivery for plugins whose backend is slow: the engine thread only enqueues.

A :class:`BackgroundDelivery` owns a bounded queue and one worker thread that hands items to the
plugin's ``deliver(batch)`` function in batches. ``flush(timeout)`` waits for what was queued so
far, never longer than ``timeout``. At process exit every open helper gets one bounded flush; the
worker is a daemon thread, so a backend that never returns cannot hang the exit. Nothing is lost
silently: items are counted as delivered, failed (``deliver`` raised) or dropped (queue full, or
still queued when the helper was closed), and the counts are in :attr:`stats`.

Setting up the backend (creating a database, migrating its schema) is not delivery: time the
worker spends inside :meth:`BackgroundDelivery.preparing` does not count against a ``flush``
timeout, up to ``max_prepare`` seconds.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import dataclasses
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, Literal, TypeVar

from rlm_core.logs import get_logger

__all__ = ["BackgroundDelivery", "DeliveryStats", "flush_open_helpers"]

T = TypeVar("T")
log = get_logger("rlm.delivery")

_open_helpers: weakref.WeakSet[BackgroundDelivery[object]] = weakref.WeakSet()
_EXIT_FLUSH_TIMEOUT = 5.0
_MAX_PREPARE = 300.0


@dataclasses.dataclass(frozen=True)
class DeliveryStats:
    """Counters of one helper; ``pending`` were accepted but not yet delivered or given up."""

    submitted: int
    delivered: int
    failed: int
    dropped: int
    pending: int


class BackgroundDelivery(Generic[T]):
    """A bounded queue drained by a worker thread in batches.

    :param deliver: called on the worker with a non-empty list of items; if it raises, those
        items count as failed and ``on_failure`` (if given) receives them with the exception,
        e.g. to write them to a spool file.
    :param when_full: ``"block"`` waits up to ``block_timeout`` seconds for room, then drops;
        ``"drop"`` drops at once. Dropped items are counted, and ``on_drop`` receives them.
    :param linger: least seconds an item waits for company before it is delivered, and between
        two deliveries, so a backend with a high cost per call (a database commit) gets fewer,
        fuller batches, and a burst of work (a whole short run) is sent after it rather than
        competing with it. A ``flush`` cuts the wait short.
    """

    def __init__(
        self,
        deliver: Callable[[list[T]], object],
        *,
        name: str = "rlm-delivery",
        max_queue: int = 10_000,
        batch_size: int = 100,
        when_full: Literal["block", "drop"] = "block",
        block_timeout: float = 1.0,
        exit_timeout: float = _EXIT_FLUSH_TIMEOUT,
        linger: float = 0.0,
        on_failure: Callable[[list[T], Exception], object] | None = None,
        on_drop: Callable[[list[T]], object] | None = None,
        max_prepare: float = _MAX_PREPARE,
    ) -> None:
        if max_queue < 1 or batch_size < 1:
            raise ValueError("max_queue and batch_size must be at least 1")
        self.name = name
        self._deliver = deliver
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._when_full = when_full
        self._block_timeout = block_timeout
        self._exit_timeout = exit_timeout
        self._linger = linger
        self._max_prepare = max_prepare
        self._prepare_started: float | None = None
        self._prepared_for = 0.0
        self._flushing = 0
        self._next_delivery = 0.0
        self._oldest = 0.0
        self._on_failure = on_failure
        self._on_drop = on_drop
        self._queue: collections.deque[T] = collections.deque()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._submitted = 0
        self._delivered = 0
        self._failed = 0
        self._dropped = 0
        self._in_flight = 0
        self._closed = False
        self._logged_failure = False
        self._logged_drop = False
        self._worker = threading.Thread(target=self._run, name=name, daemon=True)
        self._worker.start()
        _open_helpers.add(self)  # type: ignore[arg-type]

    @property
    def stats(self) -> DeliveryStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return DeliveryStats(
                submitted=self._submitted,
                delivered=self._delivered,
                failed=self._failed,
                dropped=self._dropped,
                pending=len(self._queue) + self._in_flight,
            )

    def submit(self, item: T) -> bool:
        """Queue ``item``; False (and counted as dropped) if there was no room or it is closed."""
        with self._changed:
            full = not self._closed and len(self._queue) >= self._max_queue
            if full and self._when_full == "block":
                deadline = time.monotonic() + self._block_timeout
                while len(self._queue) >= self._max_queue and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._changed.wait(remaining)
            if self._closed or len(self._queue) >= self._max_queue:
                self._submitted += 1
                self._dropped += 1
                dropped = True
            else:
                if not self._queue:
                    self._oldest = time.monotonic()
                self._queue.append(item)
                self._submitted += 1
                self._changed.notify_all()
                dropped = False
        if dropped:
            self._report_drop([item])
        return not dropped

    @contextlib.contextmanager
    def preparing(self) -> Iterator[None]:
        """Mark backend set-up done by ``deliver`` (on the worker): while inside, waiting
        ``flush`` calls extend their deadline, up to ``max_prepare`` seconds in all."""
        with self._changed:
            self._prepare_started = time.monotonic()
        try:
            yield
        finally:
            with self._changed:
                self._prepared_for += time.monotonic() - self._prepare_started
                self._prepare_started = None
                self._changed.notify_all()

    def _preparation(self) -> float:
        """Seconds spent preparing so far (with the lock held)."""
        ongoing = 0.0 if self._prepare_started is None else time.monotonic() - self._prepare_started
        return self._prepared_for + ongoing

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted before this call is delivered or failed.

        Returns False when ``timeout`` seconds passed first (the items stay queued). Time the
        worker spends :meth:`preparing` the backend meanwhile is added to the timeout.
        """
        started = time.monotonic()
        with self._changed:
            prepared_before = self._preparation()
            target = self._submitted - self._dropped
            dropped_before = self._dropped
            self._flushing += 1
            self._changed.notify_all()  # a lingering worker sends what it has now
            try:
                # Items that close() gives up on while we wait will never be delivered.
                while self._delivered + self._failed < target - (self._dropped - dropped_before):
                    setup = min(self._preparation() - prepared_before, self._max_prepare)
                    remaining = started + timeout + setup - time.monotonic()
                    if self._prepare_started is not None and setup < self._max_prepare:
                        remaining = max(remaining, 0.05)  # set-up is not billed: wait on
                    if remaining <= 0 or not self._worker.is_alive():
                        return False
                    self._changed.wait(remaining)
                return True
            finally:
                self._flushing -= 1

    def close(self, timeout: float) -> bool:
        """Flush for at most ``timeout`` seconds, then stop; what is left is counted as dropped.

        Returns True when everything was delivered or failed (nothing dropped at close).
        """
        flushed = self.flush(timeout)
        with self._changed:
            self._closed = True
            leftover = list(self._queue)
            self._queue.clear()
            self._dropped += len(leftover)
            self._changed.notify_all()
        _open_helpers.discard(self)  # type: ignore[arg-type]
        if leftover:
            self._report_drop(leftover)
        return flushed and not leftover

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._queue and not self._closed:
                    self._changed.wait()
                if self._closed and not self._queue:
                    return
                self._linger_for_more()
                batch = [
                    self._queue.popleft() for _ in range(min(self._batch_size, len(self._queue)))
                ]
                self._in_flight = len(batch)
                self._changed.notify_all()
            self._deliver_batch(batch)

    def _linger_for_more(self) -> None:
        """With the lock held: until ``linger`` has passed since the last delivery and since the
        oldest queued item arrived, wait for a fuller batch, unless someone flushes."""
        deadline = max(self._next_delivery, self._oldest + self._linger)
        while (
            len(self._queue) < self._batch_size
            and not self._flushing
            and not self._closed
            and (remaining := deadline - time.monotonic()) > 0
        ):
            self._changed.wait(remaining)

    def _deliver_batch(self, batch: list[T]) -> None:
        error: Exception | None = None
        try:
            self._deliver(batch)
        except Exception as exc:
            error = exc
        with self._changed:
            self._in_flight = 0
            self._next_delivery = time.monotonic() + self._linger
            if error is None:
                self._delivered += len(batch)
            else:
                self._failed += len(batch)
            self._changed.notify_all()
        if error is not None:
            self._report_failure(batch, error)

    def _report_failure(self, batch: Sequence[T], error: Exception) -> None:
        if not self._logged_failure:
            self._logged_failure = True
            log.warning(
                "%s: delivery of %d item(s) failed (further failures are only counted): %s: %s",
                self.name,
                len(batch),
                type(error).__name__,
                error,
            )
        if self._on_failure is not None:
            try:
                self._on_failure(list(batch), error)
            except Exception:
                log.exception("%s: on_failure handler raised", self.name)

    def _report_drop(self, items: list[T]) -> None:
        if not self._logged_drop:
            self._logged_drop = True
            log.warning(
                "%s: dropped %d item(s): queue full or closed (further drops are only counted)",
                self.name,
                len(items),
            )
        if self._on_drop is not None:
            try:
                self._on_drop(items)
            except Exception:
                log.exception("%s: on_drop handler raised", self.name)


def flush_open_helpers(timeout: float | None = None) -> bool:
    """Flush every open helper within one shared ``timeout`` (default: the largest of their
    exit timeouts). True when all of them delivered everything submitted so far."""
    helpers = list(_open_helpers)
    if timeout is None:
        timeout = max((helper._exit_timeout for helper in helpers), default=0.0)
    deadline = time.monotonic() + timeout
    flushed = True
    for helper in helpers:
        flushed = helper.flush(max(0.0, deadline - time.monotonic())) and flushed
    return flushed


@atexit.register
def _flush_open_helpers() -> None:
    """Give the open helpers one shared, bounded flush at interpreter exit."""
    helpers = list(_open_helpers)
    if not helpers:
        return
    deadline = time.monotonic() + max(helper._exit_timeout for helper in helpers)
    for helper in helpers:
        helper.close(max(0.0, deadline - time.monotonic()))
