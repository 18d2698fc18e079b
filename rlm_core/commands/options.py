"""Options and exit codes shared by the subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

from rlm_core.config import CliOptions, Settings, load_settings
from rlm_core.errors import RLMError

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2

STDOUT = "-"
"""The ``-o/--output`` value that means standard output."""


def add_output_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``-o/--output PATH``, ``-`` (the default) for standard output: the one way every command
    that writes a file or a report is told where."""
    parser.add_argument(
        "-o",
        "--output",
        default=STDOUT,
        metavar="PATH",
        help=f"write {what} to PATH; '-' (the default) is standard output",
    )


def check_output(path: str) -> None:
    """Refuse, before any work, an output path that cannot be a file: its directory is missing
    (a typo there would otherwise create directories or fail late) or it is a directory."""
    if path == STDOUT:
        return
    target = Path(path)
    if target.is_dir():
        raise RLMError(f"--output {path}: is a directory; give a file name")
    if not target.parent.is_dir():
        raise RLMError(f"--output {path}: the directory {target.parent} does not exist")


def add_settings_options(parser: argparse.ArgumentParser) -> None:
    """``--config`` and the tracker selection flags."""
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


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the config file, the environment and the parsed command line.

    Commands without model options (``rlm plugins``) simply lack those attributes.
    """
    return load_settings(
        CliOptions(
            config=args.config,
            model=getattr(args, "lm", None),
            sub_model=getattr(args, "sub_lm", None),
            max_iterations=getattr(args, "max_iterations", None),
            max_llm_calls=getattr(args, "max_llm_calls", None),
            interpreter=getattr(args, "interpreter", None),
            trackers=args.trackers,
            no_tracker=args.no_tracker,
            no_trackers=args.no_trackers,
        )
    )
