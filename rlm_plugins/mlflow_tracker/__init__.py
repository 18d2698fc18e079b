"""The parts of the MLflow tracker (:mod:`rlm_plugins.mlflow`), one concern per module.

None of them imports mlflow at import time: the worker imports it when it first talks to MLflow.
"""
