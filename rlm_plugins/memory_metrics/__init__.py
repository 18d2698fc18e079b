"""Memory metrics: does procedural memory help? Measured per run, published to every tracker.

The entry point ``memory_metrics`` names :class:`MemoryMetricsTracker`; see
``docs/trackers/memory_metrics.md`` for the metrics, the "used" heuristic and the report.
"""

from __future__ import annotations

from rlm_plugins.memory_metrics.tracker import MemoryMetricsTracker

__all__ = ["MemoryMetricsTracker"]
