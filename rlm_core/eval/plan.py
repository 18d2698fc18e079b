"""The matrix of an eval: conditions x tasks x trials, grouped into lanes.

A condition is one combination of the ``--vary`` values (``memory=on,model=openai/gpt-4o``). A
lane is one trial of one condition: its tasks run one after another, in file order, and with
memory on it has its own memory database, so what a run learns reaches the later tasks of the
same lane only. Lanes are independent, which is what ``--workers`` and Ray run in parallel, and
which keeps trials independent samples for pass@k.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Sequence

from rlm_core.errors import RLMError

__all__ = ["VARY_KEYS", "Condition", "Lane", "PlanError", "RunKey", "parse_vary", "plan_lanes"]

VARY_KEYS = ("memory", "model")
_SWITCH = {"on": True, "off": False, "true": True, "false": False}


class PlanError(RLMError):
    """A ``--vary`` or ``--trials`` value cannot be used."""


@dataclasses.dataclass(frozen=True)
class Condition:
    """One combination of varied settings; ``None`` means "as configured"."""

    memory: bool | None = None
    model: str | None = None

    @property
    def name(self) -> str:
        parts = []
        if self.memory is not None:
            parts.append(f"memory={'on' if self.memory else 'off'}")
        if self.model is not None:
            parts.append(f"model={self.model}")
        return ",".join(parts) or "default"

    @property
    def slug(self) -> str:
        """The name, safe as a directory name."""
        return re.sub(r"[^A-Za-z0-9_.=-]+", "_", self.name.replace(",", "__"))


@dataclasses.dataclass(frozen=True)
class RunKey:
    """Which run of the matrix: the unit that is done, or not, when an eval resumes."""

    condition: str
    task: str
    trial: int

    def __str__(self) -> str:
        return f"{self.condition}|{self.task}|{self.trial}"


@dataclasses.dataclass(frozen=True)
class Lane:
    """One trial of one condition: its tasks, in file order."""

    condition: Condition
    trial: int
    tasks: tuple[str, ...]

    def run_keys(self) -> tuple[RunKey, ...]:
        return tuple(RunKey(self.condition.name, task, self.trial) for task in self.tasks)


def parse_vary(values: Sequence[str]) -> tuple[Condition, ...]:
    """``["memory=on,off", "model=A,B"]`` -> the conditions, in a stable order."""
    axes: dict[str, list[str]] = {}
    for value in values:
        key, sep, options = value.partition("=")
        key = key.strip()
        if not sep or key not in VARY_KEYS:
            raise PlanError(
                f"--vary {value!r}: expected KEY=V1,V2 with KEY one of {', '.join(VARY_KEYS)}"
            )
        if key in axes:
            raise PlanError(f"--vary {value!r}: {key} is varied twice")
        chosen = [option.strip() for option in options.split(",") if option.strip()]
        if not chosen or len(set(chosen)) != len(chosen):
            raise PlanError(f"--vary {value!r}: give distinct, non-empty values")
        if key == "memory":
            bad = [option for option in chosen if option.lower() not in _SWITCH]
            if bad:
                raise PlanError(f"--vary {value!r}: memory takes on or off, got {bad[0]!r}")
        axes[key] = chosen
    memories: list[bool | None] = [_SWITCH[o.lower()] for o in axes.get("memory", [])] or [None]
    models: list[str | None] = list(axes.get("model", [])) or [None]
    return tuple(
        Condition(memory=m, model=model) for m, model in itertools.product(memories, models)
    )


def plan_lanes(
    conditions: Sequence[Condition], tasks: Sequence[str], trials: int
) -> tuple[Lane, ...]:
    """Every lane of the eval: trial by trial, condition by condition."""
    if trials < 1:
        raise PlanError(f"--trials must be at least 1, got {trials}")
    return tuple(
        Lane(condition, trial, tuple(tasks))
        for trial in range(1, trials + 1)
        for condition in conditions
    )
