"""The public face of rlm_core: exactly these names, each documented in docs/api.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import rlm_core

API_DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"

PUBLIC = [
    "BackgroundDelivery",
    "ConfigError",
    "Event",
    "Iteration",
    "Judgment",
    "LLMCall",
    "MemoryExtraction",
    "MemoryRetrieval",
    "PluginSelectionError",
    "RLMError",
    "RunInfo",
    "RunResult",
    "Settings",
    "Setup",
    "ToolCall",
    "__version__",
    "capture_events",
    "check_plugin",
    "event_from_dict",
    "flush",
    "hookimpl",
    "load_settings",
    "run",
]


def test_the_public_names_are_exactly_these() -> None:
    assert rlm_core.__all__ == PUBLIC


def test_every_public_name_resolves_to_its_object() -> None:
    from rlm_core import delivery, engine, errors, events, testing

    assert rlm_core.run is engine.run
    assert rlm_core.BackgroundDelivery is delivery.BackgroundDelivery
    assert rlm_core.RLMError is errors.RLMError
    assert rlm_core.RunResult is events.RunResult
    assert rlm_core.capture_events is testing.capture_events
    for name in PUBLIC:
        assert getattr(rlm_core, name) is not None, name


def test_an_unknown_name_is_an_attribute_error() -> None:
    assert not hasattr(rlm_core, "publish_metrics")
    assert not hasattr(rlm_core, "get_plugin_manager")


def test_the_api_reference_documents_exactly_the_public_names() -> None:
    documented = re.findall(r"^### `(\w+)`$", API_DOC.read_text(encoding="utf-8"), re.MULTILINE)
    assert sorted(documented) == sorted(PUBLIC)


def test_importing_rlm_core_loads_neither_the_engine_nor_the_testing_kit() -> None:
    code = (
        "import sys, rlm_core; "
        "print(sorted(m for m in ('rlm_core.engine', 'rlm_core.testing', 'dspy') "
        "if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr
