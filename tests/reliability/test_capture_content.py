"""``capture_content = false``: no prompt or response text reaches any file any tracker writes.

The markers travel only as LM content: the sub-LM prompt is assembled at run time (the code holds
it reversed) and its answer is never printed, so they cannot reach a file any other way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rlm_core import flush, run
from rlm_core.config import load_settings
from rlm_core.plugins import get_plugin_manager
from rlm_core.testing import DEMO_ONTOLOGY, scripted_step, scripted_sub, write_cassette

PROMPT_MARKER = "prompt-marker-7f3a9c"
RESPONSE_MARKER = "response-marker-b41e07"


def marked_cassette(path: Path) -> Path:
    code = f'answer = llm_query("".join(reversed({PROMPT_MARKER[::-1]!r})))\nprint(len(answer))'
    return write_cassette(
        path,
        [
            scripted_step("Ask the sub-LM, keep its answer to myself.", code),
            scripted_sub(RESPONSE_MARKER),
            scripted_step("Done.", "SUBMIT(answer='done', sparql='', evidence=[])"),
        ],
    )


@pytest.mark.parametrize("capture", [True, False], ids=["captured", "not-captured"])
def test_content_is_written_only_when_captured(in_tmp: Path, capture: bool) -> None:
    (in_tmp / "rlm.toml").write_text(
        f"[rlm]\ncapture_content = {str(capture).lower()}\n[memory]\nenabled = false\n",
        encoding="utf-8",
    )
    settings = load_settings()
    enabled = {s.name for s in get_plugin_manager(settings).statuses() if s.state == "enabled"}
    assert {"jsonl", "mlflow", "memory_metrics"} <= enabled
    cassette = marked_cassette(in_tmp.parent / f"{in_tmp.name}-marked.jsonl")
    result = run(
        "What does the sub-LM say?", DEMO_ONTOLOGY, model=f"scripted:{cassette}", config=settings
    )
    flush(60.0)  # the trackers' background work is written too (its files are read below)
    assert result.converged, result.error
    written = {path: path.read_bytes() for path in in_tmp.rglob("*") if path.is_file()}
    assert any(path.suffix == ".jsonl" for path in written)
    assert any(path.name == "mlflow.db" for path in written)
    holding = sorted(
        str(path.relative_to(in_tmp))
        for path, data in written.items()
        for marker in (PROMPT_MARKER, RESPONSE_MARKER)
        if marker.encode() in data
    )
    if capture:
        assert f"runs/{result.run_id}.jsonl" in holding  # the control: the markers are content
    else:
        assert holding == []
