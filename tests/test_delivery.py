"""BackgroundDelivery with real threads: batching, slow, failing and stuck backends, full queues,
close, and the bounded flush at interpreter exit."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rlm_core.delivery import BackgroundDelivery, DeliveryStats

# Upper bound for anything that should be quick; only reached when something is broken.
PATIENCE = 10.0


class Backend:
    """A ``deliver`` function that records its batches.

    ``hold=True`` makes it block (before recording) until :attr:`released` is set; ``delay``
    sleeps per batch; ``fail`` decides per batch whether to raise instead of recording.
    """

    def __init__(
        self,
        *,
        hold: bool = False,
        delay: float = 0.0,
        fail: Callable[[list[int]], bool] | None = None,
    ) -> None:
        self.batches: list[list[int]] = []
        self.calls = 0
        self.entered = threading.Event()
        self.released = threading.Event()
        if not hold:
            self.released.set()
        self.delay = delay
        self.fail = fail

    def __call__(self, batch: list[int]) -> None:
        self.calls += 1
        self.entered.set()
        self.released.wait()
        if self.delay:
            time.sleep(self.delay)
        if self.fail is not None and self.fail(batch):
            raise ConnectionError(f"backend down for {batch}")
        self.batches.append(list(batch))

    @property
    def items(self) -> list[int]:
        return [item for batch in self.batches for item in batch]

    def wait_until_busy(self) -> None:
        """Wait until the worker has taken a batch and is inside ``deliver``."""
        assert self.entered.wait(PATIENCE), "the worker never called deliver"


MakeDelivery = Callable[..., BackgroundDelivery[int]]


@pytest.fixture
def make_delivery() -> Iterator[MakeDelivery]:
    """Build helpers around :class:`Backend` objects; release and close them all afterwards."""
    made: list[tuple[BackgroundDelivery[int], Backend]] = []

    def make(backend: Backend, **options: Any) -> BackgroundDelivery[int]:
        helper: BackgroundDelivery[int] = BackgroundDelivery(backend, **options)
        made.append((helper, backend))
        return helper

    yield make
    for helper, backend in made:
        backend.released.set()
        helper.close(PATIENCE)


def test_items_arrive_in_order_in_batches_no_bigger_than_batch_size(
    make_delivery: MakeDelivery,
) -> None:
    backend = Backend()
    helper = make_delivery(backend, batch_size=7)

    assert all(helper.submit(i) for i in range(100))
    assert helper.flush(PATIENCE)

    assert backend.items == list(range(100))
    assert all(1 <= len(batch) <= 7 for batch in backend.batches)
    assert helper.stats == DeliveryStats(
        submitted=100, delivered=100, failed=0, dropped=0, pending=0
    )


def test_items_queued_while_the_backend_is_busy_go_out_in_full_batches(
    make_delivery: MakeDelivery,
) -> None:
    backend = Backend(hold=True)
    helper = make_delivery(backend, batch_size=4)
    helper.submit(0)
    backend.wait_until_busy()
    for i in range(1, 11):
        helper.submit(i)
    assert helper.stats.pending == 11

    backend.released.set()
    assert helper.flush(PATIENCE)

    assert backend.batches == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    assert helper.stats == DeliveryStats(submitted=11, delivered=11, failed=0, dropped=0, pending=0)


def test_submit_does_not_wait_for_a_slow_backend_and_flush_waits_for_delivery(
    make_delivery: MakeDelivery,
) -> None:
    backend = Backend(delay=0.02)
    helper = make_delivery(backend, batch_size=1)
    count = 25  # the backend needs 25 * 0.02 = 0.5 s in all

    started = time.perf_counter()
    for i in range(count):
        assert helper.submit(i)
    submitting = time.perf_counter() - started
    assert submitting < count * backend.delay / 2

    assert helper.flush(PATIENCE)
    assert time.perf_counter() - started >= count * backend.delay * 0.9
    assert backend.items == list(range(count))
    assert helper.stats.delivered == count
    assert helper.stats.pending == 0


def test_failed_batches_are_counted_reported_and_the_worker_keeps_going(
    make_delivery: MakeDelivery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="rlm.delivery")
    failures: list[tuple[list[int], Exception]] = []
    backend = Backend(fail=lambda batch: batch[0] % 2 == 0)
    helper = make_delivery(
        backend,
        batch_size=1,
        on_failure=lambda items, error: failures.append((items, error)),
    )

    for i in range(6):
        helper.submit(i)
    assert helper.flush(PATIENCE)

    assert backend.items == [1, 3, 5]
    assert [items for items, _ in failures] == [[0], [2], [4]]
    assert all(isinstance(error, ConnectionError) for _, error in failures)
    assert str(failures[0][1]) == "backend down for [0]"
    assert helper.stats == DeliveryStats(submitted=6, delivered=3, failed=3, dropped=0, pending=0)
    warnings = [r for r in caplog.records if r.name == "rlm.delivery"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "ConnectionError" in warnings[0].getMessage()

    # still alive after the failures
    helper.submit(7)
    assert helper.flush(PATIENCE)
    assert backend.items == [1, 3, 5, 7]


def test_an_on_failure_handler_that_raises_is_logged_and_does_not_stop_the_worker(
    make_delivery: MakeDelivery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="rlm.delivery")

    def broken_handler(items: list[int], error: Exception) -> None:
        raise RuntimeError("spool disk full")

    backend = Backend(fail=lambda batch: batch == [0])
    helper = make_delivery(backend, batch_size=1, on_failure=broken_handler)

    helper.submit(0)
    helper.submit(1)
    assert helper.flush(PATIENCE)

    assert backend.items == [1]
    assert helper.stats.failed == 1
    assert any("on_failure handler raised" in r.getMessage() for r in caplog.records)


def test_flush_and_close_are_bounded_when_the_backend_never_returns(
    make_delivery: MakeDelivery,
) -> None:
    dropped: list[int] = []
    backend = Backend(hold=True)
    helper = make_delivery(backend, batch_size=1, on_drop=dropped.extend)
    for i in range(5):
        helper.submit(i)
    backend.wait_until_busy()

    started = time.monotonic()
    assert helper.flush(0.2) is False
    assert 0.15 <= time.monotonic() - started < 2

    started = time.monotonic()
    assert helper.close(0.2) is False
    assert time.monotonic() - started < 2
    # item 0 is stuck inside deliver; the four still queued are given up, not lost silently
    assert helper.stats == DeliveryStats(submitted=5, delivered=0, failed=0, dropped=4, pending=1)
    assert dropped == [1, 2, 3, 4]

    # once the backend returns, the stuck batch is counted and the worker stops
    backend.released.set()
    assert helper.flush(PATIENCE)
    assert helper.stats == DeliveryStats(submitted=5, delivered=1, failed=0, dropped=4, pending=0)
    assert backend.items == [0]


def test_drop_mode_drops_at_once_when_the_queue_is_full(make_delivery: MakeDelivery) -> None:
    dropped: list[int] = []
    backend = Backend(hold=True)
    helper = make_delivery(
        backend, max_queue=3, batch_size=1, when_full="drop", on_drop=dropped.extend
    )
    assert helper.submit(0)
    backend.wait_until_busy()  # 0 is in flight, so the queue is empty again

    assert [helper.submit(i) for i in range(1, 4)] == [True, True, True]
    started = time.monotonic()
    assert [helper.submit(i) for i in range(4, 7)] == [False, False, False]
    assert time.monotonic() - started < 0.5
    assert dropped == [4, 5, 6]
    assert helper.stats == DeliveryStats(submitted=7, delivered=0, failed=0, dropped=3, pending=4)

    backend.released.set()
    assert helper.flush(PATIENCE)
    assert backend.items == [0, 1, 2, 3]
    assert helper.stats == DeliveryStats(submitted=7, delivered=4, failed=0, dropped=3, pending=0)


def test_block_mode_waits_up_to_block_timeout_then_drops(make_delivery: MakeDelivery) -> None:
    dropped: list[int] = []
    backend = Backend(hold=True)
    helper = make_delivery(
        backend,
        max_queue=1,
        batch_size=1,
        when_full="block",
        block_timeout=0.2,
        on_drop=dropped.extend,
    )
    helper.submit(0)
    backend.wait_until_busy()
    assert helper.submit(1)  # fills the queue

    started = time.monotonic()
    assert helper.submit(2) is False
    assert 0.15 <= time.monotonic() - started < 2
    assert dropped == [2]
    assert helper.stats.dropped == 1


def test_block_mode_accepts_the_item_when_room_appears_in_time(
    make_delivery: MakeDelivery,
) -> None:
    backend = Backend(hold=True)
    helper = make_delivery(
        backend, max_queue=1, batch_size=1, when_full="block", block_timeout=PATIENCE
    )
    helper.submit(0)
    backend.wait_until_busy()
    assert helper.submit(1)

    release = threading.Timer(0.2, backend.released.set)
    release.start()
    try:
        started = time.monotonic()
        assert helper.submit(2)  # waits until the worker takes item 1 off the queue
        assert 0.15 <= time.monotonic() - started < PATIENCE / 2
    finally:
        release.join()
    assert helper.flush(PATIENCE)
    assert backend.items == [0, 1, 2]
    assert helper.stats == DeliveryStats(submitted=3, delivered=3, failed=0, dropped=0, pending=0)


def test_a_submit_blocked_on_a_full_queue_gives_up_when_the_helper_closes(
    make_delivery: MakeDelivery,
) -> None:
    backend = Backend(hold=True)
    helper = make_delivery(
        backend, max_queue=1, batch_size=1, when_full="block", block_timeout=PATIENCE
    )
    helper.submit(0)
    backend.wait_until_busy()
    helper.submit(1)
    results: list[bool] = []
    submitter = threading.Thread(target=lambda: results.append(helper.submit(2)))
    submitter.start()
    time.sleep(0.1)  # let it start waiting; the test holds either way

    started = time.monotonic()
    helper.close(0.1)
    submitter.join(PATIENCE)
    assert not submitter.is_alive()
    assert time.monotonic() - started < PATIENCE / 2
    assert results == [False]
    assert helper.stats.dropped == 2  # item 1 left in the queue, item 2 never accepted


def test_submit_after_close_is_dropped_and_counted(make_delivery: MakeDelivery) -> None:
    dropped: list[int] = []
    backend = Backend()
    helper = make_delivery(backend, on_drop=dropped.extend)
    helper.submit(1)
    assert helper.close(PATIENCE) is True

    assert helper.submit(2) is False
    assert dropped == [2]
    assert backend.items == [1]
    assert helper.stats == DeliveryStats(submitted=2, delivered=1, failed=0, dropped=1, pending=0)


@pytest.mark.parametrize(("max_queue", "batch_size"), [(0, 1), (-5, 1), (1, 0)])
def test_sizes_below_one_are_rejected(max_queue: int, batch_size: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        BackgroundDelivery(lambda batch: None, max_queue=max_queue, batch_size=batch_size)


def _run_python(code: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result, time.monotonic() - started


@pytest.mark.slow
def test_queued_items_are_delivered_at_interpreter_exit_without_an_explicit_flush(
    tmp_path: Path,
) -> None:
    out = tmp_path / "delivered.txt"
    code = f"""
        import time
        from rlm_core.delivery import BackgroundDelivery

        def deliver(batch):
            time.sleep(0.02)
            with open({str(out)!r}, "a") as f:
                f.writelines(f"{{item}}\\n" for item in batch)

        helper = BackgroundDelivery(deliver, batch_size=2)
        for i in range(40):
            helper.submit(i)
        print(helper.stats.pending > 0)
    """
    result, _ = _run_python(code, tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"  # there was still work left at exit
    assert out.read_text().split() == [str(i) for i in range(40)]


@pytest.mark.slow
def test_interpreter_exit_cannot_hang_on_a_backend_that_never_returns(tmp_path: Path) -> None:
    code = """
        import threading
        from rlm_core.delivery import BackgroundDelivery

        never = threading.Event()
        helper = BackgroundDelivery(lambda batch: never.wait(), batch_size=1, exit_timeout=0.5)
        for i in range(10):
            helper.submit(i)
    """
    result, elapsed = _run_python(code, tmp_path)

    assert result.returncode == 0, result.stderr
    assert elapsed < 10
    # the items given up at exit are reported, not lost silently
    assert "dropped" in result.stderr


def test_linger_gathers_later_items_into_one_batch_and_a_flush_cuts_the_wait() -> None:
    batches: list[list[int]] = []
    helper: BackgroundDelivery[int] = BackgroundDelivery(batches.append, linger=30.0)
    try:
        helper.submit(0)
        assert helper.flush(5.0)
        assert batches == [[0]], "a flush sends the first batch at once"
        for item in range(1, 11):
            helper.submit(item)
        time.sleep(0.2)
        assert batches == [[0]], "later items wait for the interval to fill up"
        started = time.monotonic()
        assert helper.flush(5.0)
        assert time.monotonic() - started < 2.0
        assert batches == [[0], list(range(1, 11))]
    finally:
        helper.close(1.0)


def test_time_spent_preparing_the_backend_is_not_billed_to_a_flush() -> None:
    release = threading.Event()
    helper: BackgroundDelivery[int] = BackgroundDelivery(lambda batch: prepare_once(), name="p")
    prepared: list[bool] = []

    def prepare_once() -> None:
        if not prepared:
            prepared.append(True)
            with helper.preparing():  # e.g. creating a database: as long as it takes
                release.wait(30)

    helper.submit(1)
    waiter: list[bool] = []
    flusher = threading.Thread(target=lambda: waiter.append(helper.flush(0.2)))
    flusher.start()
    flusher.join(0.6)  # three times the flush timeout: still waiting, set-up is not billed
    assert flusher.is_alive()
    release.set()
    flusher.join(30)
    assert waiter == [True]
    helper.close(1.0)


def test_a_flush_still_times_out_when_delivery_itself_is_slow() -> None:
    release = threading.Event()
    helper: BackgroundDelivery[int] = BackgroundDelivery(lambda batch: release.wait(30))
    helper.submit(1)
    assert not helper.flush(0.2)
    release.set()
    assert helper.flush(30)
    helper.close(1.0)
