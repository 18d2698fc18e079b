"""The report's figure: success by condition with 95% intervals, mean tokens, mean cost.

Matplotlib (extra ``plot``) is imported only here, with the non-interactive Agg backend.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from rlm_core.errors import RLMError

if TYPE_CHECKING:
    from rlm_core.eval.report import Report

__all__ = ["plot_png", "write_plot"]


def plot_png(report: Report) -> bytes:
    """The figure as PNG bytes."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from rlm_core.install_hints import install_hint

        raise RLMError(
            "--plot and the HTML report's figure need matplotlib: " + install_hint(extra="plot")
        ) from None
    cells = report.summary.conditions
    names = [cell.condition for cell in cells]
    figure, (success, tokens, cost) = plt.subplots(1, 3, figsize=(11, 3.4))
    rates = [cell.success_rate for cell in cells]
    below = [cell.success_rate - cell.interval[0] for cell in cells]
    above = [cell.interval[1] - cell.success_rate for cell in cells]
    success.bar(names, rates, yerr=[below, above], capsize=6, color="#4c78a8")
    success.set_ylim(0, 1)
    success.set_title("success (95% Wilson CI)")
    tokens.bar(names, [cell.tokens for cell in cells], color="#f58518")
    tokens.set_title("tokens per run")
    cost.bar(names, [cell.cost or 0.0 for cell in cells], color="#54a24b")
    cost.set_title("cost per run" + ("" if any(c.cost for c in cells) else " (not reported)"))
    for axis in (success, tokens, cost):
        axis.tick_params(axis="x", labelrotation=15)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()


def write_plot(report: Report, path: Path) -> None:
    path.write_bytes(plot_png(report))
