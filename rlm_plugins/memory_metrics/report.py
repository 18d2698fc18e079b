"""``rlm memory report``: does procedural memory help? Runs with and without it, memory by memory.

Reads the state file the ``memory_metrics`` tracker writes at the end of every run (SQLite,
layout version 1 in ``user_version``; the layout is documented in
``docs/trackers/memory_metrics.md``). matplotlib (the ``plot`` extra) is imported
only for ``--plot``.

A run is *with memory* when at least one memory was put in its prompt; runs with memory off and
runs that retrieved nothing are *without*. Success is the judge's verdict, known only for judged
runs (the judge runs only when memory is on); ``converged`` is known for every run.
"""

from __future__ import annotations

import dataclasses
import itertools
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from rlm_core.errors import RLMError
from rlm_plugins.memory_metrics.state import STATE_VERSION

_TITLE_CHARS = 48


class ReportError(RLMError):
    """The state file cannot be read or the plot cannot be written; the message says why."""


# -- reading ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Retrieval:
    """One memory a run retrieved; ``used`` is None when its text could not be read."""

    memory_id: str
    title: str
    used: bool | None


@dataclasses.dataclass(frozen=True)
class Run:
    """One run as the tracker recorded it."""

    run_id: str
    started_at: datetime
    ontology: str
    retrievals: tuple[Retrieval, ...]
    success: bool | None
    converged: bool
    iterations: int
    tokens: int
    duration: float
    prompt_share: float | None

    @property
    def with_memory(self) -> bool:
        """At least one memory was put in the prompt."""
        return bool(self.retrievals)


def read_runs(path: Path, ontology: str | None = None) -> list[Run]:
    """The runs recorded in the state file, oldest first; only those on ``ontology`` if given."""
    if not path.is_file():
        raise ReportError(
            f"no memory metrics at {path}: the memory_metrics tracker writes it when a run ends "
            "(is it enabled? see rlm plugins)"
        )
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            _check_layout(db, path)
            where, params = ("WHERE ontology = ?", (ontology,)) if ontology else ("", ())
            rows = db.execute(
                "SELECT run_id, started_at, ontology, success, converged, iterations, "
                "prompt_tokens + completion_tokens, duration, prompt_share "
                f"FROM runs {where} ORDER BY started_at, run_id",
                params,
            ).fetchall()
            hits: dict[str, list[Retrieval]] = {}
            for run_id, memory_id, title, used in db.execute(
                "SELECT run_id, memory_id, title, used FROM retrievals ORDER BY run_id, rank"
            ):
                hits.setdefault(run_id, []).append(Retrieval(memory_id, title, _bool(used)))
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise ReportError(f"cannot read memory metrics state {path}: {exc}") from None
    return [
        Run(
            run_id=row[0],
            started_at=datetime.fromisoformat(row[1]),
            ontology=row[2],
            retrievals=tuple(hits.get(row[0], ())),
            success=_bool(row[3]),
            converged=bool(row[4]),
            iterations=row[5],
            tokens=row[6],
            duration=row[7],
            prompt_share=row[8],
        )
        for row in rows
    ]


def _check_layout(db: sqlite3.Connection, path: Path) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version != STATE_VERSION:
        raise ReportError(
            f"{path} is not a memory metrics state file this rlm-core reads (layout version "
            f"{version}, expected {STATE_VERSION})"
        )


def _bool(value: int | None) -> bool | None:
    return None if value is None else bool(value)


# -- the numbers --------------------------------------------------------------------------------


def build_report(runs: Sequence[Run], *, state: str, ontology: str | None) -> dict[str, Any]:
    """The report as JSON-safe data: the with/without comparison per ontology, then memories."""
    ontologies = sorted({run.ontology for run in runs})
    return {
        "state": state,
        "ontology": ontology,
        "runs": len(runs),
        "comparison": [
            {
                "ontology": name,
                "with_memory": group_stats(r for r in runs if r.ontology == name and r.with_memory),
                "without_memory": group_stats(
                    r for r in runs if r.ontology == name and not r.with_memory
                ),
            }
            for name in ontologies
        ],
        "memories": memory_stats(runs),
    }


def group_stats(runs: Iterable[Run]) -> dict[str, Any]:
    """Counts and means of a group of runs; a mean over nothing is None."""
    group = list(runs)
    judged = [run.success for run in group if run.success is not None]
    shares = [run.prompt_share for run in group if run.prompt_share is not None]
    return {
        "runs": len(group),
        "judged": len(judged),
        "success_rate": _mean(map(float, judged)),
        "converged_rate": _mean(float(run.converged) for run in group),
        "iterations": _mean(float(run.iterations) for run in group),
        "tokens": _mean(float(run.tokens) for run in group),
        "duration_s": _mean(run.duration for run in group),
        "prompt_share": _mean(shares),
    }


def memory_stats(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Per memory: retrieved, used, and the success rate of the judged runs that retrieved it
    against the judged runs of the same ontologies that did not (the baseline). Most retrieved
    first."""
    by_memory: dict[str, list[tuple[Run, Retrieval]]] = {}
    for run in runs:
        for hit in run.retrievals:
            by_memory.setdefault(hit.memory_id, []).append((run, hit))
    rows: list[dict[str, Any]] = []
    for memory_id, uses in by_memory.items():
        with_it = {run.run_id for run, _ in uses}
        ontologies = {run.ontology for run, _ in uses}
        judged_with = [run.success for run, _ in uses if run.success is not None]
        baseline = [
            run.success
            for run in runs
            if run.ontology in ontologies and run.run_id not in with_it and run.success is not None
        ]
        rate, base = _mean(map(float, judged_with)), _mean(map(float, baseline))
        rows.append(
            {
                "memory_id": memory_id,
                "title": uses[-1][1].title,
                "retrieved": len(uses),
                "used": sum(hit.used is True for _, hit in uses),
                "success_rate": rate,
                "judged": len(judged_with),
                "baseline_success_rate": base,
                "baseline_judged": len(baseline),
                "difference": None if rate is None or base is None else rate - base,
            }
        )
    rows.sort(key=lambda row: (-row["retrieved"], row["title"], row["memory_id"]))
    return rows


def _mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return sum(items) / len(items) if items else None


# -- rendering ----------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _points(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}pp"


def _number(digits: int) -> Callable[[float | None], str]:
    return lambda value: "-" if value is None else f"{value:.{digits}f}"


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _TITLE_CHARS else text[: _TITLE_CHARS - 1] + "…"


_Column = tuple[str, str, Callable[[Any], str]]  # header, key, format
_GROUP_COLUMNS: tuple[_Column, ...] = (
    ("RUNS", "runs", str),
    ("JUDGED", "judged", str),
    ("SUCCESS", "success_rate", _percent),
    ("CONVERGED", "converged_rate", _percent),
    ("ITERATIONS", "iterations", _number(2)),
    ("TOKENS", "tokens", _number(1)),
    ("SECONDS", "duration_s", _number(2)),
    ("MEMORY SHARE", "prompt_share", _percent),
)
_MEMORY_COLUMNS: tuple[_Column, ...] = (
    ("RETRIEVED", "retrieved", str),
    ("USED", "used", str),
    ("SUCCESS", "success_rate", _percent),
    ("JUDGED", "judged", str),
    ("BASELINE", "baseline_success_rate", _percent),
    ("JUDGED", "baseline_judged", str),
    ("DIFF", "difference", _points),
    ("ID", "memory_id", str),
    ("TITLE", "title", _shorten),
)


def render(report: dict[str, Any], *, markdown: bool) -> str:
    scope = f"ontology {report['ontology']}" if report["ontology"] else "all ontologies"
    lines = [f"Memory metrics: {report['runs']} runs in {report['state']} ({scope})"]
    if not report["runs"]:
        return lines[0] + "\nNo runs recorded yet."
    comparison = [
        [entry["ontology"], label, *(fmt(entry[key][field]) for _, field, fmt in _GROUP_COLUMNS)]
        for entry in report["comparison"]
        for label, key in (("with", "with_memory"), ("without", "without_memory"))
    ]
    header = ["ONTOLOGY", "MEMORY", *(column[0] for column in _GROUP_COLUMNS)]
    lines += ["", "Runs with memory (a memory in the prompt) and without, per ontology:"]
    lines += _table(header, comparison, text_columns=2, markdown=markdown)
    lines += ["", "Memories: success of the runs that retrieved each one vs. runs without it:"]
    if report["memories"]:
        rows = [[fmt(row[key]) for _, key, fmt in _MEMORY_COLUMNS] for row in report["memories"]]
        header = [column[0] for column in _MEMORY_COLUMNS]
        lines += _table(header, rows, text_columns=-2, markdown=markdown)
    else:
        lines.append("(no memory was retrieved)")
    return "\n".join(lines)


def _table(
    header: list[str], rows: list[list[str]], *, text_columns: int, markdown: bool
) -> list[str]:
    """Rows under a header; the first ``text_columns`` (the last, if negative) are left-aligned
    text, the others right-aligned numbers."""
    count = len(header)
    text = (
        set(range(text_columns)) if text_columns >= 0 else set(range(count + text_columns, count))
    )
    if markdown:
        rule = "|" + "|".join(" --- " if i in text else " ---: " for i in range(count)) + "|"
        cells = [[cell.replace("|", "\\|") for cell in row] for row in rows]
        return [
            "| " + " | ".join(header) + " |",
            rule,
            *("| " + " | ".join(row) + " |" for row in cells),
        ]
    widths = [max(map(len, column)) for column in zip(header, *rows, strict=True)]
    return [
        "  ".join(
            cell.ljust(width) if i in text else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in (header, *rows)
    ]


def no_runs(path: Path, ontology: str | None) -> str:
    return f"{path} has no runs" + (f" on ontology {ontology!r}" if ontology else "")


# -- the plot -----------------------------------------------------------------------------------


def require_matplotlib() -> None:
    """A clear error naming the extra that installs matplotlib, when it is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        from rlm_core.install_hints import install_hint

        raise ReportError(
            f"--plot needs matplotlib ({exc}): {install_hint(extra='plot')}"
        ) from None


def check_plot_path(path: Path) -> None:
    """Refuse, before any work, a plot path whose directory does not exist: a typo in it would
    otherwise create directories nobody asked for."""
    parent = path.parent
    if not parent.is_dir():
        raise ReportError(f"--plot {path}: the directory {parent} does not exist")
    if path.is_dir():
        raise ReportError(f"--plot {path}: is a directory; give a file name such as memory.png")


def build_plot(runs: Sequence[Run], ontology: str | None) -> Any:
    """The figure (a matplotlib ``Figure``), with and without memory: the success rate of the
    judged runs so far, and each run's tokens with their mean so far. Runs without a judgment
    have no success to plot; the success panel says how many there are. The legends sit beside
    the panels, where they cannot hide a point."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 6), layout="constrained")
    success, tokens = figure.subplots(2, 1, sharex=True)
    unjudged = []
    for label, color, group in (
        ("with memory", "tab:blue", [run for run in runs if run.with_memory]),
        ("without memory", "tab:orange", [run for run in runs if not run.with_memory]),
    ):
        judged = [run for run in group if run.success is not None]
        if len(judged) < len(group):
            unjudged.append(f"{len(group) - len(judged)} {label}")
        wins = itertools.accumulate(float(bool(run.success)) for run in judged)
        rates = [won / count for count, won in enumerate(wins, start=1)]
        success.plot(
            [run.started_at for run in judged], rates, color=color, marker=".", label=label
        )
        times, spent = [run.started_at for run in group], [run.tokens for run in group]
        means = [total / count for count, total in enumerate(itertools.accumulate(spent), start=1)]
        tokens.scatter(times, spent, color=color, s=12, alpha=0.5, label=f"{label} (each run)")
        tokens.plot(times, means, color=color, label=f"{label} (mean so far)")
    success.set_title(
        "Judged runs only; not judged, so not shown: " + ", ".join(unjudged)
        if unjudged
        else "Every run was judged",
        fontsize="small",
        loc="left",
    )
    success.set_ylabel("success rate (cumulative)")
    success.set_ylim(-0.05, 1.05)
    tokens.set_ylabel("tokens per run")
    tokens.set_xlabel("run start (UTC)")
    for axes in (success, tokens):
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    figure.suptitle(f"Memory metrics: {ontology or 'all ontologies'} ({len(runs)} runs)")
    return figure


def write_plot(runs: Sequence[Run], path: Path, ontology: str | None) -> None:
    """Write :func:`build_plot` as a PNG to ``path``, whose directory must exist."""
    check_plot_path(path)
    try:
        build_plot(runs, ontology).savefig(path, format="png", dpi=100)
    except OSError as exc:
        raise ReportError(f"cannot write the plot to {path}: {exc}") from None
