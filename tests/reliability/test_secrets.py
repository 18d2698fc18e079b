"""Secrets never reach a file: fake keys in the environment and in the config, a model that prints
them and puts them in its answer, every tracker on; then every byte written is searched."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlm_core import Settings, run
from rlm_core._demo import DEMO_ONTOLOGY
from rlm_core.config import load_settings
from rlm_core.memory import MemoryDraft
from rlm_core.memory.scripted import scripted_extraction, scripted_judgment
from rlm_core.plugins import get_plugin_manager
from rlm_core.testing import scripted_step, write_cassette

OPENAI_KEY = "sk-proj-FAKEfakeFAKEfake0123456789abcdefXYZ"
CONFIG_TOKEN = "xoxb-1234567890-0987654321-FaKeToKeNfAkEtOkEn"
PLAIN_SECRET = "correct-horse-battery-staple-42"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in ("RLM_TRACKERS", "RLM_DISABLE", "RLM_CONFIG", "RLM_MODEL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("MY_SERVICE_PASSWORD", PLAIN_SECRET)
    monkeypatch.setenv("SLACK_TOKEN", CONFIG_TOKEN)
    return tmp_path


def leaky_cassette(path: Path) -> Path:
    """A model that reads the keys from its environment, prints them and submits them."""
    code = (
        "import os\n"
        "key = os.environ['OPENAI_API_KEY']\n"
        "print('the key is', key, 'and the password is', os.environ['MY_SERVICE_PASSWORD'])\n"
        "print(search_entity(key, limit=2))"
    )
    return write_cassette(
        path,
        [
            scripted_step(f"I will look at the environment: {OPENAI_KEY}", code),
            scripted_step(
                "Submit it all.",
                "SUBMIT(answer='key ' + key + ' / ' + os.environ['SLACK_TOKEN'], "
                "sparql='SELECT * WHERE { ?s ?p ?o }', evidence=[key])",
            ),
            scripted_judgment(True, f"the answer contains {OPENAI_KEY}", 0.5),
            scripted_extraction(
                [MemoryDraft(title="Keys", description=f"use {OPENAI_KEY}", content=PLAIN_SECRET)]
            ),
        ],
    )


def test_no_byte_of_a_secret_reaches_any_file(workdir: Path) -> None:
    (workdir / "rlm.toml").write_text(
        '[plugins.jsonl]\npath = "runs/{run_id}.jsonl"\n', encoding="utf-8"
    )
    settings = load_settings()
    available = [
        status.name
        for status in get_plugin_manager(settings).statuses()
        if status.state == "enabled"
    ]
    assert "jsonl" in available
    cassette = leaky_cassette(workdir.parent / f"{workdir.name}-leaky.jsonl")
    result = run(
        "What is in the environment?",
        DEMO_ONTOLOGY,
        model=f"scripted:{cassette}",
        config=settings,
        tags={"api_key": OPENAI_KEY, "note": f"token {CONFIG_TOKEN}"},
    )
    assert result.converged, result.error
    written = [path for path in workdir.rglob("*") if path.is_file()]
    assert any(path.suffix == ".jsonl" for path in written)
    for path in written:
        data = path.read_bytes()
        for secret in (OPENAI_KEY, CONFIG_TOKEN, PLAIN_SECRET):
            assert secret.encode() not in data, f"{secret[:8]}… leaked into {path}"


def test_the_runs_own_result_keeps_the_answer_for_the_caller(workdir: Path) -> None:
    """Redaction is for what is written down; the caller gets what the model answered."""
    cassette = leaky_cassette(workdir.parent / f"{workdir.name}-leaky.jsonl")
    result = run("q", DEMO_ONTOLOGY, model=f"scripted:{cassette}", trackers=[], config=Settings())
    assert result.answer is not None
    assert OPENAI_KEY in result.answer
