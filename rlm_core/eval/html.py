"""The HTML report: one self-contained page that loads nothing (tables, figure as a data URI).

A Content-Security-Policy meta tag forbids every fetch except inline styles and ``data:``
images, so the page behaves the same opened from disk, mailed, or served. Each run links to
where its trackers put it: its run log (a relative ``file`` link) or its record on a tracking
server (a link).
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rlm_core.eval.report import Report

__all__ = ["CSP", "render_html"]

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; } td.pass { color: #1a7f37; } td.fail { color: #b3261e; }
"""


def _table(header: list[str], rows: list[list[str]], *, escaped: bool = False) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{cell if escaped else html.escape(cell)}</td>" for cell in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _link(name: str, where: str, directory: Path) -> str:
    if where.startswith(("http://", "https://")):
        # A link the reader follows; the page itself loads nothing.
        return f'<a href="{html.escape(where)}">{html.escape(name)}</a>'
    path = Path(where)
    if path.is_absolute() and path.exists():
        relative = os.path.relpath(path, directory)
        return f'<a href="{html.escape(Path(relative).as_posix())}">{html.escape(name)}</a>'
    return f"{html.escape(name)}: {html.escape(where)}"


def render_html(report: Report, page_dir: Path) -> str:
    """The page; links to run logs are relative to ``page_dir``, where the page is written."""
    from rlm_core.eval.report import cell_header, cell_row, k_columns

    summary = report.summary
    ks = k_columns(summary.conditions)
    task_ks = k_columns(summary.tasks)
    manifest = report.manifest
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>rlm eval {html.escape(str(manifest.get('eval_id')))}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Eval {html.escape(str(manifest.get('eval_id')))}</h1>",
        "<p>Task file "
        f"{html.escape(Path(str(manifest.get('tasks_path'))).name)} (sha256 "
        f"{html.escape(str(manifest.get('tasks_sha256'))[:12])}), {len(report.conditions)} "
        f"condition(s) x {html.escape(str(manifest.get('trials')))} trial(s): "
        f"{len(report.records)}/{report.expected_runs} runs.</p>",
        "<h2>Conditions</h2>",
        _table(
            ["condition", *cell_header(ks)],
            [[cell.condition, *cell_row(cell, ks)] for cell in summary.conditions],
        ),
    ]
    if summary.conditions:
        try:
            from rlm_core.eval.plot import plot_png

            png = base64.b64encode(plot_png(report)).decode("ascii")
            alt = "success by condition, tokens and cost"
            parts.append(f'<img alt="{alt}" src="data:image/png;base64,{png}">')
        except Exception as exc:  # no matplotlib: the tables still make a report
            parts.append(f"<p>(no figure: {html.escape(str(exc))})</p>")
    parts += [
        "<h2>Tasks</h2>",
        _table(
            ["task", "condition", *cell_header(task_ks)],
            [[cell.task, cell.condition, *cell_row(cell, task_ks)] for cell in summary.tasks],
        ),
    ]
    if summary.comparisons:
        parts += [
            "<h2>Paired comparison</h2>",
            _table(
                ["conditions", "pairs", "only first", "only second", "McNemar p", "difference"],
                [
                    [
                        f"{c.second} vs {c.first}",
                        str(c.pairs),
                        str(c.only_first),
                        str(c.only_second),
                        f"{c.p_value:.3f}",
                        f"{100 * c.difference:+.1f} pts "
                        f"({100 * c.interval[0]:+.1f} to {100 * c.interval[1]:+.1f})",
                    ]
                    for c in summary.comparisons
                ],
            ),
        ]
    rows = []
    for record in sorted(report.records, key=lambda r: (r.task, r.condition, r.trial)):
        verdict = "pass" if record.success else "fail"
        links = ", ".join(
            _link(name, where, page_dir.resolve())
            for name, where in sorted(record.locations.items())
        )
        rows.append(
            [
                html.escape(record.task),
                html.escape(record.condition),
                str(record.trial),
                f'<span class="{verdict}">{verdict}</span>',
                html.escape("; ".join(f"{c['grader']}: {c['detail']}" for c in record.checks)),
                str(record.tokens),
                f"{record.duration:.2f}s",
                html.escape(record.run_id),
                links or "-",
            ]
        )
    parts += [
        "<h2>Runs</h2>",
        _table(
            ["task", "condition", "trial", "grade", "checks", "tokens", "latency", "run", "logs"],
            rows,
            escaped=True,
        ),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
