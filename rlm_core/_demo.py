"""The bundled demo: a small ontology written for rlm-core, a question and a recorded run.

``rlm demo`` replays the cassette, so the demo needs no network and no API key, and the tests
use the same files.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEMO_CASSETTE", "DEMO_ONTOLOGY", "DEMO_QUESTION"]

_DATA = Path(__file__).resolve().parent / "data" / "demo"

DEMO_ONTOLOGY = _DATA / "coffee.ttl"
"""Coffee roasting and brewing: farms, lots, roasting, brewing, equipment, flavour notes."""

DEMO_CASSETTE = _DATA / "coffee.cassette.jsonl"
"""The LM responses of one run of :data:`DEMO_QUESTION` (see :mod:`rlm_core.engine.cassette`)."""

DEMO_QUESTION = "Which properties link a brew to the equipment and beans it uses?"
