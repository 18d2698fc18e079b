"""The MLflow tracker plugin: the entry point ``mlflow`` names :class:`MlflowTracker`.

One concern per module: ``tracker`` (the hooks), ``writer`` (the worker's MLflow calls),
``records`` (what hooks hand the worker), ``traces`` (DSPy autologging), ``location`` (tracking
URIs, no MLflow import) and ``cli`` (``rlm mlflow``). None of them imports mlflow at import time:
the worker imports it when it first talks to MLflow.
"""

from __future__ import annotations

from rlm_plugins.mlflow.tracker import MlflowTracker

__all__ = ["MlflowTracker"]
