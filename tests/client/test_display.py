"""The pure parts of spec §9.5: display order, visible text, JSON that spells hidden characters, backoff."""

from __future__ import annotations

import itertools
import json
import random
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerfed.client.display import HIDDEN_CATEGORIES, dumps, visible
from peerfed.client.inbox import RECONNECT_FIRST, RECONNECT_MOST, reconnect_delay
from peerfed.client.views import display_order
from peerfed.protocol import Envelope, Identity, Message, sign

pytestmark = pytest.mark.one_backend("no node: the client's display alone")

ANA, BEN = Identity(b"\x01" * 32), Identity(b"\x02" * 32)
CONNECTION = b"\x07" * 16


def _message(author: Identity, other: Identity, seq: int, at: int) -> tuple[Envelope, Message]:
    body = Message(other.peer_id, CONNECTION, seq, f"{seq} at {at}")
    return sign(author, body, created_at=at, expires_at=at + 3600), body


@given(
    st.lists(st.integers(0, 5), min_size=0, max_size=8),
    st.lists(st.integers(0, 5), min_size=0, max_size=8),
    st.randoms(use_true_random=False),
)
def test_display_order_is_the_same_whoever_holds_the_messages_and_in_what_order(
    ana_times: list[int], ben_times: list[int], shuffle: random.Random
) -> None:
    base = 1_800_000_000
    messages = [_message(ANA, BEN, seq, base + t) for seq, t in enumerate(sorted(ana_times), 1)]
    messages += [_message(BEN, ANA, seq, base + t) for seq, t in enumerate(sorted(ben_times), 1)]
    first = [env.id for env, _ in display_order(messages)]
    shuffle.shuffle(messages)
    assert [env.id for env, _ in display_order(messages)] == first
    assert sorted(first) == sorted(env.id for env, _ in messages)  # each once
    shown = display_order(messages)
    for author in (ANA, BEN):
        seqs = [body.seq for env, body in shown if env.author == author.peer_id]
        assert seqs == sorted(seqs)  # one author's messages by seq
    # Same second: the smaller peer id first (whichever author that is).
    for (a, _), (b, _) in itertools.pairwise(shown):
        if a.author != b.author and a.created_at == b.created_at:
            assert bytes(a.author) < bytes(b.author)


def test_a_later_seq_stays_after_an_earlier_one_even_with_an_earlier_time() -> None:
    # Ana's clock went back between her two messages: her seq still decides between them.
    first, second = _message(ANA, BEN, 1, 1_800_000_010), _message(ANA, BEN, 2, 1_800_000_000)
    other = _message(BEN, ANA, 1, 1_800_000_005)
    order = [(env.author, body.seq) for env, body in display_order([second, other, first])]
    assert order == [(BEN.peer_id, 1), (ANA.peer_id, 1), (ANA.peer_id, 2)]


@given(st.text().filter(lambda t: "\\" not in t))
def test_visible_leaves_no_hidden_character_and_loses_nothing(text: str) -> None:
    shown = visible(text)
    assert not any(unicodedata.category(c) in HIDDEN_CATEGORIES for c in shown)
    # The escapes are JSON's: read as a JSON string, the shown text is the text (no backslash in it).
    assert json.loads('"' + shown.replace('"', '\\"') + '"') == text


@given(
    st.recursive(
        st.text() | st.integers() | st.none(), lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)
    )
)
def test_dumps_reads_back_unchanged_with_nothing_hidden_raw(value: object) -> None:
    line = dumps(value)
    assert json.loads(line) == value
    assert not any(unicodedata.category(c) in HIDDEN_CATEGORIES for c in line)


def test_examples_of_what_is_made_visible() -> None:
    assert (
        visible("a\x1b[2Jb\r\n[me]\u202e\u200b\U000e0001é")
        == "a\\u001b[2Jb\\u000d\\u000a[me]\\u202e\\u200b\\udb40\\udc01é"
    )
    assert visible("Ana Álvarez, 日本語") == "Ana Álvarez, 日本語"


def test_reconnecting_waits_longer_each_time_up_to_a_bound() -> None:
    delays = [reconnect_delay(n) for n in range(40)]
    assert delays[0] == RECONNECT_FIRST and delays[1] == 2 * RECONNECT_FIRST
    assert delays == sorted(delays) and max(delays) == RECONNECT_MOST
