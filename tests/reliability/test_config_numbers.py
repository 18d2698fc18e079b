"""Numbers in the configuration must be finite and positive, wherever they come from.

``step_timeout = inf`` used to pass validation and then fail every run with ``OverflowError``.
Each bad value, from the config file, the environment or the command line, is a one-line
configuration error naming its source and key, exit 2, before anything is recorded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rlm_core._demo import DEMO_CASSETTE, DEMO_ONTOLOGY, DEMO_QUESTION
from rlm_core.cli import main

BAD_FLOATS = {"inf": "inf", "-inf": "-inf", "nan": "nan", "negative": "-1.5", "zero": "0"}
RUN = ["run", DEMO_QUESTION, "--ontology", str(DEMO_ONTOLOGY), "--lm", f"scripted:{DEMO_CASSETTE}"]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for variable in ("RLM_TRACKERS", "RLM_DISABLE", "RLM_CONFIG", "RLM_MODEL", "RLM_STEP_TIMEOUT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _one_line_error(capsys: pytest.CaptureFixture[str], *expected: str) -> None:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    for part in expected:
        assert part in lines[0]


@pytest.mark.parametrize("value", BAD_FLOATS.values(), ids=list(BAD_FLOATS))
@pytest.mark.parametrize(
    ("section", "key"), [("rlm", "step_timeout"), ("rlm", "hook_timeout"), ("memory", "timeout")]
)
def test_a_number_in_the_config_file_must_be_finite_and_positive(
    section: str, key: str, value: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "rlm.toml").write_text(f"[{section}]\n{key} = {value}\n", encoding="utf-8")
    assert main(RUN) == 2
    _one_line_error(capsys, "rlm.toml", f"{section}.{key}", "expected a finite positive number")
    assert not (workdir / "runs").exists()


@pytest.mark.parametrize("value", BAD_FLOATS.values(), ids=list(BAD_FLOATS))
@pytest.mark.parametrize("variable", ["RLM_STEP_TIMEOUT", "RLM_HOOK_TIMEOUT"])
def test_a_number_in_the_environment_must_be_finite_and_positive(
    variable: str,
    value: str,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(variable, value)
    assert main(RUN) == 2
    _one_line_error(capsys, "environment", variable, "expected a finite positive number")
    assert not (workdir / "runs").exists()


@pytest.mark.parametrize("value", ["0", "-3"])
def test_a_count_on_the_command_line_must_be_positive(
    value: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*RUN, "--max-iterations", value]) == 2
    _one_line_error(capsys, "command line", "--max-iterations", "expected a positive integer")


def test_an_unknown_interpreter_is_a_configuration_error(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RLM_INTERPRETER", "docker")
    assert main(RUN) == 2
    _one_line_error(capsys, "environment", "RLM_INTERPRETER", "'local' or 'deno'")
