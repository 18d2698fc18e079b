"""Procedural memory: strategies learned from earlier runs, kept in SQLite, found with BM25.

Before a run, :class:`RunMemory` retrieves the best-matching strategies for the question; after
it, the trajectory is judged, the strategies the run used are credited or debited, and new ones
are extracted. Importing this package does not import DSPy: judging and extracting live in
:mod:`rlm_core.memory.judge`, loaded only when a run is judged.

Internal to rlm-core except :class:`MemoryStore`, the API other components (plugins,
``rlm memory``) read memory through; never read its tables.
"""

from __future__ import annotations

from rlm_core.memory.base import (
    AddResult,
    MemoryDraft,
    MemoryRecord,
    MemoryStats,
    MemoryStore,
    MemoryStoreError,
    MemoryUse,
    RetrievedItem,
    Verdict,
    memory_id,
)
from rlm_core.memory.cycle import Learning, Recall, RunMemory
from rlm_core.memory.format import format_memories, format_trajectory
from rlm_core.memory.packs import ImportReport, PackProblem, export_pack, import_pack
from rlm_core.memory.schema import SCHEMA_VERSION
from rlm_core.memory.store import DEFAULT_TIMEOUT, SQLiteMemoryStore

__all__ = [
    "DEFAULT_TIMEOUT",
    "SCHEMA_VERSION",
    "AddResult",
    "ImportReport",
    "Learning",
    "MemoryDraft",
    "MemoryRecord",
    "MemoryStats",
    "MemoryStore",
    "MemoryStoreError",
    "MemoryUse",
    "PackProblem",
    "Recall",
    "RetrievedItem",
    "RunMemory",
    "SQLiteMemoryStore",
    "Verdict",
    "export_pack",
    "format_memories",
    "format_trajectory",
    "import_pack",
    "memory_id",
]
