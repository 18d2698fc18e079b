"""Importing MLflow once, under one lock, before any thread of this package uses it.

MLflow's package imports are circular; two threads importing parts of it at the same time (the
delivery worker and the engine thread, or a reader) get "partially initialized module" errors
or an import deadlock. Every part of this package that needs MLflow calls :func:`load_mlflow`
first, so the whole package is imported by one thread while the others wait.
"""

from __future__ import annotations

import importlib
import threading

__all__ = ["load_mlflow"]

_MODULES = (
    "mlflow",
    "mlflow.tracking",
    "mlflow.entities",
    "mlflow.exceptions",
    "mlflow.store.tracking.sqlalchemy_store",
)
_lock = threading.Lock()
_loaded = False


def load_mlflow() -> None:
    """Import the MLflow modules this package uses (once per process, thread-safe)."""
    global _loaded
    if _loaded:
        return
    with _lock:
        if not _loaded:
            for name in _MODULES:
                importlib.import_module(name)
            _loaded = True
