"""The MLflow tracker plugin: the entry point ``mlflow`` names :class:`MlflowTracker`.

One concern per module: ``tracker`` (the hooks), ``records`` (what hooks hand the worker),
``channel`` (one worker per store and process, and what became of each run), ``writer`` (the
worker's MLflow calls), ``traces`` (traces built from the run's spans), ``store`` (creating a
SQLite store safely, naming a broken one), ``spool`` (runs that did not arrive), ``imports``
(importing MLflow once, thread-safely), ``location`` (tracking URIs, no MLflow import) and
``cli`` (``rlm mlflow``). None of them imports mlflow at import time: the worker imports it when
it first talks to MLflow.
"""

from __future__ import annotations

from rlm_plugins.mlflow.tracker import MlflowTracker

__all__ = ["MlflowTracker"]
