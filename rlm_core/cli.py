"""The ``rlm`` command: parses arguments, calls the library, renders the result.

Exit codes: 0 ok, 1 the run failed, 2 usage or configuration error. A user error is one line on
stderr, never a traceback. Heavy libraries (dspy, mlflow) are imported only by the commands that
need them, so ``rlm --help`` and ``rlm plugins`` start fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from rlm_core import __version__
from rlm_core.config import CliOptions, Settings, load_settings
from rlm_core.errors import RLMError

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2


def _add_settings_options(parser: argparse.ArgumentParser) -> None:
    """Options every command that builds a plugin manager shares."""
    group = parser.add_argument_group("configuration and trackers")
    group.add_argument("--config", metavar="PATH", help="config file (default: ./rlm.toml)")
    group.add_argument(
        "-t",
        "--tracker",
        action="append",
        default=[],
        metavar="NAME",
        dest="trackers",
        help="enable only these trackers (repeatable)",
    )
    group.add_argument(
        "--no-tracker",
        action="append",
        default=[],
        metavar="NAME",
        help="disable a tracker (repeatable)",
    )
    group.add_argument("--no-trackers", action="store_true", help="disable every tracker")


def _settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(
        CliOptions(
            config=args.config,
            trackers=args.trackers,
            no_tracker=args.no_tracker,
            no_trackers=args.no_trackers,
        )
    )


def _cmd_plugins(args: argparse.Namespace) -> int:
    from rlm_core.plugins import get_plugin_manager

    statuses = get_plugin_manager(_settings_from(args)).statuses()
    if args.json:
        print(json.dumps([status.to_dict() for status in statuses], indent=2))
        return EXIT_OK
    if not statuses:
        print("No rlm plugins are installed (entry point group 'rlm').")
        return EXIT_OK
    rows = [
        (
            s.name,
            f"{s.distribution or '-'} {s.version or ''}".strip(),
            s.state,
            ", ".join(s.hooks) or "-",
        )
        for s in statuses
    ]
    header = ("NAME", "DISTRIBUTION", "STATE", "HOOKS")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(3)]
    for row, status in zip((header, *rows), (None, *statuses), strict=True):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + row[3]
        )
        if status is not None and status.reason:
            print(" " * (widths[0] + 2) + f"└ {status.reason}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``rlm`` command."""
    parser = argparse.ArgumentParser(
        prog="rlm",
        description="Run Recursive Language Model queries over RDF ontologies, observably.",
    )
    parser.add_argument("--version", action="version", version=f"rlm-core {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    plugins = commands.add_parser(
        "plugins",
        help="list installed plugins, their state and hooks",
        description="List every plugin of the 'rlm' entry point group: distribution and "
        "version, state (enabled, disabled, unavailable, blocked) with the reason, and hooks.",
    )
    plugins.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_settings_options(plugins)
    plugins.set_defaults(handler=_cmd_plugins)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rlm`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return handler(args)
    except RLMError as exc:
        print(f"rlm: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rlm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
