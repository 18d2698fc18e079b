"""Fixtures every test package shares.

The test helpers live in modules that are not tests (``tests/helpers/``, ``tests/AREA/helpers.py``)
and are imported as package modules, ``from tests.helpers.jsonl import ...``.
"""

from __future__ import annotations

import os
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
