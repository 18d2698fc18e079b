"""The statistics of an eval: intervals, pass@k, pass^k and paired comparisons. Pure Python.

- Wilson score interval for a success rate (well-behaved at 0 and 1 and for small n).
- pass@k, the unbiased estimator of Chen et al. (2021): the chance that at least one of k
  trials drawn without replacement from n, c of them correct, succeeds: 1 - C(n-c, k) / C(n, k).
- pass^k (Yao et al., tau-bench): the chance that all k drawn trials succeed: C(c, k) / C(n, k).
- McNemar's exact test on paired outcomes (the same task and trial under two conditions), and a
  bootstrap interval of the mean per-task difference in success rate.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

__all__ = ["bootstrap_difference", "mcnemar_exact", "pass_at_k", "pass_hat_k", "wilson_interval"]

Z_95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The 95% Wilson score interval of ``successes / n``; (0, 1) when n is 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _check(n: int, c: int, k: int) -> None:
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n trials of which c succeeded."""
    _check(n, c, k)
    if n - c < k:
        return 1.0
    return float(1.0 - math.comb(n - c, k) / math.comb(n, k))


def pass_hat_k(n: int, c: int, k: int) -> float:
    """pass^k: the chance that k trials drawn from the n all succeed."""
    _check(n, c, k)
    return float(math.comb(c, k) / math.comb(n, k))


def mcnemar_exact(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs (first passed only, second
    passed only); 1.0 when there are none."""
    n = only_first + only_second
    if n == 0:
        return 1.0
    tail: float = sum(math.comb(n, i) for i in range(min(only_first, only_second) + 1)) / 2**n
    return min(1.0, 2 * tail)


def bootstrap_difference(
    differences: Sequence[float], *, resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): the mean of per-task differences and its 95% percentile bootstrap
    interval; seeded, so a report is reproducible."""
    if not differences:
        return 0.0, 0.0, 0.0
    mean = sum(differences) / len(differences)
    rng = random.Random(seed)
    n = len(differences)
    means = sorted(sum(rng.choices(differences, k=n)) / n for _ in range(resamples))
    return mean, means[int(0.025 * resamples)], means[min(resamples - 1, int(0.975 * resamples))]
