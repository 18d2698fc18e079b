"""``rlm plugins``: what is installed, in which state, implementing which hooks."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rlm_core.commands.options import EXIT_OK, add_settings_options, settings_from


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "plugins",
        help="list installed plugins, their state and hooks",
        description="List every plugin of the 'rlm' entry point group: distribution and "
        "version, state (enabled, disabled, unavailable, blocked) with the reason, and hooks.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_settings_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rlm_core.plugins import get_plugin_manager

    statuses = get_plugin_manager(settings_from(args)).statuses()
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
        cells = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        print(f"{cells}  {row[3]}")
        if status is not None and status.reason:
            print(" " * (widths[0] + 2) + f"└ {status.reason}")
    return EXIT_OK
