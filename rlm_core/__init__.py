"""rlm-core: observable Recursive Language Model runs over RDF ontologies.

The public API is exactly what ``__all__`` lists (``docs/api.md`` documents each name), plus the
public modules plugin authors import from: :mod:`rlm_core.hookspecs` (the plugin contract),
:mod:`rlm_core.events`, :mod:`rlm_core.runlog`, :mod:`rlm_core.plugins`, :mod:`rlm_core.config`,
:mod:`rlm_core.delivery` and :mod:`rlm_core.testing`. Modules whose names start with an
underscore, and the ``engine``, ``ontology`` and ``memory`` packages, are internal.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rlm_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from rlm_core._flush import flush
    from rlm_core.config import Settings, load_settings
    from rlm_core.delivery import BackgroundDelivery
    from rlm_core.engine import run
    from rlm_core.errors import ConfigError, PluginSelectionError, RLMError
    from rlm_core.events import (
        Event,
        Iteration,
        Judgment,
        LLMCall,
        MemoryExtraction,
        MemoryRetrieval,
        RunInfo,
        RunResult,
        ToolCall,
        event_from_dict,
    )
    from rlm_core.testing import capture_events, check_plugin

__version__ = "0.1.0"

__all__ = [
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

# Where each public name lives. Loaded on first use: ``import rlm_core`` (and so every ``rlm``
# command, ``--help`` included) must not pay for the engine, the config reader or the testing
# helpers until they are used.
_HOMES = {
    "BackgroundDelivery": "rlm_core.delivery",
    "ConfigError": "rlm_core.errors",
    "Event": "rlm_core.events",
    "Iteration": "rlm_core.events",
    "Judgment": "rlm_core.events",
    "LLMCall": "rlm_core.events",
    "MemoryExtraction": "rlm_core.events",
    "MemoryRetrieval": "rlm_core.events",
    "PluginSelectionError": "rlm_core.errors",
    "RLMError": "rlm_core.errors",
    "RunInfo": "rlm_core.events",
    "RunResult": "rlm_core.events",
    "Settings": "rlm_core.config",
    "Setup": "rlm_core.events",
    "ToolCall": "rlm_core.events",
    "capture_events": "rlm_core.testing",
    "check_plugin": "rlm_core.testing",
    "event_from_dict": "rlm_core.events",
    "flush": "rlm_core._flush",
    "load_settings": "rlm_core.config",
    "run": "rlm_core.engine",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'rlm_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
