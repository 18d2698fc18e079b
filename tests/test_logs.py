"""Diagnostics go through structlog: one line per event for people, the traceback only when
asked for, JSON lines on request, and structured fields an application (or a test) can read."""

from __future__ import annotations

import json

import pytest
from structlog.testing import capture_logs

from rlm_core import hookimpl, logs
from rlm_core.plugins import PluginManager
from tests.helpers.factories import iteration, run_info


class Raises:
    name = "raises"

    @hookimpl
    def iteration(self) -> None:
        raise RuntimeError("boom")


def fail_twice() -> None:
    manager = PluginManager()
    manager.register(Raises())
    run = run_info()
    manager.hook.iteration(run=run, step=iteration(run.run_id, 0))
    manager.hook.iteration(run=run, step=iteration(run.run_id, 1))


@pytest.fixture
def cli_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """No logging variables from the caller's environment (the root conftest undoes
    configure_cli)."""
    for variable in (logs.FORMAT_VARIABLE, logs.TRACEBACK_VARIABLE):
        monkeypatch.delenv(variable, raising=False)


def test_a_failing_plugin_is_one_record_with_its_plugin_hook_error_and_count() -> None:
    with capture_logs() as records:
        fail_twice()
    assert records == [
        {
            "event": "plugin 'raises' raised in hook 'iteration' (further errors in this hook "
            "are only counted): RuntimeError: boom",
            "logger": "rlm.plugins",
            "plugin": "raises",
            "hook": "iteration",
            "error": "RuntimeError: boom",
            "count": 1,
            "exc_info": records[0]["exc_info"],
            "log_level": "warning",
        }
    ]
    assert isinstance(records[0]["exc_info"], RuntimeError)


@pytest.mark.usefixtures("cli_logging")
def test_people_get_one_line_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure_cli(verbose_output=False)
    fail_twice()
    assert capsys.readouterr().err.splitlines() == [
        "rlm: plugin 'raises' raised in hook 'iteration' (further errors in this hook are only "
        "counted): RuntimeError: boom"
    ]


@pytest.mark.usefixtures("cli_logging")
def test_verbose_adds_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure_cli(verbose_output=True)
    fail_twice()
    err = capsys.readouterr().err
    assert err.startswith("rlm: plugin 'raises' raised in hook 'iteration'")
    assert "Traceback (most recent call last)" in err
    assert 'raise RuntimeError("boom")' in err


@pytest.mark.usefixtures("cli_logging")
def test_rlm_trace_plugins_adds_the_traceback_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    logs.configure_cli(verbose_output=False)
    monkeypatch.setenv(logs.TRACEBACK_VARIABLE, "1")
    fail_twice()
    assert "Traceback (most recent call last)" in capsys.readouterr().err


@pytest.mark.usefixtures("cli_logging")
def test_json_lines_carry_the_fields(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(logs.FORMAT_VARIABLE, "json")
    logs.configure_cli(verbose_output=False)
    fail_twice()
    (line,) = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert {
        key: record[key] for key in ("logger", "level", "plugin", "hook", "error", "count")
    } == {
        "logger": "rlm.plugins",
        "level": "warning",
        "plugin": "raises",
        "hook": "iteration",
        "error": "RuntimeError: boom",
        "count": 1,
    }
    assert "exception" not in record


def test_a_record_nobody_prints_does_not_import_structlog() -> None:
    import subprocess
    import sys

    code = (
        "import sys, logging; from rlm_core.logs import get_logger; "
        "get_logger('rlm.x').debug('not shown %s', 1); print('structlog' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
