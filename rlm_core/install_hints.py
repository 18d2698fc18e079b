"""Install hints that install from a path, never from the public package index by name.

The name ``rlm-core`` on the public index belongs to an unrelated project, and a scaffolded
plugin's name (``rlm-my-tracker``) may too, so a hint such as ``pip install 'rlm-core[plot]'``
would install someone else's code. Every hint rlm-core prints comes from here and names the
directory the distribution was installed from (pip records it in ``direct_url.json``), or a
``PATH/TO/...`` placeholder for a checkout when that is not known.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shlex
from pathlib import Path
from urllib.parse import unquote, urlparse

__all__ = ["DISTRIBUTION", "extra_providing", "install_hint", "installed_from"]

DISTRIBUTION = "rlm-core"

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def installed_from(distribution: str) -> tuple[Path, bool] | None:
    """The local directory ``distribution`` was installed from and whether the install is
    editable; None when it came from an index, an archive or is not installed."""
    try:
        recorded = importlib.metadata.distribution(distribution).read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return None
    if not recorded:
        return None
    try:
        origin = json.loads(recorded)
    except ValueError:
        return None
    url = origin.get("url", "") if isinstance(origin, dict) else ""
    directory = origin.get("dir_info") if isinstance(origin, dict) else None
    if not isinstance(url, str) or not url.startswith("file:") or not isinstance(directory, dict):
        return None
    path = Path(unquote(urlparse(url).path))
    if not path.is_dir():
        return None
    return path, bool(directory.get("editable", False))


def install_hint(distribution: str = DISTRIBUTION, extra: str | None = None) -> str:
    """A pip command that (re)installs ``distribution``, with ``extra``, from its directory:
    ``pip install -e '/home/me/rlm-core[plot]'``; ``PATH/TO/NAME`` when the directory is not
    known (then always editable, as from a checkout)."""
    found = installed_from(distribution)
    target = str(found[0]) if found else f"PATH/TO/{distribution}"
    editable = found[1] if found else True
    spec = f"{target}[{extra}]" if extra else target
    return "pip install " + ("-e " if editable else "") + shlex.quote(spec)


def extra_providing(distribution: str, module: str) -> str | None:
    """The extra of ``distribution`` that installs the top-level ``module`` (the smallest such
    extra, so ``plot`` rather than ``all``); None when no extra does."""
    try:
        requirements = importlib.metadata.distribution(distribution).requires or []
    except importlib.metadata.PackageNotFoundError:
        return None
    wanted = _normal(module)
    sizes: dict[str, int] = {}
    providing: set[str] = set()
    for requirement in requirements:
        name, extra = _REQUIREMENT.match(requirement), _EXTRA_MARKER.search(requirement)
        if name is None or extra is None:
            continue
        sizes[extra.group(1)] = sizes.get(extra.group(1), 0) + 1
        normal = _normal(name.group(1))
        if normal == wanted or normal.startswith(wanted + "-"):
            providing.add(extra.group(1))
    if not providing:
        return None
    return min(providing, key=lambda extra: (sizes[extra], extra))


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
