"""MLflow tracking URIs, for the MLflow tracker and ``rlm mlflow`` alike: the URI made absolute,
the artifact location beside a local store, and a quick reachability check for a server.

No MLflow import here: this is string and path handling, and one HTTP GET.

A relative ``sqlite:///mlflow.db`` is resolved once, when the tracker is built, so a run that
changes directory (or a worker thread) cannot end up writing to a second store.
"""

from __future__ import annotations

import os
from pathlib import Path

from rlm_core.logs import verbose

__all__ = [
    "DEFAULT_EXPERIMENT",
    "DEFAULT_TRACKING_URI",
    "artifact_location_for",
    "check_reachable",
    "is_server",
    "quiet_mlflow_logging",
    "resolve_artifact_location",
    "resolve_tracking_uri",
    "sqlite_path",
]

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "rlm"

_SQLITE = "sqlite:///"


def resolve_tracking_uri(uri: str, cwd: Path) -> str:
    """``uri`` with a relative SQLite path made absolute against ``cwd``."""
    if not isinstance(uri, str) or not uri.strip():
        raise ValueError(f"mlflow: tracking_uri must be a non-empty string, got {uri!r}")
    if uri.startswith(_SQLITE):
        path = Path(uri[len(_SQLITE) :]).expanduser()
        if not path.is_absolute():
            return f"{_SQLITE}{(cwd / path).resolve()}"
    return uri


def sqlite_path(uri: str) -> Path | None:
    """The database file of a SQLite tracking URI, else None."""
    return Path(uri[len(_SQLITE) :]) if uri.startswith(_SQLITE) else None


def artifact_location_for(uri: str) -> str | None:
    """``mlartifacts/`` beside a SQLite store (as a file URI); None lets a server choose."""
    database = sqlite_path(uri)
    return (database.parent / "mlartifacts").as_uri() if database is not None else None


def resolve_artifact_location(location: str, cwd: Path) -> str:
    """A plain path (``./mlartifacts``) as an absolute file URI; URIs (``s3://``, ``file:``)
    unchanged. MLflow would otherwise resolve a relative path wherever it happens to run."""
    if "://" in location or location.startswith("file:"):
        return location
    return (cwd / Path(location).expanduser()).resolve().as_uri()


def is_server(uri: str) -> bool:
    """Whether ``uri`` names a tracking server (reached over HTTP, with MLflow's long retries)."""
    return uri.startswith(("http://", "https://"))


def check_reachable(uri: str, timeout: float) -> None:
    """Raise ConnectionError unless the server at ``uri`` answers ``/health`` within ``timeout``.

    MLflow's own client retries a refused connection for minutes; this fails in one attempt.
    """
    import urllib.error  # here, not at the top: ``rlm --help`` imports this module
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise ConnectionError(
            f"MLflow server {uri} answered /health with HTTP {exc.code}"
        ) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectionError(f"MLflow server {uri} is unreachable: {reason}") from None


def quiet_mlflow_logging() -> None:
    """Keep MLflow's INFO lines (database creation, migrations) off the terminal unless rlm runs
    verbose (``rlm -v``, ``RLM_TRACE_PLUGINS=1``). Takes effect when mlflow is first imported; an
    explicit ``MLFLOW_LOGGING_LEVEL`` wins."""
    if not verbose():
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
