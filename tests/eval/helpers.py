"""Shared by the eval tests: the demo task set copied with slow cassettes."""

from __future__ import annotations

import json
from pathlib import Path

from rlm_core.eval.demo import DEMO_CASSETTES, DEMO_TASKS
from rlm_core.testing import DEMO_ONTOLOGY


def slow_demo(directory: Path, latency_ms: float) -> tuple[Path, Path]:
    """The demo task file and cassettes in ``directory``, every LM response ``latency_ms`` late.

    Returns (task file, cassette directory).
    """
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
