"""Fixtures every test package shares.

The test helpers live in modules that are not tests (``tests/helpers/``, ``tests/AREA/helpers.py``)
and are imported as package modules, ``from tests.helpers.jsonl import ...``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in an empty directory with no ``RLM_*`` setting from the caller's environment, so
    files a run writes by default land in ``tmp_path`` and selections start from the defaults."""
    monkeypatch.chdir(tmp_path)
    for variable in [name for name in os.environ if name.startswith("RLM_")]:
        monkeypatch.delenv(variable)
    return tmp_path


@pytest.fixture(autouse=True)
def _cli_logging_restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A test that runs ``rlm`` in process leaves no logging setup behind for the next one."""
    from rlm_core import logs

    root = logging.getLogger("rlm")
    handlers, level = list(root.handlers), root.level
    monkeypatch.setattr(logs, "_verbose", logs._verbose)
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
