"""DSPy traces in MLflow (``log_traces = true``): MLflow's DSPy autologging, on while runs go.

Autologging is process-wide: MLflow adds a callback to ``dspy.settings`` and exports the spans to
the process's tracking URI (``MLFLOW_TRACKING_URI``, default ``sqlite:///mlflow.db``), not to a
client's. So traces are only turned on when that URI is this tracker's store; they go to the
tracker's experiment (a destination local to the engine thread), carry the rlm run id as trace
metadata, and are linked to the MLflow run when it ends. Autologging is turned off again after
the last run that turned it on, unless it was on before.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from pathlib import Path
from typing import Any, Protocol

from rlm_core.logs import get_logger
from rlm_plugins.mlflow.imports import load_mlflow
from rlm_plugins.mlflow.location import resolve_tracking_uri

__all__ = ["TRACE_RUN_ID_KEY", "DspyTraces", "link"]

log = get_logger("rlm.mlflow")

TRACE_RUN_ID_KEY = "rlm.run_id"
MAX_LINKS_PER_CALL = 100


class _Experiment(Protocol):
    experiment_id: str | None
    experiment_ready: threading.Event


class DspyTraces:
    """Switches autologging on and off around runs, on the engine thread (DSPy only lets the
    thread that configured it change ``dspy.settings``)."""

    def __init__(self, tracking_uri: str, experiment: _Experiment, wait: float) -> None:
        self._tracking_uri = tracking_uri
        self._experiment = experiment
        self._wait = wait
        self._lock = threading.Lock()
        self._active = 0
        self._owned = False
        self._usable: bool | None = None
        self._scopes: dict[str, contextlib.ExitStack] = {}

    def start(self, run_id: str) -> None:
        """Autologging on (first run), this thread's traces to the experiment, tagged.

        A failure leaves the run without traces and says why; it never fails the hook (that
        would count against the plugin and could block it).
        """
        try:
            self._start(run_id)
        except Exception as exc:
            log.warning(
                "mlflow: no DSPy traces for run %s: %s: %s", run_id, type(exc).__name__, exc
            )

    def _start(self, run_id: str) -> None:
        load_mlflow()
        import mlflow

        if not self._check(mlflow.get_tracking_uri()):
            return
        with warnings.catch_warnings():
            # Importing MLflow's DSPy flavor warns about its own type hints; not the user's issue.
            warnings.filterwarnings("ignore", ".*Any type hint is inferred as AnyType", UserWarning)
            import mlflow.dspy
        from mlflow.entities.trace_location import MlflowExperimentLocation
        from mlflow.utils.autologging_utils import autologging_is_disabled

        scope = contextlib.ExitStack()
        with self._lock:
            if self._active == 0:
                self._owned = autologging_is_disabled("dspy")  # type: ignore[no-untyped-call]
                if self._owned:
                    mlflow.dspy.autolog(silent=True)
            self._active += 1
            self._scopes[run_id] = scope
        self._experiment.experiment_ready.wait(self._wait)
        experiment_id = self._experiment.experiment_id
        if experiment_id is not None:
            mlflow.tracing.set_destination(
                MlflowExperimentLocation(experiment_id=experiment_id), context_local=True
            )
        scope.enter_context(mlflow.tracing.context(metadata={TRACE_RUN_ID_KEY: run_id}))

    def covers(self, run_id: str) -> bool:
        """Whether the run's traces are being recorded (so there are traces to link)."""
        return run_id in self._scopes

    def end(self, run_id: str) -> None:
        """Untag this thread's traces; autologging off after the last run, if it was ours."""
        scope = self._scopes.pop(run_id, None)
        if scope is None:
            return
        with contextlib.suppress(ValueError):  # run_end on another context than run_start
            scope.close()
        with self._lock:
            self._active -= 1
            if self._active == 0 and self._owned:
                import mlflow.dspy

                mlflow.dspy.autolog(disable=True, silent=True)
                self._owned = False

    def _check(self, process_uri: str) -> bool:
        """Whether MLflow exports traces to this tracker's store; warned about once if not."""
        if self._usable is None:
            self._usable = resolve_tracking_uri(process_uri, Path.cwd()) == self._tracking_uri
            if not self._usable:
                log.warning(
                    "mlflow: log_traces is ignored: MLflow exports traces to the process's "
                    "tracking URI %s, not to %s (set MLFLOW_TRACKING_URI=%s to get them)",
                    process_uri,
                    self._tracking_uri,
                    self._tracking_uri,
                )
        return self._usable


def link(client: Any, experiment_id: str, run_id: str, mlflow_id: str) -> None:
    """Link the traces tagged with ``run_id`` to the MLflow run (on the worker, at run end)."""
    import mlflow

    mlflow.flush_trace_async_logging()
    found = client.search_traces(
        locations=[experiment_id],
        filter_string=f"metadata.`{TRACE_RUN_ID_KEY}` = '{run_id}'",
        include_spans=False,
    )
    trace_ids = [trace.info.trace_id for trace in found]
    for start in range(0, len(trace_ids), MAX_LINKS_PER_CALL):
        client.link_traces_to_run(trace_ids[start : start + MAX_LINKS_PER_CALL], mlflow_id)
