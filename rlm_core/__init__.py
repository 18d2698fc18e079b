"""rlm-core: observable Recursive Language Model runs over RDF ontologies.

The public API is what ``__all__`` lists; modules whose names start with an underscore, and
anything not listed here or in a submodule's own ``__all__``, may change without notice.
"""

from __future__ import annotations

from rlm_core._flush import flush
from rlm_core._publish import publish_metrics
from rlm_core.config import CliOptions, Settings, load_settings
from rlm_core.engine import run
from rlm_core.errors import ConfigError, PluginSelectionError, RLMError
from rlm_core.events import (
    SCHEMA_VERSION,
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
from rlm_core.hookspecs import hookimpl
from rlm_core.plugins import PluginManager, get_plugin_manager

__version__ = "0.1.0"

__all__ = [
    "SCHEMA_VERSION",
    "CliOptions",
    "ConfigError",
    "Event",
    "Iteration",
    "Judgment",
    "LLMCall",
    "MemoryExtraction",
    "MemoryRetrieval",
    "PluginManager",
    "PluginSelectionError",
    "RLMError",
    "RunInfo",
    "RunResult",
    "Settings",
    "ToolCall",
    "__version__",
    "event_from_dict",
    "flush",
    "get_plugin_manager",
    "hookimpl",
    "load_settings",
    "publish_metrics",
    "run",
]
