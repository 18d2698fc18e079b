"""``rlm runs list|show``: the runs the JSONL tracker logged, as a table or as a span tree.

Both work on logs of crashed runs (no ``run_end``: shown as incomplete) and on damaged files: bad
lines are listed with file and line number after whatever could be read.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from rlm_core.commands.options import EXIT_OK, EXIT_USAGE
from rlm_core.events import (
    Event,
    Iteration,
    Judgment,
    LLMCall,
    MemoryExtraction,
    MemoryRetrieval,
    RunInfo,
    RunResult,
    Setup,
    ToolCall,
)
from rlm_core.runlog import (
    DEFAULT_LOG_DIR,
    LATEST,
    LogNotFoundError,
    LogProblem,
    LogRecord,
    MetricsPoint,
    RunLog,
    find_logs,
    locate_run,
    read_log,
)

_QUESTION_CHARS = 40
_PREVIEW_LINES = 4
_PREVIEW_CHARS = 100
_MAX_PROBLEMS_SHOWN = 50
_INDENT = " " * 13


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "runs",
        help="list and show the runs logged by the jsonl tracker",
        description="Read the JSONL run logs (runs/ by default), also those of crashed runs.",
    )
    parser.set_defaults(handler=_print_help(parser))
    subcommands = parser.add_subparsers(dest="runs_command", metavar="SUBCOMMAND")

    lister = subcommands.add_parser(
        "list",
        help="one line per logged run",
        description="One line per run, newest first: id, start, question, ontology, "
        "iterations, status (converged, not converged, failed, or incomplete when the log has "
        "no run_end), duration and tokens.",
    )
    lister.add_argument("--dir", metavar="DIR", help=f"log directory (default: {DEFAULT_LOG_DIR})")
    lister.add_argument(
        "-n", type=_positive, metavar="N", help="only the N newest runs (default: all)"
    )
    lister.add_argument("--json", action="store_true", help="print JSON instead of a table")
    lister.set_defaults(handler=run_list)

    shower = subcommands.add_parser(
        "show",
        help="the span tree of one run",
        description="Run info, then every span of the run indented under its parent, with its "
        "start (from the run's start) and duration: setup, memory retrieval, each iteration "
        "with its LM and tool calls and code and output previews, judgment and extraction with "
        "their LM calls, metrics and the result; problems last.",
    )
    shower.add_argument(
        "run",
        metavar="RUN",
        help=f"a run id or the start of one, {LATEST!r} for the newest run, or a log file "
        f"(also NAME.jsonl under the log directory)",
    )
    shower.add_argument("--dir", metavar="DIR", help=f"log directory (default: {DEFAULT_LOG_DIR})")
    shower.add_argument(
        "--json", action="store_true", help="print the runs as JSON span trees instead"
    )
    shower.set_defaults(handler=run_show)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _print_help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def show(args: argparse.Namespace) -> int:
        parser.print_help()
        return EXIT_USAGE

    return show


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """One row of ``rlm runs list``; figures of an incomplete run cover what was logged."""

    run_id: str
    path: str
    started_at: str
    question: str
    ontology: str
    model: str
    iterations: int
    status: str
    duration: float
    tokens: int


def summarize(log: RunLog, run: RunInfo) -> RunSummary:
    """The row for ``run``: from its ``run_end`` when it has one, else from its other records."""
    records = log.records_of(run.run_id)
    end = next((r.payload for r in reversed(records) if isinstance(r.payload, RunResult)), None)
    if end is None:
        iterations = sum(isinstance(r.payload, Iteration) for r in records)
        tokens = sum(
            (r.payload.prompt_tokens or 0) + (r.payload.completion_tokens or 0)
            for r in records
            if isinstance(r.payload, LLMCall)
        )
        # Metrics lines carry the writer's clock, not the run's: leave them out.
        last = max(
            (r.payload.timestamp for r in records if isinstance(r.payload, Event)),
            default=run.started_at,
        )
        duration = (last - run.started_at).total_seconds()
        status = "incomplete"
    else:
        iterations, tokens, duration = end.iterations, end.tokens, end.duration
        status = "failed" if end.error else "converged" if end.converged else "not converged"
    return RunSummary(
        run_id=run.run_id,
        path=str(log.path),
        started_at=run.started_at.isoformat(),
        question=run.question,
        ontology=run.ontology.name,
        model=run.model,
        iterations=iterations,
        status=status,
        duration=duration,
        tokens=tokens,
    )


def run_list(args: argparse.Namespace) -> int:
    directory = Path(args.dir or DEFAULT_LOG_DIR)
    if not directory.is_dir():
        if args.dir is not None:
            raise LogNotFoundError(f"{directory}: no such directory")
        if args.json:
            print(json.dumps({"runs": [], "problems": []}))
        else:
            print(f"No runs logged yet ({directory}/ does not exist).")
        return EXIT_OK
    summaries: list[RunSummary] = []
    problems: dict[str, list[LogProblem]] = {}
    for path in find_logs(directory):
        try:
            log = read_log(path)
        except LogNotFoundError as exc:
            problems[str(path)] = [LogProblem(str(path), 0, str(exc))]
            continue
        summaries.extend(summarize(log, run) for run in log.runs.values())
        if log.problems:
            problems[str(path)] = log.problems
    summaries.sort(key=lambda summary: summary.started_at, reverse=True)
    if args.n is not None:
        summaries = summaries[: args.n]
    if args.json:
        listing = {
            "runs": [dataclasses.asdict(summary) for summary in summaries],
            "problems": [
                dataclasses.asdict(problem) for found in problems.values() for problem in found
            ],
        }
        print(json.dumps(listing, indent=2))
        return EXIT_OK
    _print_table(summaries, directory)
    for name, found in problems.items():
        print(
            f"{found[0]} ({len(found)} problem(s) in this file; see rlm runs show {name})",
            file=sys.stderr,
        )
    return EXIT_OK


def _print_table(summaries: list[RunSummary], directory: Path) -> None:
    if not summaries:
        print(f"No runs in {directory}/.")
        return
    header = ("RUN ID", "STARTED", "QUESTION", "ONTOLOGY", "ITER", "STATUS", "DURATION", "TOKENS")
    rows = [
        (
            s.run_id,
            datetime.fromisoformat(s.started_at).strftime("%Y-%m-%d %H:%M:%S"),
            _shorten(s.question, _QUESTION_CHARS),
            s.ontology,
            str(s.iterations),
            s.status,
            _seconds(s.duration),
            str(s.tokens),
        )
        for s in summaries
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def run_show(args: argparse.Namespace) -> int:
    path, run_id = locate_run(args.run, args.dir or DEFAULT_LOG_DIR)
    log = read_log(path)
    if not log.runs and not log.records:
        reason = log.problems[0].message if log.problems else "no records"
        raise LogNotFoundError(f"{path}: not an rlm run log ({reason})")
    runs = [log.runs[run_id]] if run_id else list(log.runs.values())
    if args.json:
        shown = {
            "path": str(path),
            "runs": [_tree_json(run, log.records_of(run.run_id)) for run in runs],
            "problems": [dataclasses.asdict(problem) for problem in log.problems],
        }
        print(json.dumps(shown, indent=2, ensure_ascii=False))
        return EXIT_OK
    for number, run in enumerate(runs):
        if number:
            print()
        _print_timeline(run, log.records_of(run.run_id))
    if log.problems:
        print()
        print(f"Problems in {path} ({len(log.problems)}):")
        for problem in log.problems[:_MAX_PROBLEMS_SHOWN]:
            print(f"  {problem}")
        if len(log.problems) > _MAX_PROBLEMS_SHOWN:
            print(f"  ... and {len(log.problems) - _MAX_PROBLEMS_SHOWN} more")
    return EXIT_OK


def _print_timeline(run: RunInfo, records: list[LogRecord]) -> None:
    limits = run.limits
    model = run.model + (f" (sub-LM {run.sub_model})" if run.sub_model else "")
    info = [
        ("question", run.question),
        ("ontology", f"{run.ontology.name} ({run.ontology.path}, {run.ontology.triples} triples)"),
        ("model", model),
        ("started", run.started_at.strftime("%Y-%m-%d %H:%M:%S %Z")),
        (
            "limits",
            f"{limits.max_iterations} iterations, {limits.max_llm_calls} LM calls, "
            f"{_seconds(limits.step_timeout)} per step, {limits.max_output_chars} output chars",
        ),
    ]
    if run.parent_run_id:
        info.append(("parent", run.parent_run_id))
    if run.tags:
        info.append(("tags", ", ".join(f"{key}={value}" for key, value in run.tags.items())))
    info.append(
        (
            "trace",
            run.trace_id + (f" (under span {run.parent_span_id})" if run.parent_span_id else ""),
        )
    )
    print(f"Run {run.run_id}")
    for label, value in info:
        print(f"  {label:<9} {value}")
    print()
    print(f"  {'START':>9} {'TOOK':>7}  SPAN")
    ended = False
    for record, depth in _in_tree_order(run, records):
        payload = record.payload
        ended = ended or isinstance(payload, RunResult)
        start = payload.timestamp if isinstance(payload, MetricsPoint) else payload.started_at
        offset = (start - run.started_at).total_seconds()
        took = "" if isinstance(payload, MetricsPoint | RunInfo) else _seconds(payload.elapsed)
        headline, *details = _describe(payload)
        if record.truncated:
            headline += f"  [cut by the writer: {', '.join(record.truncated)}]"
        indent = "  " * depth
        print(f"  {'+' + _seconds(offset):>9} {took:>7}  {indent}{headline}")
        for detail in details:
            print(f"{_INDENT}{indent}{detail}")
    if not ended:
        print("  (no run_end: the run is incomplete; it crashed or is still running)")


def _in_tree_order(run: RunInfo, records: list[LogRecord]) -> list[tuple[LogRecord, int]]:
    """The records depth first under their parent spans, siblings by start; with the depth.

    ``run_start`` and ``run_end`` frame the run; metrics lines (no span) and spans whose parent
    is not in the log (a cut-off log) sit under the run.
    """
    spans = {
        record.payload.span_id
        for record in records
        if isinstance(record.payload, Event) and not isinstance(record.payload, RunResult)
    }
    children: dict[str, list[LogRecord]] = {}
    first: list[LogRecord] = []
    last: list[LogRecord] = []
    for record in records:
        payload = record.payload
        if isinstance(payload, RunInfo):
            first.append(record)
        elif isinstance(payload, RunResult):
            last.append(record)
        else:
            parent = None if isinstance(payload, MetricsPoint) else payload.parent_span_id
            if parent not in spans:
                parent = run.span_id
            children.setdefault(parent or run.span_id, []).append(record)
    ordered: list[tuple[LogRecord, int]] = [(record, 0) for record in first]

    def visit(span_id: str, depth: int) -> None:
        for record in sorted(children.get(span_id, []), key=_start_key):
            ordered.append((record, depth))
            payload = record.payload
            if isinstance(payload, Event):
                visit(payload.span_id, depth + 1)

    visit(run.span_id, 1)
    ordered.extend((record, 0) for record in last)
    return ordered


def _start_key(record: LogRecord) -> tuple[datetime, int]:
    payload = record.payload
    if isinstance(payload, MetricsPoint):
        return payload.timestamp, record.line_number
    return payload.started_at, record.line_number


def _tree_json(run: RunInfo, records: list[LogRecord]) -> dict[str, Any]:
    """One run as JSON: the run's span with its children nested, metrics and whether it ended.

    Each node is the payload's ``to_dict()`` plus ``duration`` (seconds, start to end) and
    ``children``.
    """
    root: dict[str, Any] = {**run.to_dict(), "children": []}
    nodes: dict[str, dict[str, Any]] = {run.span_id: root}
    stack: list[dict[str, Any]] = [root]
    result: RunResult | None = None
    metrics: list[dict[str, Any]] = []
    for record, depth in _in_tree_order(run, records):
        payload = record.payload
        if isinstance(payload, RunInfo):
            continue
        if isinstance(payload, RunResult):
            result = payload
            continue
        if isinstance(payload, MetricsPoint):
            metrics.append(
                {
                    "step": payload.step,
                    "values": payload.values,
                    "timestamp": payload.timestamp.isoformat(),
                }
            )
            continue
        node = {**payload.to_dict(), "duration": payload.elapsed, "children": []}
        del stack[depth:]
        stack[-1]["children"].append(node)
        stack.append(node)
        nodes[payload.span_id] = node
    if result is not None:
        root["duration"] = result.elapsed
        root["result"] = result.to_dict()
    return {"run_id": run.run_id, "complete": result is not None, "tree": root, "metrics": metrics}


def _describe(payload: Event | MetricsPoint) -> list[str]:
    """A headline and detail lines for one record of the timeline."""
    if isinstance(payload, RunInfo):
        return ["run start"]
    if isinstance(payload, Setup):
        ontology = payload.ontology
        return [
            f"setup      {ontology.name} ({ontology.format or 'unknown format'}, "
            f"{ontology.triples} triples): load {_seconds(payload.load_duration)}, "
            f"index {_seconds(payload.index_duration)}, "
            f"sense card {_seconds(payload.sense_card_duration)} "
            f"({payload.sense_card_chars} chars)",
            *_section("error", payload.error, 2),
        ]
    if isinstance(payload, MemoryRetrieval):
        return [
            f"memory     retrieved {len(payload.items)} (k={payload.k}) for "
            f"{_shorten(payload.query, 60)!r} in {_seconds(payload.duration)}",
            *(
                f"{item.rank}. {item.title} ({item.memory_id}, score {item.score:.3g})"
                for item in payload.items
            ),
        ]
    if isinstance(payload, Iteration):
        lines = [
            f"iteration  {payload.index} ({_seconds(payload.duration)}, "
            f"{payload.llm_calls_used} sub-LM calls so far)"
        ]
        lines += _section("reasoning", payload.reasoning, 2)
        lines += _section("code", payload.code)
        lines += _section("output", payload.output)
        lines += _section("error", payload.error)
        return lines
    if isinstance(payload, LLMCall):
        tokens = f"{_count(payload.prompt_tokens)} in / {_count(payload.completion_tokens)} out"
        cost = f", ${payload.cost:.4f}" if payload.cost is not None else ""
        return [
            f"lm call    {payload.role} {payload.model}: {tokens} tokens, "
            f"{_seconds(payload.latency)}{cost}",
            *_section("error", payload.error, 2),
        ]
    if isinstance(payload, ToolCall):
        arguments = ", ".join(
            f"{key}={json.dumps(value, ensure_ascii=False)}"
            for key, value in payload.arguments.items()
        )
        return [
            f"tool call  {payload.name}({_shorten(arguments, 80)}) -> "
            f"{payload.result_size} chars in {_seconds(payload.duration)}",
            *_section("result", payload.result_preview, 2),
            *_section("error", payload.error, 2),
        ]
    if isinstance(payload, Judgment):
        verdict = {True: "success", False: "failure", None: "unusable verdict"}[payload.success]
        confidence = (
            f" (confidence {payload.confidence:.2f})" if payload.confidence is not None else ""
        )
        return [f"judgment   {verdict}{confidence}", *_section("reason", payload.reason, 2)]
    if isinstance(payload, MemoryExtraction):
        duplicates = sum(item.duplicate for item in payload.items)
        return [
            f"memory     extracted {len(payload.items)} ({duplicates} already stored)",
            *(
                f"{item.title} ({item.memory_id}{', duplicate' if item.duplicate else ''})"
                for item in payload.items
            ),
        ]
    if isinstance(payload, MetricsPoint):
        where = "run" if payload.step is None else f"step {payload.step}"
        values = ", ".join(f"{name}={value:.4g}" for name, value in payload.values.items())
        return [f"metrics    {where}: {_shorten(values, 100)}"]
    if isinstance(payload, RunResult):
        status = (
            "failed" if payload.error else "converged" if payload.converged else "not converged"
        )
        return [
            f"run end    {status} after {payload.iterations} iterations, {payload.llm_calls} LM "
            f"calls, {payload.tokens} tokens, {_seconds(payload.duration)}",
            *_section("answer", payload.answer),
            *_section("sparql", payload.sparql),
            *_section("error", payload.error),
        ]
    return [payload.kind]


def _section(label: str, text: str | None, max_lines: int = _PREVIEW_LINES) -> list[str]:
    """``label:`` and the first lines of ``text``, each cut to a readable width."""
    if not text:
        return []
    lines = text.splitlines() or [""]
    shown = [f"  │ {_cut(line, _PREVIEW_CHARS)}" for line in lines[:max_lines]]
    if len(lines) > max_lines:
        shown.append(f"  │ … ({len(lines) - max_lines} more lines)")
    return [f"{label}:", *shown]


def _shorten(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters, for table cells and headlines."""
    return _cut(" ".join(text.split()), limit)


def _cut(line: str, limit: int) -> str:
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _seconds(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.0f}ms"
    if value < 60:
        return f"{value:.1f}s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes}m{seconds:02d}s"


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)
