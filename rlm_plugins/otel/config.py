"""Where the OpenTelemetry tracker sends spans: ``[plugins.otel]`` over the standard ``OTEL_*``.

OpenTelemetry users configure exporters with environment variables; the tracker honours them so
an existing setup needs no rlm-specific settings, and the ``[plugins.otel]`` keys override them.
Nothing here imports opentelemetry: resolving the settings must stay cheap (``rlm plugins``
constructs every plugin).
"""

from __future__ import annotations

import dataclasses
import os
import urllib.parse
from collections.abc import Mapping

__all__ = ["TRACES_PATH", "ExportSettings", "NotConfiguredError", "resolve"]

TRACES_PATH = "/v1/traces"
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


class NotConfiguredError(ValueError):
    """No endpoint is configured, so there is nowhere to send spans."""


@dataclasses.dataclass(frozen=True)
class ExportSettings:
    """The resolved export settings: the full traces URL (None when spans go to an exporter
    object instead), headers, and the limits."""

    endpoint: str | None
    headers: Mapping[str, str]
    service_name: str | None
    timeout: float | None
    flush_timeout: float
    capture_content: bool
    max_queue_size: int
    spool_dir: str


def resolve(
    *,
    endpoint: object,
    headers: object,
    service_name: object,
    timeout: object,
    flush_timeout: object,
    capture_content: object,
    max_queue_size: object,
    spool_dir: object,
    env: Mapping[str, str] | None = None,
    endpoint_required: bool = True,
) -> ExportSettings:
    """Validate the ``[plugins.otel]`` values and fill the rest from the ``OTEL_*`` variables.

    Raises :class:`NotConfiguredError` when neither names an endpoint (unless
    ``endpoint_required`` is False), and ValueError (with the key) for a bad value.
    """
    env = os.environ if env is None else env
    try:
        url: str | None = _endpoint(endpoint, env)
    except NotConfiguredError:
        if endpoint_required:
            raise
        url = None
    return ExportSettings(
        endpoint=url,
        headers={**_env_headers(env), **_headers(headers)},
        service_name=_optional_str("service_name", service_name),
        timeout=None if timeout is None else _positive("timeout", timeout),
        flush_timeout=_positive("flush_timeout", flush_timeout),
        capture_content=_capture_content(capture_content, env),
        max_queue_size=_queue_size(max_queue_size),
        spool_dir=_str("spool_dir", spool_dir),
    )


def _endpoint(value: object, env: Mapping[str, str]) -> str:
    """``[plugins.otel] endpoint`` (a base URL, or a URL ending in /v1/traces), else the traces
    variable as is, else the general variable plus /v1/traces, as the OTLP exporter spec says."""
    if value is not None:
        url = _str("endpoint", value)
        return _check_url("endpoint", _with_traces_path(url))
    traces = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if traces:
        return _check_url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces)
    general = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if general:
        return _check_url("OTEL_EXPORTER_OTLP_ENDPOINT", general.rstrip("/") + TRACES_PATH)
    raise NotConfiguredError(
        "no endpoint: set [plugins.otel] endpoint, OTEL_EXPORTER_OTLP_ENDPOINT or "
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )


def _with_traces_path(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith(TRACES_PATH) else url + TRACES_PATH


def _check_url(key: str, url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"otel: {key} must be an http(s) URL, got {url!r}")
    return url


def _env_headers(env: Mapping[str, str]) -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP_HEADERS`` then ``..._TRACES_HEADERS``: ``k=v,k2=v2``, URL-encoded."""
    found: dict[str, str] = {}
    for variable in ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"):
        for pair in env.get(variable, "").split(","):
            if not pair.strip():
                continue
            name, sep, value = pair.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"otel: {variable}: expected name=value pairs, got {pair!r}")
            found[urllib.parse.unquote(name.strip()).lower()] = urllib.parse.unquote(value.strip())
    return found


def _headers(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(name, str) and isinstance(item, str) for name, item in value.items()
    ):
        raise ValueError(f"otel: headers must be a table of strings to strings, got {value!r}")
    return {name.lower(): item for name, item in value.items()}


def _capture_content(value: object, env: Mapping[str, str]) -> bool:
    if value is not None:
        if not isinstance(value, bool):
            raise ValueError(f"otel: capture_content must be true or false, got {value!r}")
        return value
    variable = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
    setting = env.get(variable, "").strip().lower()
    if setting in _TRUE:
        return True
    if setting in _FALSE:
        return False
    raise ValueError(f"otel: {variable} must be true or false, got {env[variable]!r}")


def _queue_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"otel: max_queue_size must be a positive integer, got {value!r}")
    return value


def _positive(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"otel: {key} must be a positive number of seconds, got {value!r}")
    return float(value)


def _str(key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"otel: {key} must be a non-empty string, got {value!r}")
    return value.strip()


def _optional_str(key: str, value: object) -> str | None:
    return None if value is None else _str(key, value)
