"""``--executor ray`` on a real local Ray instance gives the same grades as the local executor."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlm_core.cli import main
from rlm_core.eval.demo import DEMO_CASSETTES, DEMO_TASKS

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[Any]:
    if os.environ.get("CI"):
        import ray  # CI installs the ray extra: a skip there would hide the check
    else:
        ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def grades(out: Path) -> dict[str, tuple[bool, float, list[tuple[str, bool]]]]:
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return {
        r["key"]: (r["success"], r["score"], [(c["grader"], c["passed"]) for c in r["checks"]])
        for r in records
    }


def test_ray_and_local_give_the_same_grades(in_tmp: Path, ray_instance: Any) -> None:
    common = [
        "eval", "run", str(DEMO_TASKS), "--lm", f"scripted:{DEMO_CASSETTES}",
        "--vary", "memory=on,off", "--trials", "2", "--workers", "2", "--no-report",
        "-t", "jsonl",
    ]  # fmt: skip
    assert main([*common, "--out", "local"]) == 0
    assert main([*common, "--out", "on-ray", "--executor", "ray"]) == 0
    local, on_ray = grades(in_tmp / "local"), grades(in_tmp / "on-ray")
    assert len(local) == 12
    assert on_ray == local
    # The workers ran the same trackers from the same config: every run has its JSONL log,
    # written by a Ray worker process into the same working directory.
    lines = (in_tmp / "on-ray" / "results.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert all(Path(r["locations"]["jsonl"]).is_file() for r in records)
    assert len({r["run_id"] for r in records}) == 12
