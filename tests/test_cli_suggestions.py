"""A mistyped command or option gets one line naming it and the closest match, exit 2."""

from __future__ import annotations

import argparse

import pytest

from rlm_core.cli import build_parser, main


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The last stderr line of ``rlm ARGV``, which must exit 2 (a usage error)."""
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    assert exited.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_a_mistyped_command_suggests_the_closest_one(capsys: pytest.CaptureFixture[str]) -> None:
    line = usage_error(capsys, "rnu", "What is an activity?")
    assert line.startswith(
        "rlm: error: argument COMMAND: invalid choice: 'rnu'; did you mean 'run'?"
    )


def test_a_mistyped_subcommand_suggests_the_closest_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = usage_error(capsys, "memory", "exprot", "pack.jsonl")
    assert "invalid choice: 'exprot'; did you mean 'export'?" in line


def test_a_mistyped_option_is_named_instead_of_a_missing_required_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = usage_error(capsys, "run", "--ontologgy", "prov.ttl", "What is an activity?")
    assert line == "rlm run: error: unrecognized option --ontologgy; did you mean --ontology?"


def test_a_mistyped_option_after_the_required_ones_gets_a_suggestion(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = usage_error(capsys, "run", "q", "--ontology", "prov.ttl", "--no-memroy")
    assert line == "rlm run: error: unrecognized option --no-memroy; did you mean --no-memory?"


def test_an_option_with_no_close_match_is_named_without_a_guess(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = usage_error(capsys, "run", "q", "--ontology", "prov.ttl", "--zzzzzz")
    assert line == "rlm run: error: unrecognized option --zzzzzz"


def test_a_real_missing_required_option_is_still_reported_as_missing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = usage_error(capsys, "run", "What is an activity?")
    assert line.endswith("the following arguments are required: --ontology")


def test_a_command_added_by_a_plugin_gets_suggestions_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The host knows no command by name: a subcommand added to the parser (as a plugin's
    ``register_commands`` does) is built by the same parser class."""
    parser = build_parser()
    commands = next(
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    widget = commands.add_parser("widget")
    widget.add_argument("--colour", required=True)
    with pytest.raises(SystemExit):
        parser.parse_args(["widget", "--color", "red"])
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "rlm widget: error: unrecognized option --color; did you mean --colour?"
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["widgte"])
    assert "did you mean 'widget'?" in capsys.readouterr().err
