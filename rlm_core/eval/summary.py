"""Aggregate an eval's run records: per task and condition, per condition, and paired.

Success rate with a Wilson 95% interval; pass@k and pass^k per task (k from 1 to the trials run,
unbiased estimators, averaged over tasks for a condition); mean tokens, cost, latency and
iterations. Two conditions are compared on paired runs (same task and trial): McNemar's exact
test on the discordant pairs, and a bootstrap interval of the mean per-task difference.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from rlm_core.eval.results import RunRecord
from rlm_core.eval.stats import (
    bootstrap_difference,
    mcnemar_exact,
    pass_at_k,
    pass_hat_k,
    wilson_interval,
)

__all__ = ["Cell", "Comparison", "Summary", "summarize"]


@dataclasses.dataclass(frozen=True)
class Cell:
    """The runs of one task under one condition (``task`` "*" : every task of the condition)."""

    condition: str
    task: str
    runs: int
    successes: int
    success_rate: float
    interval: tuple[float, float]
    pass_at: dict[int, float]
    pass_hat: dict[int, float]
    tokens: float
    cost: float | None
    latency: float
    iterations: float
    errors: int


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Condition ``second`` against ``first`` on paired runs."""

    first: str
    second: str
    pairs: int
    only_first: int
    only_second: int
    p_value: float
    difference: float
    interval: tuple[float, float]


@dataclasses.dataclass(frozen=True)
class Summary:
    conditions: tuple[Cell, ...]
    tasks: tuple[Cell, ...]
    comparisons: tuple[Comparison, ...]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def metrics(self) -> dict[str, float]:
        """Flat numbers per condition, e.g. for a tracker's record of the whole eval."""
        values: dict[str, float] = {}
        for cell in self.conditions:
            prefix = cell.condition
            values[f"{prefix}.success_rate"] = cell.success_rate
            values[f"{prefix}.success_low"] = cell.interval[0]
            values[f"{prefix}.success_high"] = cell.interval[1]
            values[f"{prefix}.runs"] = cell.runs
            values[f"{prefix}.tokens_mean"] = cell.tokens
            values[f"{prefix}.latency_mean"] = cell.latency
            values[f"{prefix}.iterations_mean"] = cell.iterations
            if cell.cost is not None:
                values[f"{prefix}.cost_mean"] = cell.cost
            for k, value in cell.pass_at.items():
                values[f"{prefix}.pass_at_{k}"] = value
        return values


def _cell(condition: str, task: str, runs: Sequence[RunRecord], k_max: int) -> Cell:
    n = len(runs)
    c = sum(run.success for run in runs)
    costs = [run.cost for run in runs if run.cost is not None]
    return Cell(
        condition=condition,
        task=task,
        runs=n,
        successes=c,
        success_rate=c / n,
        interval=wilson_interval(c, n),
        pass_at={k: pass_at_k(n, c, k) for k in range(1, min(n, k_max) + 1)},
        pass_hat={k: pass_hat_k(n, c, k) for k in range(1, min(n, k_max) + 1)},
        tokens=sum(run.tokens for run in runs) / n,
        cost=sum(costs) / len(costs) if costs else None,
        latency=sum(run.duration for run in runs) / n,
        iterations=sum(run.iterations for run in runs) / n,
        errors=sum(run.error is not None for run in runs),
    )


def summarize(
    records: Sequence[RunRecord], conditions: Sequence[str], tasks: Sequence[str] = ()
) -> Summary:
    """The numbers of a report; ``conditions`` gives their order (first is the baseline),
    ``tasks`` the order of tasks (file order; others follow as met)."""
    by_cell: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    task_order: list[str] = list(tasks)
    for record in sorted(records, key=lambda r: (r.trial, r.key)):
        by_cell[(record.condition, record.task)].append(record)
        if record.task not in task_order:
            task_order.append(record.task)
    task_cells = []
    condition_cells = []
    for condition in conditions:
        cells = [
            _cell(
                condition, task, by_cell[(condition, task)], k_max=len(by_cell[(condition, task)])
            )
            for task in task_order
            if by_cell.get((condition, task))
        ]
        task_cells.extend(cells)
        if cells:
            condition_cells.append(_condition(condition, cells, by_cell))
    comparisons = tuple(
        _compare(conditions[0], other, records) for other in conditions[1:] if records
    )
    return Summary(tuple(condition_cells), tuple(task_cells), comparisons)


def _condition(
    condition: str, cells: Sequence[Cell], by_cell: dict[tuple[str, str], list[RunRecord]]
) -> Cell:
    runs = [run for cell in cells for run in by_cell[(condition, cell.task)]]
    whole = _cell(condition, "*", runs, k_max=0)
    k_common = min(cell.runs for cell in cells)
    return dataclasses.replace(
        whole,
        # pass@k of a condition: the mean over its tasks, for k every task has trials for.
        pass_at={
            k: sum(cell.pass_at[k] for cell in cells) / len(cells) for k in range(1, k_common + 1)
        },
        pass_hat={
            k: sum(cell.pass_hat[k] for cell in cells) / len(cells) for k in range(1, k_common + 1)
        },
    )


def _compare(first: str, second: str, records: Sequence[RunRecord]) -> Comparison:
    outcome = {(r.condition, r.task, r.trial): r.success for r in records}
    pairs = [
        (outcome[(first, task, trial)], outcome[(second, task, trial)])
        for (condition, task, trial) in outcome
        if condition == first and (second, task, trial) in outcome
    ]
    only_first = sum(a and not b for a, b in pairs)
    only_second = sum(b and not a for a, b in pairs)
    per_task: dict[str, list[float]] = defaultdict(list)
    for (condition, task, trial), success in outcome.items():
        if condition == first and (second, task, trial) in outcome:
            per_task[task].append(float(outcome[(second, task, trial)]) - float(success))
    differences = [sum(values) / len(values) for values in per_task.values()]
    mean, low, high = bootstrap_difference(differences)
    return Comparison(
        first=first,
        second=second,
        pairs=len(pairs),
        only_first=only_first,
        only_second=only_second,
        p_value=mcnemar_exact(only_first, only_second),
        difference=mean,
        interval=(low, high),
    )
