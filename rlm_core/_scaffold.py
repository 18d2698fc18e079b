"""``rlm plugins new NAME``: a tracker package that installs, runs and passes its own tests.

The package is generated from the templates in ``rlm_core/data/scaffold``: a ``pyproject.toml``
with an ``rlm`` entry point, a tracker class built on
:class:`~rlm_core.delivery.BackgroundDelivery`, tests that use rlm-core's pytest fixtures and
conformance kit, and a README. It declares no dependency on rlm-core, because the name belongs to
an unrelated project on the public package index and pip must never resolve it there.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.resources
import re
import string
from pathlib import Path

from rlm_core.errors import RLMError
from rlm_core.plugins import ENTRY_POINT_GROUP

__all__ = ["PluginNames", "ScaffoldError", "plugin_names", "scaffold_plugin"]

_VALID_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
_PREFIX = re.compile(r"rlm[-_]")
# template in rlm_core/data/scaffold -> where it goes in the package (placeholders allowed)
_FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "tracker.py.tmpl": "src/${package}/__init__.py",
    "test_tracker.py.tmpl": "tests/test_${plugin}.py",
}


class ScaffoldError(RLMError, ValueError):
    """The plugin name is not usable or the package directory is taken; nothing was written."""


@dataclasses.dataclass(frozen=True)
class PluginNames:
    """The names one plugin goes by, all derived from the name the author chose."""

    plugin: str
    """Entry point name: what users select (``-t my_tracker``) and configure."""
    distribution: str
    """Distribution name, the package directory and what ``pip install`` takes."""
    package: str
    """Import package."""
    cls: str
    """The tracker class."""


def plugin_names(name: str) -> PluginNames:
    """Derive the plugin's names from ``name`` (``my_tracker``, ``my-tracker`` or
    ``rlm-my-tracker`` give the same ones); raise :class:`ScaffoldError` for anything else."""
    if not _VALID_NAME.fullmatch(name):
        raise ScaffoldError(
            f"plugin name {name!r} is not valid: use lowercase letters and digits, starting "
            "with a letter, with single '-' or '_' between words (e.g. my_tracker)"
        )
    words = re.split(r"[-_]", _PREFIX.sub("", name, count=1))
    cls = "".join(word.capitalize() for word in words)
    return PluginNames(
        plugin="_".join(words),
        distribution="rlm-" + "-".join(words),
        package="rlm_" + "_".join(words),
        cls=cls if cls.endswith("Tracker") else f"{cls}Tracker",
    )


def scaffold_plugin(name: str, directory: Path) -> Path:
    """Create the package of plugin ``name`` in ``directory`` and return its root,
    ``directory / "rlm-NAME"``.

    :raises ScaffoldError: the name is not valid, an installed plugin already uses it, or the
        package directory exists and is not empty (nothing is overwritten).
    """
    names = plugin_names(name)
    taken = {
        entry_point.name: entry_point.dist.name if entry_point.dist else "an unknown package"
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    }
    if names.plugin in taken:
        raise ScaffoldError(
            f"plugin name {names.plugin!r} is already used by an installed plugin "
            f"({taken[names.plugin]}); choose another name"
        )
    root = Path(directory) / names.distribution
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ScaffoldError(f"{root} already exists and is not empty; nothing was written")
    values = dataclasses.asdict(names)
    templates = importlib.resources.files("rlm_core") / "data" / "scaffold"
    for template, target in _FILES.items():
        path = root / string.Template(target).substitute(values)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = string.Template(templates.joinpath(template).read_text(encoding="utf-8"))
        path.write_text(text.substitute(values), encoding="utf-8")
    return root
