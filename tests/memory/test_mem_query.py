"""Hostile query text: FTS5 syntax in a question is searched as words, never interpreted."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlm_core.memory import MemoryDraft, SQLiteMemoryStore
from rlm_core.memory.query import MAX_TERMS, fts_query

HOSTILE = [
    '"',
    '""',
    'say "hello',
    "NEAR(a b)",
    "NEAR(agents properties, 2)",
    "title:x",
    "title:agents",
    "{title content}:agents",
    "-title:agents",
    "*",
    "agent*",
    "^agents",
    "AND OR NOT",
    "agents AND",
    "NOT agents",
    "OR",
    "(",
    "((agents)",
    "agents))",
    "a + b",
    ":",
    "'; DROP TABLE memories; --",
    "\x00",
    "",
    "   ",
    "日本語 のクエリ",
    "prov:Activity ↔ prov:Agent",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_returns_results_or_nothing(
    corpus_store: SQLiteMemoryStore, text: str
) -> None:
    items = corpus_store.retrieve(text, 5, ontology="prov", tags=[text])
    assert items == []  # no memory carries such a tag
    items = corpus_store.retrieve(text, 5)
    assert all(item.score >= 0 for item in items)


def test_operators_are_searched_as_words(corpus_store: SQLiteMemoryStore) -> None:
    """``title:agents`` finds memories about agents in any column, like the plain words would."""
    plain = corpus_store.retrieve("title agents", 10)
    assert corpus_store.retrieve("title:agents", 10) == plain
    assert corpus_store.retrieve("NEAR(agents)", 10) == corpus_store.retrieve("near agents", 10)
    assert corpus_store.retrieve("NOT agents", 10)  # NOT is a word here, not an exclusion


def test_a_memory_containing_operators_is_found_by_them(store: SQLiteMemoryStore) -> None:
    store.add_memories(
        [MemoryDraft("Use NEAR and OR", "", 'FTS5 queries: NEAR(a b) OR "x" title:y')],
        run_id=None,
        scope=None,
    )
    assert [item.title for item in store.retrieve('NEAR OR "x"', 5)] == ["Use NEAR and OR"]


def test_the_query_quotes_every_word_and_drops_stopwords() -> None:
    assert fts_query('What links "prov:Activity" to agents?') == (
        '"links" OR "prov" OR "activity" OR "agents"'
    )
    assert fts_query("what is it") == '"what" OR "is" OR "it"'
    assert fts_query("*** (( :") is None
    long = " ".join(f"word{i}" for i in range(100))
    assert fts_query(long) is not None
    assert fts_query(long).count(" OR ") == MAX_TERMS - 1  # type: ignore[union-attr]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(
        alphabet=st.sampled_from(list("abc xyz\"*():^-+{}NEARORNOTAND'\\,.é")), max_size=40
    )
)
def test_no_text_raises(corpus_store: SQLiteMemoryStore, text: str) -> None:
    corpus_store.retrieve(text, 3, ontology="prov")


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=60))
def test_no_unicode_text_raises(corpus_store: SQLiteMemoryStore, text: str) -> None:
    corpus_store.retrieve(text, 3)
