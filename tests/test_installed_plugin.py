"""Entry-point discovery end to end: a real plugin package, built and installed by pip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent / "fixtures" / "rlm-sample-tracker"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample tracker installed by pip into a directory of its own.

    ``--no-deps``: the package must never make pip look for a distribution named rlm-core.
    """
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(PACKAGE),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return target


def run_python(code: str, site: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    for variable in ("RLM_TRACKERS", "RLM_DISABLE", "RLM_CONFIG"):
        env.pop(variable, None)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_rlm_plugins_lists_the_installed_package(site: Path, tmp_path: Path) -> None:
    result = run_python(
        "from rlm_core.cli import main; main(['plugins', '--json'])", site, tmp_path
    )
    assert result.returncode == 0, result.stderr
    listing = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert listing["sample"] == {
        "name": "sample",
        "distribution": "rlm-sample-tracker",
        "version": "1.2.3",
        "state": "enabled",
        "reason": None,
        "hooks": ["iteration", "run_end", "run_start"],
        "errors": 0,
        "last_trouble": None,
    }


EMIT = """
import sys
sys.path.insert(0, {root!r})
from tests.helpers.factories import iteration, run_info, run_result
from rlm_core import load_settings
from rlm_core.plugins import get_plugin_manager
manager = get_plugin_manager(load_settings())
run = run_info("run-42")
manager.hook.run_start(run=run)
manager.hook.iteration(run=run, step=iteration("run-42", index=0))
manager.hook.run_end(run=run, result=run_result("run-42"))
"""


def test_installed_plugin_receives_events_with_its_config_section(
    site: Path, tmp_path: Path
) -> None:
    (tmp_path / "rlm.toml").write_text('[plugins.sample]\noutput = "seen.txt"\n', encoding="utf-8")
    result = run_python(EMIT.format(root=str(Path(__file__).parents[1])), site, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "seen.txt").read_text().splitlines() == [
        "run_start run-42",
        "iteration 0",
        "run_end True",
    ]


def test_disabling_the_installed_plugin_by_environment(site: Path, tmp_path: Path) -> None:
    code = (
        "from rlm_core.cli import main; import os; os.environ['RLM_DISABLE'] = 'sample'; "
        "main(['plugins', '--json'])"
    )
    result = run_python(code, site, tmp_path)
    listing = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert listing["sample"]["state"] == "disabled"
    assert listing["sample"]["reason"] == "disabled by RLM_DISABLE (environment)"
