"""The plugin-author docs run: code blocks of docs/testing-plugins.md, snippet includes."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.authoring.helpers import EXAMPLES, REPO, clean_environment, run

DOCS = REPO / "docs"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.M | re.S)


@pytest.mark.slow
def test_the_testing_guide_examples_pass_as_a_test_module(tmp_path: Path) -> None:
    """Each ```python block of the guide is part of one test module, in order."""
    blocks = PYTHON_BLOCK.findall((DOCS / "testing-plugins.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 4
    module = tmp_path / "test_guide.py"
    module.write_text("\n\n".join(blocks), encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"]
    result = run([*command, module], tmp_path, clean_environment())
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{module.read_text().count('def test_')} passed" in result.stdout


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda path: path.name)
def test_every_snippet_include_names_an_example_file(page: Path) -> None:
    for path in re.findall(r'^--8<-- "([^"]+)"$', page.read_text(encoding="utf-8"), re.M):
        assert (EXAMPLES / path).is_file(), f"{page.name} includes {path}, which does not exist"
