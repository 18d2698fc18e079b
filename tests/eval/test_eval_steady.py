"""A process that runs many eval runs holds steady threads and file descriptors.

200 scripted runs with every built-in tracker on (JSONL, MLflow, memory metrics), lane after
lane as a worker runs them: the counts after the last run equal those after the tenth.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from rlm_core.config import load_settings
from rlm_core.eval.demo import DEMO_CASSETTES, DEMO_TASKS
from rlm_core.eval.lanes import EvalSpec, run_lane
from rlm_core.eval.plan import parse_vary, plan_lanes
from rlm_core.eval.results import RunRecord
from rlm_core.eval.tasks import load_tasks

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

RUNS = 200


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_threads_and_descriptors_are_the_same_after_200_runs_as_after_10(in_tmp: Path) -> None:
    tasks = load_tasks(DEMO_TASKS)
    settings = load_settings(env={"RLM_MODEL": f"scripted:{DEMO_CASSETTES}"}, cwd=in_tmp)
    spec = EvalSpec(eval_id="eval-steady", tasks=tasks, settings=settings, out=in_tmp / "out")
    lanes = plan_lanes(parse_vary(["memory=on,off"]), [t.id for t in tasks.tasks], RUNS // 6 + 1)
    records: list[RunRecord] = []
    counts: dict[int, tuple[int, int]] = {}
    for lane in lanes:
        run_lane(spec, lane, frozenset(), records.append)
        if len(records) >= 10 and not counts:
            counts[len(records)] = (threading.active_count(), open_descriptors())
        if len(records) >= RUNS:
            break
    after_last = (threading.active_count(), open_descriptors())
    assert len(records) >= RUNS
    assert all(record.error is None for record in records)
    assert {"jsonl", "mlflow", "memory_metrics"} <= set(records[-1].locations)
    ((_, after_tenth),) = counts.items()
    assert after_last == after_tenth, f"threads, fds after ~10 runs {after_tenth}, after last"
