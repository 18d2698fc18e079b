"""The ``rlm`` command: parses arguments, calls the library, renders the result.

Exit codes: 0 ok, 1 the run failed, 2 usage or configuration error. A user error is one line on
stderr, never a traceback. Heavy libraries (dspy, trackers' backends) are imported only by the
commands that need them, so ``rlm --help`` and ``rlm plugins`` start fast.

Plugins add their own subcommands through the ``register_commands`` hook; this module names
none of them. Their entry points are loaded only when the command line may need them: for
``--help``, a group that takes plugin subcommands, or a name that is not one of rlm-core's.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

from rlm_core import __version__
from rlm_core.commands.options import EXIT_USAGE
from rlm_core.errors import RLMError
from rlm_core.logs import configure_cli

if TYPE_CHECKING:
    from rlm_core.plugins import PluginStatus

# Command modules, in the order of ``rlm --help``, and the commands each adds.
_CORE = {
    "run": ("run", "demo"),
    "runs": ("runs",),
    "replay": ("replay",),
    "memory": ("memory",),
    "plugins": ("plugins",),
}
_CORE_COMMANDS = frozenset(name for names in _CORE.values() for name in names)
# rlm-core's command groups that take subcommands from plugins (``rlm memory report``).
_PLUGIN_GROUPS = frozenset({"memory"})


class _Parser(argparse.ArgumentParser):
    """``rlm``'s parsers: a command that is missing names the installed plugins that could not be
    imported (one of them would have provided it), with the reason each is unavailable."""

    unavailable: Sequence[PluginStatus] = ()

    def error(self, message: str) -> NoReturn:
        wrong = re.match(r"argument \S+: invalid choice: '([^']*)'", message)
        if wrong and self.unavailable:
            name = wrong.group(1)
            named = [status for status in self.unavailable if status.name == name]
            which = "would provide it" if named else "may provide it"
            reasons = "; ".join(
                f"{status.name!r} ({status.reason})" for status in named or self.unavailable
            )
            message = f"{message}; unavailable plugin(s) {which}: {reasons}"
        super().error(message)


def build_parser(*, plugins: bool = True) -> argparse.ArgumentParser:
    """The argument parser of the ``rlm`` command; with ``plugins``, their subcommands too."""
    unavailable: list[PluginStatus] = []
    parser_class = type("RlmParser", (_Parser,), {"unavailable": unavailable})
    parser: argparse.ArgumentParser = parser_class(
        prog="rlm",
        description="Run Recursive Language Model queries over RDF ontologies, observably.",
    )
    parser.add_argument("--version", action="version", version=f"rlm-core {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="more diagnostics: info lines, tracebacks of failing plugins, backends' chatter",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups = {}
    for module in _CORE:
        group = importlib.import_module(f"rlm_core.commands.{module}").register(commands)
        if module in _PLUGIN_GROUPS:
            groups[module] = group
    if plugins:
        from rlm_core.plugins import add_plugin_commands

        unavailable.extend(add_plugin_commands(commands, groups))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rlm`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Before the plugins are loaded: their import failures are diagnostics too.
    configure_cli(verbose_output=_verbose(argv))
    parser = build_parser(plugins=_needs_plugins(argv))
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


def _verbose(argv: Sequence[str]) -> bool:
    """``-v``/``--verbose`` before the command (where the parser accepts it)."""
    for arg in argv:
        if arg in ("-v", "--verbose"):
            return True
        if not arg.startswith("-"):
            return False
    return False


def _needs_plugins(argv: Sequence[str]) -> bool:
    """False when the command is one of rlm-core's own without plugin subcommands."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    return command is None or command not in _CORE_COMMANDS or command in _PLUGIN_GROUPS


if __name__ == "__main__":
    sys.exit(main())
