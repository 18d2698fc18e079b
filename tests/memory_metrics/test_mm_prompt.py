"""The injected-token estimate counts what the root prompts really showed: checked against the
prompts DSPy sent in real runs (the plugin rebuilds the text from the memory database)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dspy
import pytest
from dspy.utils.callback import BaseCallback

from rlm_core.memory import MemoryDraft, SQLiteMemoryStore
from rlm_core.testing import RecordingPlugin
from rlm_plugins.memory_metrics import MemoryMetricsTracker
from tests.memory_metrics.helpers import (
    EQUIPMENT,
    HEADER,
    HIERARCHY,
    cassette,
    entry,
    extracted,
    judged,
    memory_settings,
    published,
    scripted_run,
    seed,
    step,
    submit,
)


class Prompts(BaseCallback):  # type: ignore[misc]
    """Keeps the messages of every LM call."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self.texts.append("\n".join(message["content"] for message in inputs["messages"]))


def memories_preview(prompt: str) -> str:
    """The preview of the ``memories`` input in a root prompt, without the prompt's indent."""
    block = prompt[prompt.index("Variable: `memories`") :]
    block = block[block.index("Preview:\n") :].split("\n")[2:]  # after "Preview:" and the fence
    lines = block[: block.index("    ```")]
    assert all(line.startswith("    ") for line in lines)
    return "\n".join(line[4:] for line in lines)


def run_and_capture(tmp_path: Path, question: str) -> tuple[str, dict[str, float]]:
    model = cassette(
        tmp_path / "c.jsonl", step("print(1)"), step(submit()), judged(True), extracted()
    )
    prompts, recorder = Prompts(), RecordingPlugin()
    with dspy.context(callbacks=[prompts]):
        scripted_run(
            model,
            memory_settings(tmp_path / "rlm-memory.db"),
            MemoryMetricsTracker(),
            recorder,
            question=question,
        )
    return memories_preview(prompts.texts[0]), published(recorder)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_short_memories_are_shown_whole(tmp_path: Path) -> None:
    seed(tmp_path / "rlm-memory.db")
    preview, values = run_and_capture(tmp_path, "Which equipment does a brewing session use?")
    assert preview == "\n".join([HEADER, entry(1, EQUIPMENT), entry(2, HIERARCHY)])
    assert values["memory_metrics.injected_tokens"] == len(preview) / 4


def test_long_memories_count_only_the_preview_the_prompt_shows(tmp_path: Path) -> None:
    filler = "Grind the beans, weigh the dose, heat the water and time the brew. " * 10
    with SQLiteMemoryStore(tmp_path / "rlm-memory.db") as store:
        store.add_memories(
            [
                MemoryDraft(f"Grinder setting {n}", "Grinder advice.", filler + str(n))
                for n in range(3)
            ],
            run_id=None,
            scope="coffee",
        )
    preview, values = run_and_capture(tmp_path, "Which grinder setting should I use?")
    # format_memories gives up to 2000 characters; DSPy shows 500 + "..." + 500 of them.
    assert len(preview) == 1003
    assert "..." in preview
    assert values["memory_metrics.injected_tokens"] == 1003 / 4
    assert values["memory_metrics.prompt_share"] == 1003 / 4 * 2 / 2000
