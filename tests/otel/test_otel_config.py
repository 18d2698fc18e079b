"""``[plugins.otel]`` over the standard ``OTEL_*`` variables (rlm_plugins.otel.config)."""

from __future__ import annotations

from typing import Any

import pytest

from rlm_plugins.otel.config import NotConfiguredError, resolve

DEFAULTS: dict[str, Any] = {
    "endpoint": None,
    "headers": None,
    "service_name": None,
    "timeout": None,
    "flush_timeout": 5.0,
    "capture_content": None,
    "max_queue_size": 2048,
    "spool_dir": "otel-spool",
}


def settings(env: dict[str, str], **options: Any) -> Any:
    return resolve(**{**DEFAULTS, **options}, env=env)


def test_without_any_endpoint_it_is_not_configured() -> None:
    with pytest.raises(NotConfiguredError, match="OTEL_EXPORTER_OTLP_ENDPOINT"):
        settings({})


def test_the_general_endpoint_variable_gets_the_traces_path() -> None:
    found = settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"})
    assert found.endpoint == "http://collector:4318/v1/traces"


def test_the_traces_endpoint_variable_is_used_as_is_and_wins() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://tempo:4318/otlp/v1/traces",
    }
    assert settings(env).endpoint == "http://tempo:4318/otlp/v1/traces"


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000/v1/traces"),
        ("http://127.0.0.1:5000/v1/traces", "http://127.0.0.1:5000/v1/traces"),
        (
            "https://cloud.langfuse.com/api/public/otel",
            "https://cloud.langfuse.com/api/public/otel/v1/traces",
        ),
    ],
)
def test_the_configured_endpoint_overrides_the_variables(configured: str, expected: str) -> None:
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://elsewhere:4318/v1/traces"}
    assert settings(env, endpoint=configured).endpoint == expected


def test_headers_come_from_the_variables_and_the_config_overrides_them() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
        "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Basic%20abc, x-mlflow-experiment-id=1",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-tenant=a",
    }
    found = settings(env, headers={"X-MLflow-Experiment-Id": "7"})
    assert found.headers == {
        "authorization": "Basic abc",
        "x-mlflow-experiment-id": "7",
        "x-tenant": "a",
    }


def test_content_capture_is_off_unless_opted_in() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
    assert settings(env).capture_content is False
    opted_in = {**env, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}
    assert settings(opted_in).capture_content is True
    assert settings(opted_in, capture_content=False).capture_content is False
    assert settings(env, capture_content=True).capture_content is True


@pytest.mark.parametrize(
    ("env", "options", "message"),
    [
        ({}, {"endpoint": "collector:4318"}, "endpoint must be an http"),
        ({}, {"endpoint": ""}, "endpoint must be a non-empty string"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://x"}, {}, "OTEL_EXPORTER_OTLP_ENDPOINT must be"),
        (
            {"OTEL_EXPORTER_OTLP_HEADERS": "novalue"},
            {"endpoint": "http://c"},
            "OTEL_EXPORTER_OTLP_HEADERS: expected name=value",
        ),
        ({}, {"endpoint": "http://c", "headers": {"a": 1}}, "headers must be a table"),
        ({}, {"endpoint": "http://c", "timeout": 0}, "timeout must be a positive"),
        ({}, {"endpoint": "http://c", "flush_timeout": "5"}, "flush_timeout must be a positive"),
        ({}, {"endpoint": "http://c", "capture_content": "yes"}, "capture_content must be"),
        ({}, {"endpoint": "http://c", "max_queue_size": 0}, "max_queue_size must be"),
        (
            {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "maybe"},
            {"endpoint": "http://c"},
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT must be",
        ),
    ],
)
def test_bad_values_name_the_key(
    env: dict[str, str], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=rf"^otel: {message}"):
        settings(env, **options)
