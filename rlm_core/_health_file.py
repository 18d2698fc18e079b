"""What went wrong with plugins in recent runs, kept in a small file for ``rlm plugins``.

Blocking is per process, so a later ``rlm plugins`` cannot see it live. After a run in which a
plugin raised or was blocked, the engine records it here (``rlm-plugin-health.json`` in the
working directory); runs where every plugin behaved write nothing.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlm_core.events import utc_now

__all__ = ["HEALTH_FILE", "read_health", "record_health"]

HEALTH_FILE = "rlm-plugin-health.json"


def read_health(path: str | Path = HEALTH_FILE) -> dict[str, dict[str, Any]]:
    """Plugin name -> its last recorded trouble; empty when there is no (readable) file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record_health(
    run_id: str,
    errors: Mapping[str, int],
    blocked: Mapping[str, str],
    path: str | Path = HEALTH_FILE,
    undelivered: Mapping[str, str] | None = None,
) -> None:
    """Merge one run's plugin trouble into the file (atomically: write, then rename).

    ``undelivered``: plugin -> where it kept the part of the run its backend did not get."""
    undelivered = undelivered or {}
    if not errors and not blocked and not undelivered:
        return
    path = Path(path)
    health = read_health(path)
    when = utc_now().isoformat()
    for name in {*errors, *blocked, *undelivered}:
        entry = health.get(name, {})
        health[name] = {
            "run_id": run_id,
            "at": when,
            "errors": errors.get(name, 0),
            "total_errors": int(entry.get("total_errors", 0)) + errors.get(name, 0),
            "blocked": blocked.get(name),
            "undelivered": undelivered.get(name),
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        json.dump(health, file, indent=2, sort_keys=True)
    os.replace(temporary, path)
