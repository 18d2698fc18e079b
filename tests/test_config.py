"""Settings: file discovery, precedence CLI > environment > file > defaults, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlm_core.config import CliOptions, Selection, Settings, load_settings
from rlm_core.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_apply_without_any_file_or_variable(tmp_path: Path) -> None:
    settings = load_settings(env={}, cwd=tmp_path)
    assert settings == Settings()
    assert settings.memory.retrieve == 3
    assert settings.config_path is None


def test_rlm_toml_in_the_working_directory_is_read(tmp_path: Path) -> None:
    write(
        tmp_path / "rlm.toml",
        """
[rlm]
model = "openai/gpt-4o-mini"
max_iterations = 7
step_timeout = 5
trackers = ["jsonl"]

[memory]
retrieve = 5
extract = false

[plugins.mlflow]
experiment = "prov"
""",
    )
    settings = load_settings(env={}, cwd=tmp_path)
    assert settings.model == "openai/gpt-4o-mini"
    assert settings.max_iterations == 7
    assert settings.step_timeout == 5.0
    assert settings.memory.retrieve == 5
    assert settings.memory.extract is False
    assert settings.plugin_config("mlflow") == {"experiment": "prov"}
    assert settings.plugin_config("jsonl") == {}
    assert settings.selections == (
        Selection(
            source=f"config file {tmp_path / 'rlm.toml'}",
            allow=("jsonl",),
            allow_flag="rlm.trackers",
            deny_flag="rlm.disable",
        ),
    )
    assert settings.config_path == str(tmp_path / "rlm.toml")


def test_tool_rlm_in_pyproject_is_read_when_there_is_no_rlm_toml(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        """
[project]
name = "x"

[tool.rlm]
model = "anthropic/claude-sonnet"
disable = ["mlflow"]

[tool.rlm.memory]
path = "mem.db"

[tool.rlm.plugins.jsonl]
path = "logs/{run_id}.jsonl"
""",
    )
    settings = load_settings(env={}, cwd=tmp_path)
    assert settings.model == "anthropic/claude-sonnet"
    assert settings.memory.path == "mem.db"
    assert settings.plugin_config("jsonl") == {"path": "logs/{run_id}.jsonl"}
    assert settings.selections[0].deny == ("mlflow",)
    assert settings.selections[0].deny_flag == "tool.rlm.rlm.disable"


def test_rlm_toml_wins_over_pyproject(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.rlm]\nmodel = "from-pyproject"\n')
    write(tmp_path / "rlm.toml", '[rlm]\nmodel = "from-rlm-toml"\n')
    assert load_settings(env={}, cwd=tmp_path).model == "from-rlm-toml"


def test_pyproject_without_tool_rlm_is_ignored(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')
    assert load_settings(env={}, cwd=tmp_path).config_path is None


def test_explicit_config_wins_over_rlm_config_and_the_local_file(tmp_path: Path) -> None:
    write(tmp_path / "rlm.toml", '[rlm]\nmodel = "local"\n')
    write(tmp_path / "env.toml", '[rlm]\nmodel = "from-env-var"\n')
    write(tmp_path / "cli.toml", '[rlm]\nmodel = "from-cli"\n')
    env = {"RLM_CONFIG": "env.toml"}
    assert load_settings(env=env, cwd=tmp_path).model == "from-env-var"
    cli = CliOptions(config="cli.toml")
    assert load_settings(cli, env=env, cwd=tmp_path).model == "from-cli"


def test_environment_overrides_the_file_and_the_command_line_overrides_both(
    tmp_path: Path,
) -> None:
    write(tmp_path / "rlm.toml", '[rlm]\nmodel = "file"\nmax_iterations = 3\nstrict = false\n')
    env = {"RLM_MODEL": "env", "RLM_MAX_ITERATIONS": "4", "RLM_STRICT": "true"}
    settings = load_settings(env=env, cwd=tmp_path)
    assert (settings.model, settings.max_iterations, settings.strict) == ("env", 4, True)
    cli = CliOptions(model="cli", max_iterations=5)
    settings = load_settings(cli, env=env, cwd=tmp_path)
    assert (settings.model, settings.max_iterations, settings.strict) == ("cli", 5, True)


def test_selections_are_ordered_command_line_first(tmp_path: Path) -> None:
    write(tmp_path / "rlm.toml", '[rlm]\ndisable = ["mlflow"]\n')
    env = {"RLM_TRACKERS": "jsonl, mlflow", "RLM_DISABLE": "memory_metrics"}
    cli = CliOptions(trackers=["mlflow"], no_tracker=["jsonl"])
    selections = load_settings(cli, env=env, cwd=tmp_path).selections
    assert [s.source for s in selections] == [
        "command line",
        "environment",
        f"config file {tmp_path / 'rlm.toml'}",
    ]
    assert selections[0].allow == ("mlflow",)
    assert selections[0].deny == ("jsonl",)
    assert selections[1].allow == ("jsonl", "mlflow")
    assert selections[1].deny == ("memory_metrics",)


def test_empty_rlm_trackers_means_no_trackers(tmp_path: Path) -> None:
    (selection,) = load_settings(env={"RLM_TRACKERS": ""}, cwd=tmp_path).selections
    assert selection.allow == ()


def test_no_trackers_flag_is_an_empty_allow_list(tmp_path: Path) -> None:
    (selection,) = load_settings(CliOptions(no_trackers=True), env={}, cwd=tmp_path).selections
    assert selection.allow == ()
    assert selection.allow_flag == "--no-trackers"


def test_env_references_are_resolved_everywhere(tmp_path: Path) -> None:
    write(
        tmp_path / "rlm.toml",
        '[rlm]\nmodel = "$env:MY_MODEL"\n[plugins.slack]\ntoken = "$env:SLACK_TOKEN"\n',
    )
    env = {"MY_MODEL": "openai/gpt-4o", "SLACK_TOKEN": "xoxb-secret"}
    settings = load_settings(env=env, cwd=tmp_path)
    assert settings.model == "openai/gpt-4o"
    assert settings.plugin_config("slack") == {"token": "xoxb-secret"}


def test_unset_env_reference_names_file_key_and_variable(tmp_path: Path) -> None:
    path = write(tmp_path / "rlm.toml", '[plugins.slack]\ntoken = "$env:SLACK_TOKEN"\n')
    with pytest.raises(ConfigError) as error:
        load_settings(env={}, cwd=tmp_path)
    message = str(error.value)
    assert str(path) in message
    assert "plugins.slack.token" in message
    assert "'SLACK_TOKEN'" in message


def test_malformed_toml_names_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "rlm.toml", '[rlm]\nmodel = "unterminated\n')
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 2, column \d+") as error:
        load_settings(env={}, cwd=tmp_path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[rlm]\nmax_iterations = 0\n", r"rlm\.max_iterations: expected a positive integer, got 0"),
        ("[rlm]\nmax_iterations = true\n", r"rlm\.max_iterations: expected a positive integer"),
        ('[rlm]\nstrict = "yes"\n', r"rlm\.strict: expected true or false, got 'yes'"),
        ('[rlm]\ntrackers = "jsonl"\n', r"rlm\.trackers: expected a list of tracker names"),
        ("[rlm]\nmodle = 'x'\n", r"unknown key rlm\.modle \(known keys: .*model"),
        ("[memory]\nretrieve = -1\n", r"memory\.retrieve: expected a positive integer"),
        ("[trackers]\nx = 1\n", r"unknown section \[trackers\]"),
        ("[plugins]\njsonl = 3\n", r"plugins\.jsonl: expected a table"),
    ],
)
def test_invalid_values_name_the_file_the_key_and_what_was_expected(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path / "rlm.toml", text)
    with pytest.raises(ConfigError, match=message) as error:
        load_settings(env={}, cwd=tmp_path)
    assert str(path) in str(error.value)


def test_invalid_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"environment: RLM_MAX_ITERATIONS: expected a positive"):
        load_settings(env={"RLM_MAX_ITERATIONS": "many"}, cwd=tmp_path)


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--config: config file .*nope\.toml does not exist"):
        load_settings(CliOptions(config="nope.toml"), env={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="RLM_CONFIG"):
        load_settings(env={"RLM_CONFIG": "nope.toml"}, cwd=tmp_path)


def test_explicit_pyproject_config_reads_its_tool_rlm_table(tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    write(tmp_path / "other" / "pyproject.toml", '[tool.rlm]\nmodel = "m"\n')
    settings = load_settings(CliOptions(config="other/pyproject.toml"), env={}, cwd=tmp_path)
    assert settings.model == "m"
