"""Secrets never reach a file: fake keys in the environment and in the config, a model that prints
them and puts them in its answer, every tracker on; then every byte written is searched."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlm_core import Settings, flush, run
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
    flush(60.0)  # the trackers write after run_end: read the files once they are written
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


ESCAPABLE_PASSWORD = 'Tr0ub4dor\\Horse"Staple'


def test_a_secret_printed_in_escaped_form_is_redacted_in_every_file(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A password with a backslash and a quote, printed as Python repr, as JSON (once and twice
    escaped) and URL-encoded, reaches no file in any of those forms."""
    monkeypatch.setenv("DB_PASSWORD", ESCAPABLE_PASSWORD)
    code = (
        "import json, os, urllib.parse\n"
        "secrets = {'DB_PASSWORD': os.environ['DB_PASSWORD']}\n"
        "print(secrets)\n"
        "print(json.dumps(secrets))\n"
        "print(json.dumps(repr(secrets)))\n"
        "print('https://db.example/?p=' + urllib.parse.quote(secrets['DB_PASSWORD'], safe=''))\n"
    )
    cassette = write_cassette(
        workdir.parent / f"{workdir.name}-escaped.jsonl",
        [
            scripted_step("Look at the environment.", code),
            scripted_step(
                "Submit it.",
                "SUBMIT(answer=repr(secrets), sparql='SELECT * WHERE { ?s ?p ?o }', "
                "evidence=[json.dumps(secrets)])",
            ),
            scripted_judgment(True, "fine", 0.5),
            scripted_extraction([]),
        ],
    )
    result = run("What is in the environment?", DEMO_ONTOLOGY, model=f"scripted:{cassette}")
    assert result.converged, result.error
    assert result.answer is not None
    assert "Tr0ub4dor" in result.answer  # the caller's own result is not redacted
    flush(60.0)  # the trackers write after run_end: read the files once they are written
    written = [path for path in workdir.rglob("*") if path.is_file()]
    assert any(path.suffix == ".jsonl" for path in written)
    for path in written:
        # Every escaped form starts with the same characters: none may be left anywhere.
        assert b"Tr0ub4dor" not in path.read_bytes(), f"an escaped password leaked into {path}"


def test_a_recorded_cassette_holds_no_secret(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``rlm run --record`` writes what the model said, redacted: a cassette is made to share."""
    from rlm_core.cli import main

    cassette = leaky_cassette(workdir.parent / f"{workdir.name}-leaky.jsonl")
    recorded = workdir / "recorded.jsonl"
    code = main(
        [
            "run",
            "What is in the environment?",
            "--ontology",
            str(DEMO_ONTOLOGY),
            "--lm",
            f"scripted:{cassette}",
            "--record",
            str(recorded),
            "--no-trackers",
        ]
    )
    capsys.readouterr()
    assert code == 0
    data = recorded.read_bytes()
    assert b"[REDACTED]" in data
    for secret in (OPENAI_KEY, CONFIG_TOKEN, PLAIN_SECRET):
        assert secret.encode() not in data, f"{secret[:8]}… leaked into the cassette"
