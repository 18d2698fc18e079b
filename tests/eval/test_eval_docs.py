"""docs/eval.md keeps up with the command: every option of ``rlm eval run`` is explained."""

from __future__ import annotations

import argparse
from pathlib import Path

from rlm_core.cli import build_parser

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "eval.md"


def subparser(parser: argparse.ArgumentParser, *names: str) -> argparse.ArgumentParser:
    for name in names:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


def test_every_option_of_eval_run_and_report_is_in_the_guide() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    shared = {"--help", "--config", "--tracker", "--no-tracker", "--no-trackers", "--sub-lm",
              "--max-iterations", "--max-llm-calls", "--output"}  # fmt: skip
    for action in ("run", "report", "demo"):
        options = {
            option
            for item in subparser(build_parser(), "eval", action)._actions
            for option in item.option_strings
            if option.startswith("--")
        }
        missing = sorted(option for option in options - shared if f"{option}" not in text)
        assert not missing, f"rlm eval {action}: {missing} not in docs/eval.md"
