"""Rows for benchmarks/REPORT.md: one comparison, its unit, min / median / max over repetitions.

Every benchmark's ``--json`` output carries ``rows`` built here and ``targets`` (check, pass), so
``benchmarks/report.py`` can put all of them in one table without knowing each benchmark.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def row(comparison: str, unit: str, samples: Sequence[float]) -> dict[str, Any]:
    """Min, median and max of one measurement's repetitions."""
    return {
        "comparison": comparison,
        "unit": unit,
        "min": min(samples),
        "median": statistics.median(samples),
        "max": max(samples),
        "repetitions": len(samples),
    }


def ratio_row(
    comparison: str, numerators: Sequence[float], denominators: Sequence[float]
) -> dict[str, Any]:
    """The ratio of two variants measured side by side, repetition by repetition."""
    ratios = [top / bottom for top, bottom in zip(numerators, denominators, strict=True)]
    return row(comparison, "ratio", ratios)
