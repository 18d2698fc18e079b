"""The otel tracker as a plugin: off until an endpoint is configured, an error when asked for
without one, unavailable (with a path-based install hint) without the SDK, and end to end through
``rlm demo`` with ``[plugins.otel]``."""

from __future__ import annotations

import importlib.metadata
import json
import sys
from pathlib import Path

import pytest

from rlm_core import Settings
from rlm_core.cli import main
from rlm_core.plugins import get_plugin_manager
from rlm_core.runlog import read_log
from tests.helpers.paths import REPO
from tests.mlflow.helpers import free_port
from tests.otel.receiver import otlp_receiver

pytestmark = pytest.mark.usefixtures("in_tmp")

ENTRY_POINT = importlib.metadata.EntryPoint(
    name="otel", value="rlm_plugins.otel:OtelTracker", group="rlm"
)


@pytest.fixture(autouse=True)
def _no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
    ):
        monkeypatch.delenv(variable, raising=False)


def otel_status(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["plugins", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    (status,) = [entry for entry in listing if entry["name"] == "otel"]
    assert isinstance(status, dict)
    return status


def test_without_an_endpoint_it_is_disabled_and_says_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = otel_status(capsys)
    assert status["state"] == "disabled"
    assert str(status["reason"]).startswith("not configured: no endpoint: set [plugins.otel]")


def test_an_otel_variable_turns_it_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    status = otel_status(capsys)
    assert (status["state"], status["reason"]) == ("enabled", None)


def test_asking_for_it_without_an_endpoint_is_a_usage_error_before_any_run(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "-t", "otel"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("rlm: error: tracker 'otel' was asked for but is not configured: ")
    assert len(error.splitlines()) == 1
    assert not (in_tmp / "runs").exists()


def test_a_bad_setting_makes_it_unavailable_with_the_key(in_tmp: Path) -> None:
    (in_tmp / "rlm.toml").write_text('[plugins.otel]\nendpoint = "collector:4318"\n')
    from rlm_core.config import CliOptions, load_settings

    manager = get_plugin_manager(load_settings(CliOptions()), entry_points=[ENTRY_POINT])
    (status,) = manager.statuses()
    assert status.state == "unavailable"
    assert status.reason is not None
    assert "otel: endpoint must be an http(s) URL" in status.reason


def test_without_the_sdk_it_is_unavailable_with_a_path_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk", None)  # find_spec finds nothing
    for name in [name for name in sys.modules if name.startswith("rlm_plugins.otel")]:
        monkeypatch.delitem(sys.modules, name)
    manager = get_plugin_manager(Settings(), entry_points=[ENTRY_POINT])
    (status,) = manager.statuses()
    assert status.state == "unavailable"
    assert status.reason is not None
    assert status.reason.endswith(f"pip install -e '{REPO}[otel]'")
    assert "pip install 'rlm-core" not in status.reason


def test_rlm_demo_sends_the_run_where_the_config_says_and_prints_it(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with otlp_receiver() as receiver:
        (in_tmp / "rlm.toml").write_text(
            "[plugins.otel]\n"
            f'endpoint = "{receiver.url}"\n'
            'headers = { authorization = "$env:OTLP_TOKEN" }\n'
            'service_name = "coffee-agent"\n',
            encoding="utf-8",
        )
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("OTLP_TOKEN", "Bearer s3cret")
            assert main(["demo", "-t", "otel"]) == 0
    out = capsys.readouterr().out
    roots = [span for span in receiver.spans if span.name == "invoke_agent rlm"]
    assert len(roots) == 1
    assert f"  otel: {receiver.url}/v1/traces (trace {roots[0].trace_id})" in out
    assert {span.headers["authorization"] for span in receiver.spans} == {"Bearer s3cret"}
    assert {span.resource["service.name"] for span in receiver.spans} == {"coffee-agent"}


def test_rlm_demo_with_the_endpoint_down_exits_1_and_rlm_plugins_shows_the_trouble(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    assert main(["demo", "-t", "otel", "--no-memory"]) == 1  # answered, but not delivered
    out = capsys.readouterr().out
    (spool,) = (in_tmp / "otel-spool").iterdir()
    assert f"  otel: {spool} (15 span(s) did not reach" in out
    assert f"rlm replay {spool} --to otel" in out
    spans = len(read_log(spool).records)
    assert spans == 15  # the run, setup, 4 steps, 5 LM calls, 4 tool calls
    status = otel_status(capsys)
    trouble = status["last_trouble"]
    assert isinstance(trouble, dict)
    assert trouble["errors"] == 0
    assert str(spool) in trouble["undelivered"]
    assert main(["plugins"]) == 0
    assert f"not delivered, kept in {spool} (15 span(s)" in capsys.readouterr().out
