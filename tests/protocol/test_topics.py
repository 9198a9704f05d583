"""Topic search by words (spec §6.4): properties of the one definition node and client share."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerfed.protocol import RequestError
from peerfed.protocol.topics import (
    MAX_QUERY_WORDS,
    SEPARATOR_CATEGORIES,
    fold,
    listing_matches,
    query_words,
    topic_matches,
    words,
)

texts = st.text(max_size=60)
# Words as a person might type them: letters of several scripts, marks, digits and emoji.
word_chars = st.characters(categories=["Lu", "Ll", "Lo", "Mn", "Nd", "So"])
plain_words = st.text(word_chars, min_size=1, max_size=8)
separators = st.sampled_from([" ", "-", ",", "!", "\u00a0", "\t", "+", "/", "\u2019", "_"])


@given(texts)
def test_no_word_is_empty_or_holds_a_separator_and_words_are_already_folded(text: str) -> None:
    for word in words(text):
        assert word
        assert all(unicodedata.category(char) not in SEPARATOR_CATEGORIES for char in word)
        assert fold(word) == word


@given(texts)
def test_splitting_is_stable_under_case_and_refolding(text: str) -> None:
    assert words(text) == words(fold(text)) == words(text.upper().casefold())


@given(st.lists(plain_words, min_size=1, max_size=6), separators)
def test_a_topic_matches_each_of_its_words_and_all_of_them_in_any_order(found: list[str], sep: str) -> None:
    topic = sep.join(found)
    own = words(topic)
    assert own == tuple(fold(word) for word in found)
    for word in found:
        (query,) = query_words([word])
        assert topic_matches(topic, query)
    if len(set(own)) <= MAX_QUERY_WORDS:
        (everything,) = query_words([" ".join(reversed(found))])
        assert topic_matches(topic, everything)


@given(plain_words, plain_words)
def test_a_word_matches_only_whole_never_as_a_prefix(word: str, extra: str) -> None:
    (query,) = query_words([word])
    assert not topic_matches(word + extra, query)
    assert topic_matches(f"{extra} {word}", query)


def test_panic_finds_panic_attacks_but_pan_does_not() -> None:
    assert topic_matches("panic attacks", query_words(["panic"])[0])
    assert not topic_matches("panic attacks", query_words(["pan"])[0])
    assert listing_matches(["Panic attacks", "sleep"], query_words(["PANIC", "sleep"]))
    assert not listing_matches(["Panic attacks", "sleep"], query_words(["panic sleep"]))


@pytest.mark.parametrize("queries", [[""], [" \t\n"], ["—!?"], ["ok", "..."], [" ".join("abcdefghi")]])
def test_a_query_without_words_or_with_too_many_is_refused(queries: list[str]) -> None:
    with pytest.raises(RequestError) as info:
        query_words(queries)
    assert info.value.code == "request.invalid"


@given(st.lists(texts, max_size=4))
def test_a_query_is_either_parsed_within_bounds_or_refused_request_invalid(queries: list[str]) -> None:
    try:
        parsed = query_words(queries)
    except RequestError as exc:
        assert exc.code == "request.invalid"
        return
    assert all(parsed) and sum(len(q) for q in parsed) <= MAX_QUERY_WORDS
