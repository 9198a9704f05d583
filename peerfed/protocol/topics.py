"""Searching topics by words: case folding, splitting into words, matching (spec §6.4).

One definition for the node that indexes and searches listings and for the client that checks
what a node answered: a topic and a query are folded (full Unicode case folding), split at every
separator code point, and a topic matches a query when it holds every word of the query, whole.
Pure functions; a query without words, or too many, raises RequestError (request.invalid).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

from .errors import RequestError

__all__ = [
    "MAX_QUERY_WORDS",
    "SEPARATOR_CATEGORIES",
    "fold",
    "listing_matches",
    "query_words",
    "topic_matches",
    "words",
]

# White space, controls, punctuation, and the symbols people type as punctuation (+ | $ ^).
# Other symbols (So: emoji, pictographs) and format characters stay inside words, so a topic
# written as an emoji can still be found by it.
SEPARATOR_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk"})
MAX_QUERY_WORDS = 8  # over all the queries of one search: each word is one index probe


def fold(text: str) -> str:
    """Unicode full case folding (CaseFolding.txt statuses C and F), no normalisation."""
    return text.casefold()


def words(text: str) -> tuple[str, ...]:
    """The words of a topic or a query, in order, repeats kept: ``text`` folded, then split at
    every separator (spec §6.4). Never raises; a text of separators only has no words."""
    found: list[str] = []
    run: list[str] = []
    for char in fold(text):
        if unicodedata.category(char) in SEPARATOR_CATEGORIES:
            if run:
                found.append("".join(run))
                run = []
        else:
            run.append(char)
    if run:
        found.append("".join(run))
    return tuple(found)


def query_words(queries: Sequence[str]) -> tuple[frozenset[str], ...]:
    """Each topic query's distinct words, for a search given ``queries`` (the ``topic`` filters).

    Raises RequestError (request.invalid) if a query has no word, or the queries together have
    more than MAX_QUERY_WORDS words (each query's repeats counted once).
    """
    parsed = tuple(frozenset(words(query)) for query in queries)
    if any(not query for query in parsed):
        raise RequestError("a topic search needs at least one word", "request.invalid")
    if sum(len(query) for query in parsed) > MAX_QUERY_WORDS:
        raise RequestError(f"a topic search has at most {MAX_QUERY_WORDS} words", "request.invalid")
    return parsed


def topic_matches(topic: str, query: Iterable[str]) -> bool:
    """Whether ``topic`` holds every word of ``query`` (already split by ``words``), each whole."""
    return set(query) <= set(words(topic))


def listing_matches(topics: Iterable[str], queries: Sequence[frozenset[str]]) -> bool:
    """Whether a listing with ``topics`` meets every query: each by at least one of its topics.

    ``queries`` come from ``query_words``; with none, every listing matches.
    """
    held = [set(words(topic)) for topic in topics]
    return all(any(query <= topic for topic in held) for query in queries)
