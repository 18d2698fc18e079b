"""The spool: spans that did not reach the endpoint, kept as a run log for ``rlm replay``.

A spool file is an ordinary run log (:mod:`rlm_core.runlog` writes it) holding only the payloads
whose spans were not acknowledged, so replaying it into the tracker sends exactly those spans
again, with their original ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from rlm_core._redact import Redactor
from rlm_core.events import Event, RunInfo
from rlm_core.runlog import MetricsPoint, run_log_text

__all__ = ["write_spool"]

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def write_spool(
    directory: Path, run: RunInfo, payloads: Iterable[Event | MetricsPoint], redactor: Redactor
) -> Path:
    """Write ``DIRECTORY/RUN_ID.jsonl`` (redacted like every file rlm-core writes), payloads in
    the order they were emitted, metrics before the ``run_end`` that carries them."""
    path = directory / f"{_UNSAFE_NAME_CHARS.sub('_', run.run_id) or '_'}.jsonl"
    ordered = sorted(payloads, key=lambda payload: (isinstance(payload, Event), _seq(payload)))
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(run_log_text(run, ordered, redactor.json), encoding="utf-8")
    return path


def _seq(payload: Event | MetricsPoint) -> int:
    return payload.seq if isinstance(payload, Event) else 0
