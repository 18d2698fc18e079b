"""``rlm memory stats|search|export|import``: look into procedural memory and share it as packs.

Imports neither DSPy nor anything heavy: these commands only read and write the SQLite file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from rlm_core.commands.options import EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE
from rlm_core.config import CliOptions, load_settings
from rlm_core.memory.base import MemoryStats, MemoryUse
from rlm_core.memory.store import SQLiteMemoryStore

_MAX_PROBLEMS_SHOWN = 50
_TITLE_CHARS = 60


def register(commands: Any) -> Any:
    """Add ``rlm memory``; return its subcommands, to which plugins add theirs."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("database")
    group.add_argument(
        "--db", metavar="PATH", help="memory database (default: [memory] path, rlm-memory.db)"
    )
    group.add_argument("--config", metavar="PATH", help="config file (default: ./rlm.toml)")

    parser: argparse.ArgumentParser = commands.add_parser(
        "memory",
        help="inspect, search, export and import procedural memory",
        description="Procedural memory: strategies learned from earlier runs, retrieved for new "
        "questions. Look into the database and move memories between databases as JSONL packs.",
    )
    parser.set_defaults(handler=_print_help(parser))
    subcommands = parser.add_subparsers(dest="memory_command", metavar="SUBCOMMAND")

    stats = subcommands.add_parser(
        "stats",
        parents=[common],
        help="counts, and the memories used most and with most success",
        description="Counts of memories, runs, uses and judgments, then the memories used most "
        "and those with the best success rate.",
    )
    stats.add_argument("--top", type=_positive, default=5, metavar="N", help="rows per table")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(handler=memory_stats)

    search = subcommands.add_parser(
        "search",
        parents=[common],
        help="the memories that best match a query",
        description="Rank memories against QUERY with BM25, as a run does before it starts. "
        "The query is plain text: FTS5 operators in it are searched as words. Scores are "
        "-bm25(): higher is better, comparable within one query.",
    )
    search.add_argument("query", metavar="QUERY", help="text to match")
    search.add_argument("--ontology", metavar="NAME", help="this ontology's and unscoped memories")
    search.add_argument(
        "--tag", action="append", default=[], metavar="TAG", help="require a tag (repeatable)"
    )
    search.add_argument("-k", type=_positive, default=10, metavar="N", help="how many (10)")
    search.add_argument("--json", action="store_true", help="print JSON")
    search.set_defaults(handler=memory_search)

    export = subcommands.add_parser(
        "export",
        parents=[common],
        help="write memories to a JSONL pack",
        description="Write every memory (or one ontology's) to FILE as a JSONL pack, '-' for "
        "standard output.",
    )
    export.add_argument("file", metavar="FILE", help="the pack to write, or -")
    export.add_argument("--ontology", metavar="NAME", help="only memories scoped to this ontology")
    export.set_defaults(handler=memory_export)

    importer = subcommands.add_parser(
        "import",
        parents=[common],
        help="add the memories of a JSONL pack",
        description="Add the memories of FILE ('-' for standard input), creating the database "
        "if needed. Memories already stored are skipped, so importing twice adds nothing. Bad "
        "lines are reported with their number and skipped; the exit code is then 1.",
    )
    importer.add_argument("file", metavar="FILE", help="the pack to read, or -")
    importer.set_defaults(handler=memory_import)
    return subcommands  # plugins add theirs (``rlm memory report``)


def _print_help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def show(args: argparse.Namespace) -> int:
        parser.print_help()
        return EXIT_USAGE

    return show


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _open(args: argparse.Namespace, *, create: bool) -> SQLiteMemoryStore:
    path = args.db or load_settings(CliOptions(config=args.config)).memory.path
    return SQLiteMemoryStore(path, create=create)


def memory_stats(args: argparse.Namespace) -> int:
    with _open(args, create=False) as store:
        stats = store.stats(top=args.top)
    if args.json:
        print(json.dumps(stats.to_dict(), indent=2))
    else:
        _print_stats(stats)
    return EXIT_OK


def _print_stats(stats: MemoryStats) -> None:
    scopes = ", ".join(f"{scope}: {count}" for scope, count in stats.by_scope.items())
    judged = stats.judged_success + stats.judged_failure + stats.judged_unknown
    print(f"Memory database {stats.path} (schema version {stats.schema_version})")
    print(f"  memories  {stats.memories}" + (f"  ({scopes})" if scopes else ""))
    print(f"  runs      {stats.runs}")
    print(
        f"  judged    {judged}  ({stats.judged_success} succeeded, {stats.judged_failure} "
        f"failed, {stats.judged_unknown} unknown)"
    )
    print(f"  uses      {stats.usages}")
    for heading, rows in (
        ("Most used", stats.most_used),
        ("Best success rate", stats.most_successful),
    ):
        print(f"\n{heading}:")
        if rows:
            _print_uses(rows)
        else:
            print("  (none yet)")


def _print_uses(rows: tuple[MemoryUse, ...]) -> None:
    print(f"  {'USES':>5} {'OK':>4} {'FAIL':>4} {'RATE':>5}  {'ID':<16}  TITLE")
    for row in rows:
        rate = "-" if row.success_rate is None else f"{row.success_rate:.0%}"
        print(
            f"  {row.access_count:>5} {row.success_count:>4} {row.failure_count:>4} {rate:>5}  "
            f"{row.memory_id:<16}  {_shorten(row.title)}" + (f" [{row.scope}]" if row.scope else "")
        )


def memory_search(args: argparse.Namespace) -> int:
    with _open(args, create=False) as store:
        items = store.retrieve(args.query, args.k, ontology=args.ontology, tags=args.tag)
    if args.json:
        listing = {
            "query": args.query,
            "items": [
                {
                    "rank": item.rank,
                    "score": item.score,
                    "memory_id": item.memory_id,
                    "title": item.title,
                    "description": item.description,
                    "content": item.content,
                    "tags": list(item.tags),
                    "scope": item.scope,
                }
                for item in items
            ],
        }
        print(json.dumps(listing, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not items:
        print(f"No memory matches {args.query!r}.")
        return EXIT_OK
    print(f"{'RANK':>4}  {'SCORE':>9}  {'ID':<16}  TITLE")
    for item in items:
        scope = f" [{item.scope}]" if item.scope else ""
        print(f"{item.rank:>4}  {item.score:>9.4g}  {item.memory_id:<16}  {item.title}{scope}")
        if item.description:
            print(f"{'':>35}{_shorten(item.description)}")
    return EXIT_OK


def memory_export(args: argparse.Namespace) -> int:
    from rlm_core.memory.packs import export_pack

    with _open(args, create=False) as store:
        destination = sys.stdout if args.file == "-" else args.file
        count = export_pack(store, destination, ontology=args.ontology)
    where = "standard output" if args.file == "-" else args.file
    print(f"Exported {count} memories to {where}.", file=sys.stderr if args.file == "-" else None)
    return EXIT_OK


def memory_import(args: argparse.Namespace) -> int:
    from rlm_core.memory.packs import import_pack

    with _open(args, create=True) as store:
        report = import_pack(store, sys.stdin.buffer if args.file == "-" else args.file)
    print(
        f"Imported {report.added} new memories from {report.source} into {store.path} "
        f"({report.duplicates} already stored, {len(report.problems)} lines rejected)."
    )
    for problem in report.problems[:_MAX_PROBLEMS_SHOWN]:
        print(f"{report.source}:{problem.line}: {problem.message}", file=sys.stderr)
    if len(report.problems) > _MAX_PROBLEMS_SHOWN:
        print(f"... and {len(report.problems) - _MAX_PROBLEMS_SHOWN} more", file=sys.stderr)
    return EXIT_RUN_FAILED if report.problems else EXIT_OK


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _TITLE_CHARS else text[: _TITLE_CHARS - 1] + "…"
