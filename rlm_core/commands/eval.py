"""``rlm eval run|report|demo``: experiments over a task set, graded, compared, resumable."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rlm_core.commands.options import (
    EXIT_OK,
    EXIT_RUN_FAILED,
    add_settings_options,
    settings_from,
)
from rlm_core.config import Settings

FORMATS = ("table", "markdown", "json", "html")


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "eval",
        help="run a task set under several conditions and compare",
        description="Experiments: a task set x conditions x trials, each run observed by every "
        "tracker and graded; reports with intervals, pass@k and paired comparisons.",
    )
    actions = parser.add_subparsers(dest="eval_command", metavar="ACTION")
    parser.set_defaults(handler=lambda _args: _usage(parser))

    run = actions.add_parser(
        "run",
        help="run the matrix (resumes an interrupted eval in the same --out)",
        description="Run every task of TASKS under each condition, --trials times. Results are "
        "appended to --out as each run ends; running again with the same --out skips the "
        "finished runs. Exit 0 when every run ran, 1 when runs errored, 2 for usage errors.",
    )
    run.add_argument("tasks", metavar="TASKS", help="task file (.yaml or .jsonl)")
    _add_run_options(run)
    run.set_defaults(handler=_run)

    report = actions.add_parser(
        "report",
        help="summarize an eval directory",
        description="Per task and condition: success rate with a 95%% Wilson interval, pass@k, "
        "pass^k, tokens, cost, latency, iterations; a paired comparison of the conditions.",
    )
    report.add_argument("directory", metavar="DIR", help="the --out directory of rlm eval run")
    _add_report_options(report)
    report.set_defaults(handler=_report)

    demo = actions.add_parser(
        "demo",
        help="run the bundled eval offline (recorded LMs, no key)",
        description="Run the bundled task set over the coffee ontology with recorded LMs, "
        "memory on and off, then print the report.",
    )
    demo.add_argument("--out", metavar="DIR", default="eval-demo", help="default: eval-demo")
    demo.add_argument("--trials", type=int, default=2, metavar="N", help="default: 2")
    demo.add_argument("--workers", type=int, default=2, metavar="N", help="default: 2")
    demo.add_argument("--no-report", action="store_true", help="do not print the report")
    _add_report_options(demo)
    add_settings_options(demo)
    demo.set_defaults(handler=_demo)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trials", type=int, metavar="N", help="runs per task and condition")
    parser.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a setting to compare: memory=on,off or model=A,B (repeatable: all combinations)",
    )
    parser.add_argument("--workers", type=int, metavar="N", help="runs at once (default 1)")
    parser.add_argument("--out", metavar="DIR", help="results directory (default: [eval] out)")
    parser.add_argument("--memory-pack", metavar="PACK", help="seed each memory database")
    parser.add_argument("--executor", choices=("local", "ray"), help="where runs execute")
    parser.add_argument("--ray-address", metavar="ADDR", help="Ray cluster (default RAY_ADDRESS)")
    parser.add_argument("--query-timeout", type=float, metavar="S", help="grader query bound")
    parser.add_argument("--lm", metavar="SPEC", help="model; scripted:DIR replays DIR/<task>.jsonl")
    parser.add_argument("--sub-lm", metavar="SPEC", help="the LM behind llm_query")
    parser.add_argument("--max-iterations", type=int, metavar="N")
    parser.add_argument("--max-llm-calls", type=int, metavar="N")
    parser.add_argument("--no-report", action="store_true", help="do not print the report")
    _add_report_options(parser)
    add_settings_options(parser)


def _add_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="table", help="default: table")
    parser.add_argument("-o", "--output", metavar="FILE", default="-", help="default: - (stdout)")
    parser.add_argument("--plot", metavar="PNG", help="also draw success by condition")


def _run(args: argparse.Namespace) -> int:
    from rlm_core.eval.driver import EvalOptions

    settings = settings_from(args)
    defaults = settings.eval
    options = EvalOptions(
        tasks=Path(args.tasks),
        out=Path(args.out or defaults.out),
        trials=args.trials if args.trials is not None else defaults.trials,
        vary=tuple(args.vary),
        workers=args.workers if args.workers is not None else defaults.workers,
        executor=args.executor or defaults.executor,
        ray_address=args.ray_address or defaults.ray_address,
        memory_pack=_path(args.memory_pack or defaults.memory_pack),
        query_timeout=args.query_timeout or defaults.query_timeout,
    )
    return _execute(args, options, settings)


def _demo(args: argparse.Namespace) -> int:
    from rlm_core.eval.demo import DEMO_CASSETTES, DEMO_TASKS
    from rlm_core.eval.driver import EvalOptions

    args.lm = args.sub_lm = f"scripted:{DEMO_CASSETTES}"
    settings = settings_from(args)
    options = EvalOptions(
        tasks=DEMO_TASKS,
        out=Path(args.out),
        trials=args.trials,
        vary=("memory=on,off",),
        workers=args.workers,
    )
    return _execute(args, options, settings)


def _execute(args: argparse.Namespace, options: Any, settings: Settings) -> int:
    from rlm_core.eval.driver import run_eval

    outcome = run_eval(options, settings)
    print(
        f"rlm eval: {outcome.ran} runs ran, {outcome.skipped} already done, results in "
        f"{outcome.out}" + (" (interrupted: run again to resume)" if outcome.interrupted else ""),
        file=sys.stderr,
    )
    if not args.no_report:
        _write_report(outcome.out, args.format, args.output, args.plot)
    if outcome.interrupted:
        return 130
    return EXIT_RUN_FAILED if any(r.error for r in outcome.records) else EXIT_OK


def _report(args: argparse.Namespace) -> int:
    _write_report(Path(args.directory), args.format, args.output, args.plot)
    return EXIT_OK


def _write_report(directory: Path, fmt: str, output: str, plot: str | None) -> None:
    from rlm_core.eval.report import load_report, render

    report = load_report(directory)
    if plot:
        from rlm_core.eval.plot import write_plot

        write_plot(report, Path(plot))
    text = render(report, fmt, page_dir=None if output == "-" else Path(output).parent)
    if output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")
        print(f"rlm eval: report written to {output}", file=sys.stderr)


def _path(value: str | None) -> Path | None:
    return None if value is None else Path(value)
