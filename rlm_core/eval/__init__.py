"""``rlm eval``: task files, graders, the condition x task x trial matrix, executors, reports.

Import the modules you need; this package imports nothing heavy (DSPy, rdflib and Ray are
imported by the functions that use them).
"""

from __future__ import annotations

from rlm_core.eval.driver import EvalOptions, EvalOutcome, run_eval
from rlm_core.eval.stats import pass_at_k, pass_hat_k, wilson_interval
from rlm_core.eval.tasks import Task, TaskFileError, TaskSet, load_tasks

__all__ = [
    "EvalOptions",
    "EvalOutcome",
    "Task",
    "TaskFileError",
    "TaskSet",
    "load_tasks",
    "pass_at_k",
    "pass_hat_k",
    "run_eval",
    "wilson_interval",
]
