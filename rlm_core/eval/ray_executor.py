"""``--executor ray``: lanes run as Ray tasks on a cluster; records stream back to the driver.

Each lane is one Ray task that runs :func:`~rlm_core.eval.lanes.run_lane` (the code the local
executor runs) with the eval's settings, so the workers run the same trackers from the same
config; shared backends (a tracking server, an OTLP endpoint) collect their telemetry. The task is a
generator that yields each run's record as the run ends, and the driver appends it to the results
log at once, so a driver that dies loses no finished run it received. At most ``workers`` lanes
are in flight. Paths in the task file must be readable on the workers (a shared file system or a
local cluster). Ray is imported only here.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from rlm_core.errors import RLMError
from rlm_core.eval.lanes import EvalSpec, run_lane
from rlm_core.eval.plan import Lane
from rlm_core.eval.results import RunRecord

__all__ = ["lane_records", "ray_executor"]

_DONE = object()


def lane_records(spec: EvalSpec, lane: Lane, done: frozenset[str], cwd: str) -> Iterator[Any]:
    """Run a lane on a Ray worker, yielding each record (as a dict) as its run ends."""
    if os.path.isdir(cwd):
        os.chdir(cwd)  # relative tracker paths mean the same as on the driver
    records: queue.Queue[object] = queue.Queue()

    def lane_thread() -> None:
        try:
            run_lane(spec, lane, done, lambda record: records.put(record.to_dict()))
        except BaseException as exc:  # handed to the driver, which raises it
            records.put(exc)
        finally:
            records.put(_DONE)

    worker = threading.Thread(target=lane_thread, name="rlm-eval-lane", daemon=True)
    worker.start()
    while (item := records.get()) is not _DONE:
        if isinstance(item, BaseException):
            raise item
        yield item
    worker.join()


def ray_executor(
    address: str | None, workers: int
) -> Callable[
    [EvalSpec, Sequence[Lane], frozenset[str], Callable[[RunRecord], None], threading.Event], None
]:
    def execute(
        spec: EvalSpec,
        lanes: Sequence[Lane],
        done: frozenset[str],
        on_record: Callable[[RunRecord], None],
        stop: threading.Event,
    ) -> None:
        try:
            import ray
        except ImportError:
            from rlm_core.install_hints import install_hint

            raise RLMError("--executor ray needs ray: " + install_hint(extra="ray")) from None

        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=address or os.environ.get("RAY_ADDRESS") or None, log_to_driver=False)
        remote = ray.remote(lane_records)
        cwd = os.getcwd()

        def consume(lane: Lane) -> None:
            if stop.is_set():
                return
            generator: Any = remote.remote(spec, lane, done, cwd)  # a streaming generator
            for ref in generator:
                on_record(RunRecord.from_dict(ray.get(ref)))
                if stop.is_set():
                    ray.cancel(ref)
                    return

        pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="rlm-eval-ray")
        try:
            for future in [pool.submit(consume, lane) for lane in lanes]:
                future.result()
        except BaseException:
            stop.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if started_here:
                ray.shutdown()

    return execute
