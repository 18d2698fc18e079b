"""``rlm eval report``: an eval directory as a table, Markdown, JSON or one HTML page."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from rlm_core.eval.results import RunRecord, read_manifest, read_records
from rlm_core.eval.summary import Cell, Summary, summarize

__all__ = ["Report", "load_report", "render"]


@dataclasses.dataclass(frozen=True)
class Report:
    """What a report shows: the eval, its runs and their summary."""

    directory: Path
    manifest: dict[str, Any]
    records: list[RunRecord]
    summary: Summary
    unreadable: int

    @property
    def conditions(self) -> list[str]:
        return [str(name) for name in self.manifest.get("conditions", [])]

    @property
    def expected_runs(self) -> int:
        tasks = {record.task for record in self.records}
        return len(self.conditions) * int(self.manifest.get("trials", 1)) * max(len(tasks), 1)


def load_report(directory: Path) -> Report:
    """Read an eval directory; :class:`~rlm_core.eval.results.EvalDirError` when it is not one."""
    manifest = read_manifest(directory)
    assert manifest is not None
    records, unreadable = read_records(directory)
    conditions = [str(name) for name in manifest.get("conditions", [])]
    tasks = [str(task) for task in manifest.get("tasks", [])]
    return Report(directory, manifest, records, summarize(records, conditions, tasks), unreadable)


def render(report: Report, fmt: str, *, page_dir: Path | None = None) -> str:
    """The report as ``fmt``; an HTML page links run logs relative to ``page_dir`` (where the
    page is written; default the working directory)."""
    if fmt == "json":
        return _json(report)
    if fmt == "html":
        from rlm_core.eval.html import render_html

        return render_html(report, page_dir or Path.cwd())
    return _text(report, markdown=fmt == "markdown")


def _json(report: Report) -> str:
    data = {
        "eval": report.manifest,
        "runs": len(report.records),
        "unreadable_lines": report.unreadable,
        "summary": report.summary.to_dict(),
        "records": [record.to_dict() for record in report.records],
    }
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def k_columns(cells: Sequence[Cell]) -> list[int]:
    return sorted({k for cell in cells for k in cell.pass_at})


def cell_row(cell: Cell, ks: Sequence[int]) -> list[str]:
    """The shown values of a cell, in the order of :func:`cell_header`."""
    low, high = cell.interval
    return [
        str(cell.runs),
        _percent(cell.success_rate),
        f"{_percent(low)}-{_percent(high)}",
        *(f"{cell.pass_at[k]:.3f}" if k in cell.pass_at else "" for k in ks),
        *(f"{cell.pass_hat[k]:.3f}" if k in cell.pass_hat else "" for k in ks),
        f"{cell.tokens:.0f}",
        "-" if cell.cost is None else f"{cell.cost:.4f}",
        f"{cell.latency:.2f}s",
        f"{cell.iterations:.1f}",
        str(cell.errors),
    ]


def cell_header(ks: Sequence[int]) -> list[str]:
    return [
        "runs",
        "success",
        "95% CI",
        *(f"pass@{k}" for k in ks),
        *(f"pass^{k}" for k in ks),
        "tokens",
        "cost",
        "latency",
        "iterations",
        "errors",
    ]


def _text(report: Report, *, markdown: bool) -> str:
    table = _markdown_table if markdown else _plain_table
    summary = report.summary
    ks = k_columns(summary.conditions)
    manifest = report.manifest
    lines = [
        ("# " if markdown else "")
        + f"Eval {manifest.get('eval_id')}: {Path(str(manifest.get('tasks_path'))).name} "
        f"(sha256 {str(manifest.get('tasks_sha256'))[:12]}), "
        f"{len(report.conditions)} condition(s) x {manifest.get('trials')} trial(s): "
        f"{len(report.records)}/{report.expected_runs} runs",
        "",
    ]
    if report.unreadable:
        lines += [f"({report.unreadable} unreadable result line(s) ignored)", ""]
    lines += [("## " if markdown else "") + "By condition", ""]
    lines += table(
        ["condition", *cell_header(ks)],
        [[cell.condition, *cell_row(cell, ks)] for cell in summary.conditions],
    )
    task_ks = k_columns(summary.tasks)
    lines += ["", ("## " if markdown else "") + "By task", ""]
    lines += table(
        ["task", "condition", *cell_header(task_ks)],
        [[cell.task, cell.condition, *cell_row(cell, task_ks)] for cell in summary.tasks],
    )
    if summary.comparisons:
        lines += ["", ("## " if markdown else "") + "Paired comparison", ""]
        lines += table(
            [
                "conditions",
                "pairs",
                "only first",
                "only second",
                "McNemar p",
                "difference",
                "95% CI",
            ],
            [
                [
                    f"{c.second} vs {c.first}",
                    str(c.pairs),
                    str(c.only_first),
                    str(c.only_second),
                    f"{c.p_value:.3f}",
                    f"{100 * c.difference:+.1f} pts",
                    f"{100 * c.interval[0]:+.1f} to {100 * c.interval[1]:+.1f} pts",
                ]
                for c in summary.comparisons
            ],
        )
    return "\n".join(lines) + "\n"


def _plain_table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    render: Callable[[list[str]], str] = lambda row: "  ".join(  # noqa: E731
        value.ljust(width) for value, width in zip(row, widths, strict=True)
    ).rstrip()
    return [render(header), *(render(row) for row in rows)]


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def line(row: list[str]) -> str:
        return "| " + " | ".join(value.replace("|", "\\|") for value in row) + " |"

    return [line(header), "|" + "---|" * len(header), *(line(row) for row in rows)]
