"""The ``rlm`` command: help, version, plugins listing, errors without tracebacks, start-up cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlm_core import __version__
from rlm_core.cli import main

RLM_SCRIPT = Path(sys.executable).parent / "rlm"


def rlm(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``rlm`` console script the way a user would."""
    full_env = {**os.environ, **(env or {})}
    for variable in ("RLM_TRACKERS", "RLM_DISABLE", "RLM_CONFIG"):
        if env is None or variable not in env:
            full_env.pop(variable, None)
    return subprocess.run(
        [str(RLM_SCRIPT), *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=60
    )


def test_console_script_is_installed() -> None:
    assert RLM_SCRIPT.exists(), f"{RLM_SCRIPT} missing: is rlm-core installed in this environment?"


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = rlm("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "plugins" in result.stdout


def test_version(tmp_path: Path) -> None:
    result = rlm("--version", cwd=tmp_path)
    assert result.stdout.strip() == f"rlm-core {__version__}"


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: rlm" in capsys.readouterr().out


def test_plugins_json_is_valid_and_complete(tmp_path: Path) -> None:
    result = rlm("plugins", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert isinstance(listing, list)
    for entry in listing:
        assert {"name", "distribution", "version", "state", "reason", "hooks"} <= set(entry)


def test_unknown_tracker_is_one_line_on_stderr_and_exit_2(tmp_path: Path) -> None:
    result = rlm("plugins", "-t", "no-such-tracker", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("rlm: error: unknown tracker 'no-such-tracker'")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_malformed_config_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "rlm.toml").write_text("[rlm\nmodel = 1\n", encoding="utf-8")
    result = rlm("plugins", cwd=tmp_path)
    assert result.returncode == 2
    assert "rlm.toml: not valid TOML" in result.stderr
    assert "line 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_error_exits_2(tmp_path: Path) -> None:
    result = rlm("plugins", "--bogus", cwd=tmp_path)
    assert result.returncode == 2
    assert "rlm plugins: error: unrecognized option --bogus" in result.stderr


START_UP_CHECK = """
import sys
from rlm_core.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
heavy = sorted(
    name for name in ("dspy", "mlflow", "litellm", "opentelemetry.sdk") if name in sys.modules
)
print("HEAVY=" + ",".join(heavy))
"""


@pytest.mark.parametrize("argv", [["--help"], ["plugins"], ["plugins", "--json"]])
def test_start_up_imports_neither_dspy_nor_mlflow(tmp_path: Path, argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", START_UP_CHECK.format(argv=argv)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == "HEAVY="
