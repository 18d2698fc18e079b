"""``rlm run`` and ``rlm demo``: one run, with live progress, then the answer."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlm_core._termination import sigterm_ends_runs
from rlm_core.commands.options import (
    EXIT_OK,
    EXIT_RUN_FAILED,
    add_settings_options,
    settings_from,
)
from rlm_core.config import INTERPRETERS
from rlm_core.errors import ConfigError
from rlm_core.events import RunInfo, RunResult
from rlm_core.hookspecs import RunLocation, hookimpl

if TYPE_CHECKING:
    from rlm_core.plugins import PluginManager


def register(commands: Any) -> None:
    run_parser: argparse.ArgumentParser = commands.add_parser(
        "run",
        help="answer a question over an ontology",
        description="Answer QUESTION over the ontology file with a Recursive Language Model, "
        "emitting every step to the enabled trackers. Exit code 0 when the run converged, 1 "
        "when it failed or did not converge, 2 for usage and configuration errors.",
    )
    run_parser.add_argument("question", help="the question to answer")
    run_parser.add_argument(
        "--ontology", required=True, metavar="PATH", help="ontology file (any rdflib format)"
    )
    run_parser.add_argument(
        "--lm", metavar="SPEC", help="LiteLLM model string, or scripted:PATH to replay a cassette"
    )
    run_parser.add_argument("--sub-lm", metavar="SPEC", help="the LM behind llm_query")
    run_parser.add_argument("--max-iterations", type=int, metavar="N")
    run_parser.add_argument("--max-llm-calls", type=int, metavar="N")
    run_parser.add_argument("--record", metavar="PATH", help="write the LM responses to a cassette")
    run_parser.add_argument(
        "--interpreter",
        choices=INTERPRETERS,
        help="where LM-written code runs: 'local' (a subprocess with your files and network, "
        "not a sandbox) or 'deno' (Pyodide in Deno's sandbox; needs deno on PATH)",
    )
    run_parser.add_argument(
        "--lm-allow-mismatch",
        action="store_true",
        help="replay a cassette recorded for another question or ontology (off: exit 2)",
    )
    _add_output_options(run_parser)
    run_parser.set_defaults(handler=_run)

    demo_parser: argparse.ArgumentParser = commands.add_parser(
        "demo",
        help="run a recorded question over the bundled ontology, offline",
        description="Replay a recorded run over the bundled coffee-brewing ontology: no network "
        "and no API key needed, with the same trackers as a real run.",
    )
    _add_output_options(demo_parser)
    demo_parser.set_defaults(handler=_demo)


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE", help="tag the run (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--no-memory",
        action="store_true",
        help="run without procedural memory (no retrieval, judgment or extraction)",
    )
    add_settings_options(parser)


def _run(args: argparse.Namespace) -> int:
    return _execute(
        args,
        args.question,
        Path(args.ontology),
        record=args.record,
        allow_mismatch=args.lm_allow_mismatch,
    )


def _demo(args: argparse.Namespace) -> int:
    from rlm_core._demo import DEMO_CASSETTE, DEMO_ONTOLOGY, DEMO_QUESTION

    args.lm = args.sub_lm = f"scripted:{DEMO_CASSETTE}"
    if not args.json:
        print(
            "rlm demo replays a recorded run: offline, no API key. The ontology tools, memory\n"
            f"and trackers run for real, over the bundled ontology {DEMO_ONTOLOGY.name}.\n\n"
            f"Question: {DEMO_QUESTION}\n",
            flush=True,
        )
    return _execute(args, DEMO_QUESTION, DEMO_ONTOLOGY, record=None, allow_mismatch=False)


def _execute(
    args: argparse.Namespace,
    question: str,
    ontology: Path,
    *,
    record: str | None,
    allow_mismatch: bool,
) -> int:
    from rlm_core.engine import run
    from rlm_core.plugins import get_plugin_manager

    tags = _parse_tags(args.tag)
    settings = settings_from(args)
    if args.no_memory:
        settings = dataclasses.replace(
            settings, memory=dataclasses.replace(settings.memory, enabled=False)
        )
    started = _StartedRuns()
    extra: list[object] = [started]
    if not args.json and sys.stderr.isatty():
        from rlm_core.commands.progress import ProgressLine

        extra.append(ProgressLine())
    manager = get_plugin_manager(settings, plugins=extra)
    with sigterm_ends_runs():
        result = run(
            question,
            ontology,
            config=settings,
            tags=tags,
            record=record,
            manager=manager,
            allow_cassette_mismatch=allow_mismatch,
        )
        _settle(manager, status=not args.json and sys.stderr.isatty())
    locations = _locations(manager, started.runs.get(result.run_id))
    memory = Path(settings.memory.path).resolve() if settings.memory.enabled else None
    undelivered = [name for name, location in locations if not location.delivered]
    if args.json:
        import orjson

        described = {
            "question": question,
            "ontology": str(ontology.resolve()),
            "model": settings.model,
            "sub_model": settings.sub_model or settings.model,
            "locations": {name: location.where for name, location in locations}
            | ({"memory": str(memory)} if memory else {}),
            **result.to_dict(),
        }
        sys.stdout.write(orjson.dumps(described, option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        shown = [(name, location.where) for name, location in locations]
        if memory is not None:
            shown.append(("memory", f"{memory} (procedural memory: rlm memory stats)"))
        _print_result(result, shown)
    return EXIT_OK if result.converged and not undelivered else EXIT_RUN_FAILED


def _settle(manager: PluginManager, *, status: bool) -> None:
    """Wait (bounded, each tracker by its own timeout) until the trackers delivered what they
    were given, with a status line on a terminal, before saying where the run went."""
    from rlm_core._flush import settle

    if status:
        sys.stderr.write("Delivering the run to the trackers…")
        sys.stderr.flush()
    settle(plugin for _, plugin in manager.list_name_plugin())
    if status:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


def _parse_tags(pairs: list[str]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--tag {pair!r}: expected KEY=VALUE")
        tags[key] = value
    return tags


class _StartedRuns:
    """Keeps the runs' :class:`RunInfo`, which ``run_location`` takes."""

    name = "rlm-run-command"

    def __init__(self) -> None:
        self.runs: dict[str, RunInfo] = {}

    @hookimpl
    def run_start(self, run: RunInfo) -> None:
        self.runs[run.run_id] = run


def _locations(manager: PluginManager, run: RunInfo | None) -> list[tuple[str, RunLocation]]:
    """``(plugin, location)`` for every plugin that says where it put the run
    (``run_location``); an answer that is not a RunLocation is taken as its ``where``."""
    if run is None:
        return []
    return [
        (name, location if isinstance(location, RunLocation) else RunLocation(str(location)))
        for name, location in manager.collect("run_location", run=run)
    ]


def _print_result(result: RunResult, locations: list[tuple[str, str]]) -> None:
    status = "converged" if result.converged else "did not converge"
    if result.error:
        status = f"failed: {result.error}"
    print(f"Answer: {result.answer or '(none)'}")
    if result.sparql:
        print("\nSPARQL:")
        print("  " + result.sparql.strip().replace("\n", "\n  "))
    evidence = result.evidence if isinstance(result.evidence, list) else [result.evidence]
    shown = [item for item in evidence if item not in (None, "")]
    if shown:
        print(f"\nEvidence ({len(shown)}):")
        for item in shown[:5]:
            print(f"  - {item}")
        if len(shown) > 5:
            print(f"  ... and {len(shown) - 5} more")
    for problem in result.problems:
        print(f"\nWarning: {problem}")
    print(
        f"\nRun {result.run_id}: {status} · {result.iterations} iterations · "
        f"{result.llm_calls} LM calls · {result.tokens:,} tokens · {result.duration:.1f} s"
    )
    for name, where in locations:
        print(f"  {name}: {where}")
