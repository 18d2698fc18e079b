"""docs/trackers/memory_metrics.md names what the code has: metrics, options, the heuristic's
lists, the state file's columns and the report's flags."""

from __future__ import annotations

import argparse
import inspect
import re
import sqlite3
from pathlib import Path

import pytest

from rlm_plugins.memory_metrics import MemoryMetricsTracker
from rlm_plugins.memory_metrics.cli import register_report
from rlm_plugins.memory_metrics.measure import METRICS
from rlm_plugins.memory_metrics.state import RunRow, write_run
from rlm_plugins.memory_metrics.terms import COMMON_NAMES, SPARQL_KEYWORDS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "trackers" / "memory_metrics.md").read_text()


def table_names(text: str) -> set[str]:
    """The code-formatted names in the first column of the Markdown tables of ``text``."""
    return set(re.findall(r"^\| `([^|`]+)`", text, re.MULTILINE))


def test_every_metric_is_documented_and_nothing_else() -> None:
    documented = {name for name in table_names(DOC) if name.startswith("memory_metrics.")}
    assert documented == set(METRICS)


def test_every_option_is_documented() -> None:
    options = set(inspect.signature(MemoryMetricsTracker).parameters)
    assert options == {"db", "state"}
    assert options <= table_names(DOC)


@pytest.mark.parametrize("term", sorted(COMMON_NAMES) + list(SPARQL_KEYWORDS))
def test_the_heuristics_lists_are_documented(term: str) -> None:
    assert f"`{term}`" in DOC


def test_every_state_column_is_documented(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    write_run(
        state,
        RunRow(
            run_id="r",
            started_at="2026-01-01T00:00:00+00:00",
            ontology="o",
            question="q",
            memory_enabled=False,
            retrievals=(),
            success=None,
            confidence=None,
            converged=True,
            iterations=1,
            llm_calls=1,
            prompt_tokens=1,
            completion_tokens=1,
            duration=0.1,
            prompt_share=None,
            error=None,
            metrics={},
        ),
    )
    db = sqlite3.connect(state)
    try:
        columns = {
            table: [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
            for table in ("runs", "retrievals")
        }
    finally:
        db.close()
    for table, names in columns.items():
        assert f"**`{table}`**" in DOC
        for name in names:
            assert f"`{name}`" in DOC, f"{table}.{name}"


def test_every_report_flag_is_documented() -> None:
    subcommands = argparse.ArgumentParser().add_subparsers()
    register_report(subcommands)
    report = subcommands.choices["report"]
    flags = {flag for action in report._actions for flag in action.option_strings} - {
        "-h",
        "--help",
    }
    usage = next(line for line in DOC.splitlines() if line.startswith("rlm memory report"))
    assert flags == set(re.findall(r"(?<![\w-])--?[a-z]+", usage))
