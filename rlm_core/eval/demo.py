"""The bundled eval: three questions over the coffee demo ontology, with a cassette per task.

``rlm eval demo`` runs it with memory on and off and no network; the tests use the same files.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["DEMO_CASSETTES", "DEMO_TASKS", "copy_demo"]

_DATA = Path(__file__).resolve().parent.parent / "data" / "eval"

DEMO_TASKS = _DATA / "tasks.yaml"
"""The task file; ``farm-altitude`` is answered wrongly on purpose: the report shows a failure."""

DEMO_CASSETTES = _DATA / "cassettes"
"""``<task id>.jsonl`` per task: use the model ``scripted:`` + this directory."""


def copy_demo(directory: Path, latency_ms: float = 0.0) -> tuple[Path, Path]:
    """The demo task file and its cassettes copied into ``directory`` (returned in that order),
    every LM response ``latency_ms`` late: what parallel workers buy shows without a network."""
    from rlm_core._demo import DEMO_ONTOLOGY

    cassettes = directory / "cassettes"
    cassettes.mkdir(parents=True)
    for source in DEMO_CASSETTES.glob("*.jsonl"):
        lines = []
        for line in source.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if "role" in record:
                record["latency_ms"] = latency_ms
            lines.append(json.dumps(record))
        (cassettes / source.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    tasks = directory / "tasks.yaml"
    text = DEMO_TASKS.read_text(encoding="utf-8").replace("../demo/coffee.ttl", str(DEMO_ONTOLOGY))
    tasks.write_text(text, encoding="utf-8")
    return tasks, cassettes
