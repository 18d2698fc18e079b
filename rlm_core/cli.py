"""The ``rlm`` command: parses arguments, calls the library, renders the result.

Exit codes: 0 ok, 1 the run failed, 2 usage or configuration error. A user error is one line on
stderr, never a traceback. Heavy libraries (dspy, mlflow) are imported only by the commands that
need them, so ``rlm --help`` and ``rlm plugins`` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from rlm_core import __version__
from rlm_core.commands.options import EXIT_USAGE
from rlm_core.commands.suggest import SuggestingParser
from rlm_core.errors import RLMError

# Order is the order of ``rlm --help``.
_COMMANDS = (
    "rlm_core.commands.run",
    "rlm_core.commands.runs",
    "rlm_core.commands.replay",
    "rlm_core.commands.eval",
    "rlm_core.commands.memory",
    "rlm_plugins.mlflow.cli",
    "rlm_core.commands.plugins",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``rlm`` command."""
    parser = SuggestingParser(
        prog="rlm",
        description="Run Recursive Language Model queries over RDF ontologies, observably.",
    )
    parser.add_argument("--version", action="version", version=f"rlm-core {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(name).register(commands)
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
    except BrokenPipeError:
        # The reader went away (``rlm runs show ... | head``): not an error of ours.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
