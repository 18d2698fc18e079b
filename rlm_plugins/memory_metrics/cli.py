"""``rlm memory report``: the command line of the memory-metrics report (:mod:`.report`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rlm_core.commands.options import EXIT_OK, STDOUT, add_output_option, check_output
from rlm_core.config import CliOptions, load_settings
from rlm_plugins.memory_metrics.report import (
    ReportError,
    build_report,
    check_plot_path,
    no_runs,
    read_runs,
    render,
    require_matplotlib,
    write_plot,
)
from rlm_plugins.memory_metrics.tracker import DEFAULT_STATE

_PLUGIN = "memory_metrics"


def register_report(subcommands: Any) -> None:
    """Add ``report`` to the subcommands of ``rlm memory``."""
    report = subcommands.add_parser(
        "report",
        help="do memories help? runs with vs without memory, and each memory's record",
        description="Compare runs with memory (at least one memory in the prompt) and without "
        "it, per ontology: success (judged runs), convergence, iterations, tokens, duration. "
        "Then, per memory: how often it was retrieved and used, and the success rate of the "
        "runs that retrieved it against runs of the same ontologies without it. Reads what "
        "the memory_metrics tracker recorded.",
    )
    report.add_argument("--ontology", metavar="NAME", help="only runs on this ontology")
    report.add_argument(
        "--format",
        choices=("table", "json", "markdown"),
        default="table",
        help="output format (table)",
    )
    add_output_option(report, "the report")
    report.add_argument(
        "--plot",
        metavar="PATH",
        help="also write a PNG over time (needs matplotlib: the plot extra)",
    )
    report.add_argument(
        "--state",
        metavar="PATH",
        help=f"the tracker's state file (default: [plugins.{_PLUGIN}] state, {DEFAULT_STATE})",
    )
    report.add_argument("--config", metavar="PATH", help="config file (default: ./rlm.toml)")
    report.set_defaults(handler=memory_report)


def memory_report(args: argparse.Namespace) -> int:
    """Print the report; write the plot when asked, and say where it went."""
    check_output(args.output)  # before reading or printing anything: these are usage errors
    plot = Path(args.plot) if args.plot else None
    if plot is not None:
        check_plot_path(plot)
        require_matplotlib()
    path = Path(args.state or _configured_state(args.config))
    runs = read_runs(path, args.ontology)
    report = build_report(runs, state=str(path), ontology=args.ontology)
    if args.format == "json":
        text = json.dumps(report, indent=2, ensure_ascii=False)
    else:
        text = render(report, markdown=args.format == "markdown")
    # Where the report goes is the output; what was written where is said beside it, on
    # stderr when stdout holds JSON, which must stay JSON alone.
    told = sys.stderr if args.output == STDOUT and args.format == "json" else sys.stdout
    if args.output == STDOUT:
        print(text)
    else:
        _write(Path(args.output), text + "\n")
        print(f"Report written to {Path(args.output).resolve()}", file=told)
    if plot is not None:
        if not runs:
            raise ReportError(f"nothing to plot: {no_runs(path, args.ontology)}")
        write_plot(runs, plot, args.ontology)
        print(f"Plot written to {plot.resolve()}", file=told)
    return EXIT_OK


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write the report to {path}: {exc.strerror or exc}") from None


def _configured_state(config: str | None) -> str:
    state = load_settings(CliOptions(config=config)).plugin_config(_PLUGIN).get("state")
    return state if isinstance(state, str) and state else DEFAULT_STATE
