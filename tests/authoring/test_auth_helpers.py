"""The authoring tests' helpers do what the other tests rely on."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.authoring.helpers import FreshVenv, webhook_receiver


def test_the_receiver_records_posted_json() -> None:
    import urllib.request

    with webhook_receiver() as receiver:
        request = urllib.request.Request(receiver.url, data=b'{"a": 1}', method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 204
        assert receiver.wait_for(1) == [{"a": 1}]


@pytest.mark.slow
def test_a_fresh_venv_has_its_own_rlm_core_and_sees_its_dependencies(tmp_path: Path) -> None:
    venv = FreshVenv(tmp_path / "venv")
    code = "import dspy, rlm_core, sys; print(rlm_core.__file__); print(sys.prefix)"
    result = venv.run([venv.python, "-c", code], tmp_path)
    assert result.returncode == 0, result.stderr
    location, prefix = result.stdout.split()
    assert Path(location).is_relative_to(venv.root)
    assert Path(prefix) == venv.root
    assert (venv.bin / "rlm").exists()
