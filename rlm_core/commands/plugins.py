"""``rlm plugins``: what is installed, in which state, implementing which hooks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
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
    subcommands = parser.add_subparsers(dest="plugins_command", metavar="SUBCOMMAND")
    new = subcommands.add_parser(
        "new",
        help="create a plugin package to start from",
        description="Create rlm-NAME/: a package with an 'rlm' entry point, a tracker class "
        "with the main hooks, tests that use rlm-core's pytest fixtures and the conformance "
        "kit, and a README. Its tests pass as generated.",
    )
    new.add_argument("name", metavar="NAME", help="plugin name, e.g. my_tracker")
    new.add_argument("--dir", default=".", metavar="DIR", help="where to create it (default: here)")
    new.set_defaults(handler=new_plugin)


def new_plugin(args: argparse.Namespace) -> int:
    from rlm_core._scaffold import plugin_names, scaffold_plugin

    root = scaffold_plugin(args.name, Path(args.dir))
    names = plugin_names(args.name)
    print(f"Created {root}")
    print("Next steps; paste them as they are (rlm-core stays as installed, from its checkout):")
    for command, why in next_steps(root, names.plugin):
        print(f"  {command:<44}  # {why}")
    return EXIT_OK


def next_steps(root: Path, plugin: str) -> list[tuple[str, str]]:
    """The commands that install and try a new plugin package, and what each is for.

    The package is named by its path (``./rlm-my-tracker``), never by its name, which pip would
    look up on the public package index; it declares no dependency, so pip never resolves
    rlm-core either.
    """
    import shlex

    where = root.as_posix()
    if not root.is_absolute() and not where.startswith("."):
        where = f"./{where}"
    package = shlex.quote(where)
    return [
        (f"python -m pip install -e {package}", f"installs the '{plugin}' entry point"),
        (f"rlm demo -t {plugin}", "a recorded run, offline, with only this tracker"),
        ("python -m pip install pytest", "the tests' one dependency besides rlm-core"),
        (f"(cd {package} && python -m pytest)", "its tests pass as generated"),
    ]


def run(args: argparse.Namespace) -> int:
    from rlm_core._health_file import read_health
    from rlm_core.plugins import get_plugin_manager

    statuses = get_plugin_manager(settings_from(args)).statuses()
    trouble = read_health()
    if args.json:
        listing = [
            status.to_dict() | {"last_trouble": trouble.get(status.name)} for status in statuses
        ]
        print(json.dumps(listing, indent=2))
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
        if status is None:
            continue
        if status.reason:
            print(" " * (widths[0] + 2) + f"└ {status.reason}")
        if status.name in trouble:
            print(" " * (widths[0] + 2) + f"└ {_describe(trouble[status.name])}")
    return EXIT_OK


def _describe(trouble: dict[str, Any]) -> str:
    """``last trouble in run R at T: 3 errors; blocked: reason``."""
    parts = [f"{trouble.get('errors', 0)} errors ({trouble.get('total_errors', 0)} in all)"]
    if trouble.get("blocked"):
        parts.append(f"blocked: {trouble['blocked']}")
    if trouble.get("undelivered"):
        parts.append(f"not delivered, kept in {trouble['undelivered']}")
    return f"last trouble in run {trouble.get('run_id')} at {trouble.get('at')}: " + "; ".join(
        parts
    )
