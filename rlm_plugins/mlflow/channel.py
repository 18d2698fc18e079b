"""One delivery worker per MLflow store and process, shared by every tracker logging there.

A plugin manager is built per run by ``rlm_core.run()``, so a process running many runs builds
many trackers; they share one worker thread, one MLflow client and its connections, instead of
leaving one idle worker each. The channel also knows what became of every run handed to it:
delivered (its MLflow run id), kept in a spool file (and why), or still on its way; a run still
on its way when the process exits is spooled then.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import threading
from pathlib import Path

from rlm_core._redact import Redactor, environment_secrets
from rlm_core.delivery import BackgroundDelivery
from rlm_core.logs import get_logger
from rlm_core.runlog import write_new_log
from rlm_plugins.mlflow.records import End, Record
from rlm_plugins.mlflow.writer import MAX_KNOWN_RUNS, MlflowWriter

__all__ = ["Channel", "Delivered", "Spooled", "channel_for"]

log = get_logger("rlm.mlflow")


@dataclasses.dataclass(frozen=True)
class Delivered:
    mlflow_id: str


@dataclasses.dataclass(frozen=True)
class Spooled:
    path: Path
    reason: str


@dataclasses.dataclass(frozen=True)
class _Key:
    tracking_uri: str
    experiment: str
    artifact_location: str | None
    spool_dir: Path
    flush_timeout: float
    secrets: tuple[str, ...]


class Channel:
    """The worker, the writer and the fate of each run, for one store and configuration."""

    def __init__(self, key: _Key, redactor: Redactor) -> None:
        self.key = key
        self.redactor = redactor
        self.outcomes: dict[str, Delivered | Spooled] = {}
        self._unresolved: dict[str, End] = {}
        self._lock = threading.Lock()
        self.writer = MlflowWriter(
            tracking_uri=key.tracking_uri,
            experiment=key.experiment,
            artifact_location=key.artifact_location,
            redactor=redactor,
            on_end=self._resolve,
        )
        self.delivery: BackgroundDelivery[Record] = BackgroundDelivery(
            self.writer.deliver,
            name="rlm-mlflow",
            batch_size=500,
            when_full="drop",
            exit_timeout=key.flush_timeout,
            # Every log_batch is a commit: gather a second's worth, so a short run is sent after
            # it rather than competing with it for the GIL (a flush sends at once).
            linger=1.0,
            on_drop=self._dropped,
        )
        self.writer.preparing = self.delivery.preparing

    def submit(self, record: Record) -> None:
        if isinstance(record, End):
            with self._lock:
                self._unresolved[record.run_id] = record
        self.delivery.submit(record)

    def flush(self, timeout: float) -> bool:
        """Wait for what was submitted (store creation not counted); True when nothing is left."""
        return self.delivery.flush(timeout)

    def pending(self, run_id: str) -> bool:
        """Whether the run's end was handed over and is not delivered or spooled yet."""
        return run_id in self._unresolved

    def give_up(self, run_ids: set[str] | None, reason: str) -> None:
        """Spool the runs (all when None) whose end is still on its way."""
        with self._lock:
            chosen = [
                end
                for run_id, end in self._unresolved.items()
                if run_ids is None or run_id in run_ids
            ]
        for end in chosen:
            self._resolve(end, reason)

    def _resolve(self, end: End, reason: str | None) -> None:
        """Called once per run: on the worker when its end was handled, else by ``give_up``."""
        with self._lock:
            if self._unresolved.pop(end.run_id, None) is None:
                return  # already spooled by give_up while the worker was sending it
        if reason is None:
            mlflow_id = self.writer.mlflow_ids.get(end.run_id)
            self._record(end.run_id, Delivered(mlflow_id or "?"))
            return
        try:
            path = write_new_log(self.key.spool_dir, end.run, end.events, self.redactor.json)
        except OSError as exc:
            log.error(
                "mlflow: run %s did not fully reach %s (%s), and its spool file could not be "
                "written: %s",
                end.run_id,
                self.key.tracking_uri,
                reason,
                exc,
            )
            return
        self._record(end.run_id, Spooled(path, reason))
        log.warning(
            "mlflow: run %s did not fully reach %s (%s); its events are kept in %s. "
            "Send them later with: rlm replay %s --to mlflow",
            end.run_id,
            self.key.tracking_uri,
            reason,
            path,
            path,
        )

    def _record(self, run_id: str, outcome: Delivered | Spooled) -> None:
        self.outcomes[run_id] = outcome
        while len(self.outcomes) > MAX_KNOWN_RUNS:
            del self.outcomes[next(iter(self.outcomes))]

    def _dropped(self, records: list[Record]) -> None:
        reason = "the delivery queue was full or closed"
        for record in records:
            self.writer.fail(record.run_id, reason)
            if isinstance(record, End):
                self._resolve(record, self.writer.failures.get(record.run_id, reason))

    def _at_exit(self) -> None:
        timeout = self.key.flush_timeout
        if not self.flush(timeout):
            self.give_up(None, f"not delivered within {timeout:g} s")
        self.delivery.close(0.0)


_channels: dict[_Key, Channel] = {}
_channels_lock = threading.Lock()


def channel_for(
    *,
    tracking_uri: str,
    experiment: str,
    artifact_location: str | None,
    spool_dir: Path,
    flush_timeout: float,
) -> Channel:
    """The process's channel for this store and configuration, created on first use.

    Creating one starts its worker thread: trackers call this on their first run, never in
    their constructor (``rlm plugins`` constructs every plugin).
    """
    key = _Key(
        tracking_uri,
        experiment,
        artifact_location,
        spool_dir,
        flush_timeout,
        environment_secrets(os.environ),
    )
    with _channels_lock:
        channel = _channels.get(key)
        if channel is None:
            channel = _channels[key] = Channel(key, Redactor.from_environment())
            atexit.register(channel._at_exit)
    return channel
