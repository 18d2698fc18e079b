"""Memories and trajectories as prompt text: readable, and never over budget."""

from __future__ import annotations

from rlm_core.memory import RetrievedItem, format_memories, format_trajectory


def item(rank: int, content: str = "List properties whose domain is X.") -> RetrievedItem:
    return RetrievedItem(
        memory_id=f"id{rank}",
        title=f"Strategy {rank}",
        description="when it applies",
        content=content,
        tags=(),
        scope=None,
        rank=rank,
        score=1.0 / rank,
    )


def test_no_memories_is_no_text() -> None:
    assert format_memories([]) == ""


def test_memories_are_numbered_in_rank_order() -> None:
    text = format_memories([item(1), item(2, "line one\nline two")])
    assert text.splitlines() == [
        "Strategies that worked on earlier questions (use them only where they fit):",
        "1. Strategy 1: when it applies",
        "   List properties whose domain is X.",
        "2. Strategy 2: when it applies",
        "   line one",
        "   line two",
    ]


def test_long_memories_share_the_budget() -> None:
    items = [item(rank, "word " * 2000) for rank in range(1, 4)]
    text = format_memories(items, max_chars=1200)
    assert len(text) <= 1200
    assert all(f"{rank}. Strategy {rank}" in text for rank in (1, 2, 3))


def test_items_that_no_longer_fit_are_counted() -> None:
    items = [item(rank, "word " * 100) for rank in range(1, 30)]
    text = format_memories(items, max_chars=1000)
    assert len(text) <= 1000
    assert text.endswith("more left out for length)")


def steps(count: int, size: int = 100) -> list[dict[str, str]]:
    return [
        {"reasoning": f"reason {i} " + "r" * size, "code": f"code_{i}()", "output": "o" * size}
        for i in range(count)
    ]


def test_a_short_trajectory_is_shown_whole() -> None:
    text = format_trajectory([{"reasoning": "look", "code": "print(1)", "error": "Boom"}])
    assert text == "Step 1\nReasoning:\nlook\nCode:\nprint(1)\nError:\nBoom"
    assert format_trajectory([]) == "(the run took no steps)"


def test_a_long_trajectory_keeps_its_first_and_last_steps() -> None:
    text = format_trajectory(steps(40, 300), max_chars=3000)
    assert len(text) <= 3000
    assert text.startswith("Step 1\n")
    assert "Step 40\n" in text
    assert "Step 20\n" not in text
    assert "steps left out]" in text


def test_huge_fields_are_clipped() -> None:
    text = format_trajectory(steps(1, 100_000), max_chars=50_000)
    assert len(text) < 3_000
    assert "…" in text
