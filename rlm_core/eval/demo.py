"""The bundled eval: three questions over the coffee demo ontology, with a cassette per task.

``rlm eval demo`` runs it with memory on and off and no network; the tests use the same files.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEMO_CASSETTES", "DEMO_TASKS"]

_DATA = Path(__file__).resolve().parent.parent / "data" / "eval"

DEMO_TASKS = _DATA / "tasks.yaml"
"""The task file; ``farm-altitude`` is answered wrongly on purpose: the report shows a failure."""

DEMO_CASSETTES = _DATA / "cassettes"
"""``<task id>.jsonl`` per task: use the model ``scripted:`` + this directory."""
