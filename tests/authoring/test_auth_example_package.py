"""docs/examples/rlm-webhook-notifier, installed by pip, posts run summaries from ``rlm demo``.

The package is installed into a directory of its own (``--no-deps``: pip must never look for a
distribution named rlm-core) and put on ``PYTHONPATH``, as a user's environment would have it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlm_core.testing import DEMO_QUESTION
from tests.authoring.helpers import (
    EXAMPLES,
    clean_environment,
    pip_install_target,
    run,
    webhook_receiver,
)

PACKAGE = EXAMPLES / "rlm-webhook-notifier"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    pip_install_target(PACKAGE, target)
    return target


def with_site(site: Path) -> dict[str, str]:
    return clean_environment(
        PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    )


def rlm(arguments: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = f"from rlm_core.cli import main; raise SystemExit(main({arguments!r}))"
    return run([sys.executable, "-c", code], cwd, with_site(site))


def test_rlm_demo_posts_the_summary_to_the_configured_webhook(site: Path, tmp_path: Path) -> None:
    with webhook_receiver() as receiver:
        (tmp_path / "rlm.toml").write_text(
            f'[plugins.webhook]\nurl = "{receiver.url}"\ntimeout = 5\n', encoding="utf-8"
        )
        result = rlm(["demo", "-t", "webhook", "--json"], site, tmp_path)
        assert result.returncode == 0, result.stderr
        printed = json.loads(result.stdout)
        bodies = receiver.wait_for(1)
    [body] = bodies
    assert body["run_id"] == printed["run_id"]
    assert body["status"] == "converged"
    assert body["question"] == DEMO_QUESTION
    assert body["answer"] == printed["answer"]
    assert printed["run_id"] in body["text"]


def test_the_plugin_adds_rlm_webhook_test_which_posts_through_rlm(
    site: Path, tmp_path: Path
) -> None:
    listing = rlm(["--help"], site, tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "webhook" in listing.stdout.split("options:")[0]
    with webhook_receiver() as receiver:
        (tmp_path / "rlm.toml").write_text(f'[plugins.webhook]\nurl = "{receiver.url}"\n')
        result = rlm(["webhook", "test"], site, tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"posted a test message to {receiver.url}"
        assert receiver.wait_for(1) == [{"text": "rlm-webhook-notifier test message", "test": True}]
    (tmp_path / "rlm.toml").unlink()
    missing = rlm(["webhook", "test"], site, tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.startswith("rlm: error: webhook: url must be an http(s) URL")
    assert "Traceback" not in missing.stderr


def test_without_the_plugin_rlm_has_no_webhook_command(tmp_path: Path) -> None:
    result = run(
        [
            sys.executable,
            "-c",
            "from rlm_core.cli import main; raise SystemExit(main(['webhook']))",
        ],
        tmp_path,
        clean_environment(),
    )
    assert result.returncode == 2
    assert "invalid choice: 'webhook'" in result.stderr


def test_only_failures_keeps_a_converged_run_quiet(site: Path, tmp_path: Path) -> None:
    with webhook_receiver() as receiver:
        (tmp_path / "rlm.toml").write_text(
            f'[plugins.webhook]\nurl = "{receiver.url}"\nonly_failures = true\n',
            encoding="utf-8",
        )
        result = rlm(["demo", "-t", "webhook"], site, tmp_path)
        assert result.returncode == 0, result.stderr
    assert receiver.bodies == []


def test_without_a_url_the_tracker_is_unavailable_and_says_what_to_set(
    site: Path, tmp_path: Path
) -> None:
    result = rlm(["plugins", "--json"], site, tmp_path)
    assert result.returncode == 0, result.stderr
    listing = {entry["name"]: entry for entry in json.loads(result.stdout)}
    webhook = listing["webhook"]
    assert webhook["distribution"] == "rlm-webhook-notifier"
    assert webhook["state"] == "unavailable"
    assert "[plugins.webhook] url" in webhook["reason"]


def test_the_example_packages_own_tests_pass(site: Path) -> None:
    result = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], PACKAGE, with_site(site)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
