"""User text to a safe FTS5 query.

Questions and ``rlm memory search`` arguments are text, not FTS5 syntax: ``NEAR(``, ``"``, ``*``,
``OR``, ``title:`` and parentheses must neither be interpreted nor raise. So the text is cut into
word tokens, each one quoted as a phrase, and the phrases are joined with ``OR``: BM25 then ranks
documents by how many of the rarer words they contain.
"""

from __future__ import annotations

import re

__all__ = ["MAX_TERMS", "fts_query"]

MAX_TERMS = 32
"""Longer questions keep their first 32 distinct terms: more adds latency, not precision."""

_WORD = re.compile(r"\w+")

# Words that match nearly every memory: they cost time and barely move BM25.
_STOPWORD_TEXT = (
    "a about all an and any are as at be by can do does for from has have how i in is it its me "
    "my of on or our should that the their them then there these this those to was we were what "
    "when where which who whom why will with you your"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def fts_query(text: str) -> str | None:
    """The FTS5 MATCH expression for ``text``, or None when it holds no word at all.

    Stopwords are dropped unless nothing else is left, so "what is it" still searches.
    """
    words = list(dict.fromkeys(_WORD.findall(text.casefold())))
    kept = [word for word in words if word not in _STOPWORDS] or words
    if not kept:
        return None
    return " OR ".join('"' + word.replace('"', '""') + '"' for word in kept[:MAX_TERMS])
