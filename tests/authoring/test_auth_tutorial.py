"""A new user following docs/tutorial.md, and only it, ends up with a working plugin.

The test reads the tutorial: each code block that includes a file (``--8<-- "PATH"``) becomes
that file, and each ``sh`` block runs as written, in order, in one shell that starts in an empty
folder of a fresh venv with rlm-core installed. ``text`` blocks are only shown. The local webhook
stands in for the reader's Slack URL.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from rlm_core._demo import DEMO_QUESTION
from tests.authoring.helpers import EXAMPLES, REPO, FreshVenv, webhook_receiver

TUTORIAL = REPO / "docs" / "tutorial.md"
PACKAGE = EXAMPLES / "rlm-webhook-notifier"
BLOCK = re.compile(r"^(?P<fence>`{3,})(?P<lang>\w*)\n(?P<body>.*?)^(?P=fence)$", re.M | re.S)
INCLUDE = re.compile(r'^--8<-- "(?P<path>[^"]+)"$', re.M)


def tutorial_script(text: str) -> tuple[str, list[str]]:
    """The shell script the tutorial amounts to, and the files it includes."""
    lines = ["set -euxo pipefail", 'root="$PWD"']
    included = []
    for block in BLOCK.finditer(text):
        files = INCLUDE.findall(block["body"])
        for path in files:
            # No mkdir -p: a directory the tutorial forgot to create fails the copy.
            source = shlex.quote(str(EXAMPLES / path))
            lines.append(f'cp {source} "$root"/{shlex.quote(path)}')
        included.extend(files)
        if block["lang"] == "sh" and not files:
            lines.append(block["body"])
    return "\n".join(lines) + "\n", included


def test_the_tutorial_shows_every_file_of_the_example_package() -> None:
    """Caches that tools leave (.ruff_cache, __pycache__) are not the package's."""
    _, included = tutorial_script(TUTORIAL.read_text(encoding="utf-8"))
    package_files = {
        str(path.relative_to(EXAMPLES))
        for path in PACKAGE.rglob("*")
        if path.is_file()
        and not any(
            part.startswith(".") or part == "__pycache__"
            for part in path.relative_to(PACKAGE).parts
        )
    }
    assert set(included) == package_files


@pytest.mark.slow
def test_following_the_tutorial_gives_a_working_plugin(tmp_path: Path) -> None:
    venv = FreshVenv(tmp_path / "venv")
    folder = tmp_path / "empty-folder"
    folder.mkdir()
    script, _ = tutorial_script(TUTORIAL.read_text(encoding="utf-8"))
    with webhook_receiver() as receiver:
        result = venv.run(["bash", "-c", script], folder, RLM_WEBHOOK_URL=receiver.url)
        assert result.returncode == 0, f"{script}\n{result.stdout}\n{result.stderr}"
        bodies = receiver.wait_for(1)
    demo = [body for body in bodies if body["question"] == DEMO_QUESTION]
    assert demo, "rlm demo -t webhook posted the run's summary"
    assert demo[0]["status"] == "converged"
    assert " passed" in result.stdout, "the package's tests ran"
    assert "webhook" in result.stdout, "rlm plugins listed the tracker"
