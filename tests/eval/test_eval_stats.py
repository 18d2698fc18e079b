"""pass@k, pass^k, Wilson intervals and McNemar's test against values worked by hand."""

from __future__ import annotations

import re

import pytest

from rlm_core.eval.stats import (
    bootstrap_difference,
    mcnemar_exact,
    pass_at_k,
    pass_hat_k,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 1, 0.4),  # c / n
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (5, 2, 3, 0.9),  # 1 - C(3,3)/C(5,3) = 1 - 1/10
        (5, 2, 4, 1.0),  # fewer than k failures: some success is certain
        (10, 0, 3, 0.0),
        (10, 10, 1, 1.0),
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    ],
)
def test_pass_at_k(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 1, 0.4),
        (5, 2, 2, 0.1),  # C(2,2)/C(5,2) = 1/10
        (5, 2, 3, 0.0),
        (4, 3, 2, 0.5),  # C(3,2)/C(4,2) = 3/6
        (3, 3, 3, 1.0),
    ],
)
def test_pass_hat_k(n: int, c: int, k: int, expected: float) -> None:
    assert pass_hat_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError, match="n=3 c=4 k=1"):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError, match="k=0"):
        pass_hat_k(3, 1, 0)


def test_wilson_interval_worked_examples() -> None:
    # 4 of 6: centre (2/3 + z²/12) / (1 + z²/6), half-width z·sqrt(2/9/6 + z²/144) / (1 + z²/6).
    low, high = wilson_interval(4, 6)
    assert low == pytest.approx(0.3000, abs=1e-4)
    assert high == pytest.approx(0.9032, abs=1e-4)
    assert wilson_interval(0, 2) == (0.0, pytest.approx(0.6576, abs=1e-4))
    assert wilson_interval(2, 2) == (pytest.approx(0.3424, abs=1e-4), 1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_mcnemar_exact_worked_examples() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 0) == pytest.approx(2 / 32)  # both tails of Binomial(5, 1/2)
    assert mcnemar_exact(1, 3) == pytest.approx(2 * 5 / 16)
    assert mcnemar_exact(2, 2) == 1.0


def test_bootstrap_difference_is_seeded_and_brackets_the_mean() -> None:
    differences = [0.0, 0.5, 1.0, 0.5, 0.0, 1.0]
    mean, low, high = bootstrap_difference(differences)
    assert mean == pytest.approx(0.5)
    assert low <= mean <= high
    assert bootstrap_difference(differences) == (mean, low, high)
    assert bootstrap_difference([0.0, 0.0]) == (0.0, 0.0, 0.0)


def test_progress_shows_runs_done_success_so_far_and_an_eta() -> None:
    import io

    from rlm_core.eval.progress import Progress

    stream = io.StringIO()
    progress = Progress(4, stream, live=True)
    assert progress.line().startswith("eval: 0/4 runs, success -, ETA ?")
    progress.update(True)
    progress.update(False)
    assert re.fullmatch(r"eval: 2/4 runs, success 50%, ETA \d+s", progress.line())
    progress.finish()
    assert stream.getvalue().count("\r") == 2
    assert stream.getvalue().endswith("\n")
    quiet = io.StringIO()
    Progress(1, quiet, live=False).update(True)
    assert quiet.getvalue() == ""
