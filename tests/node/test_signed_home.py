"""A key bundle's signed home (peerfed/node/directory.py, spec §13.7 Home): remembered signature
checks give the same answer as opening the bundle afresh, at every clock reading, for good
bundles, tampered ones and objects that are not bundles."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerfed.node.directory import BUNDLE_HOMES, _bundle_home, signed_home
from peerfed.protocol import (
    CLOCK_SKEW,
    Context,
    EncryptionSecret,
    Identity,
    KeyBundle,
    RemoteError,
    open_signed,
    sign,
)
from peerfed.protocol.listings import Format, Kind, Listing, Timing

pytestmark = pytest.mark.one_backend("it starts no node: signed_home reads no database")

NOW = 1_700_000_000
DAY = 86_400


def _fresh(raw: bytes, now: int) -> str | None:
    """What the node answered before anything was remembered: open the bundle at ``now``."""
    try:
        env = open_signed(raw, context=Context.KEY_BUNDLE, now=now)
    except RemoteError:
        return None
    return env.body.home if isinstance(env.body, KeyBundle) else None


def _bundle(home: str | None, created_at: int = NOW, life: int = DAY) -> bytes:
    identity = Identity(os.urandom(32))
    body = KeyBundle(EncryptionSecret(os.urandom(32)).public, home=home)
    return sign(identity, body, created_at=created_at, expires_at=created_at + life).raw


@settings(max_examples=60)
@given(
    home=st.sampled_from([None, "https://a.example", "https://b.example/node"]),
    offsets=st.lists(st.integers(-2 * DAY, 2 * DAY), min_size=1, max_size=6),
)
def test_the_signed_home_is_what_opening_the_bundle_afresh_says_at_every_clock(
    home: str | None, offsets: list[int]
) -> None:
    raw = _bundle(home)
    edges = [-CLOCK_SKEW - 1, -CLOCK_SKEW, 0, DAY - 1, DAY, DAY + 1]
    for offset in [*offsets, *edges, *offsets]:  # asked again once remembered, in any order
        assert signed_home(raw, NOW + offset) == _fresh(raw, NOW + offset)


def test_a_bundle_lives_exactly_its_signed_life_though_its_checks_are_remembered() -> None:
    raw = _bundle("https://a.example")
    assert signed_home(raw, NOW) == "https://a.example"
    assert signed_home(raw, NOW + DAY - 1) == "https://a.example"
    assert signed_home(raw, NOW + DAY) is None  # expired, though it verified a moment ago
    assert signed_home(raw, NOW - CLOCK_SKEW - 1) is None  # made too far in the future for that clock
    assert signed_home(raw, NOW) == "https://a.example"


def test_a_tampered_bundle_or_another_object_names_no_home() -> None:
    raw = _bundle("https://a.example")
    assert signed_home(raw, NOW) == "https://a.example"
    for index in (1, 40, len(raw) - 1):  # the author, the signature, the body
        tampered = raw[:index] + bytes([raw[index] ^ 0x01]) + raw[index + 1 :]
        assert signed_home(tampered, NOW) is None
        assert signed_home(tampered, NOW) is None
    listing = Listing(Kind.OFFER, ("grief",), ("en",), (Format.TEXT,), Timing.SOON, "I can listen.")
    other = sign(Identity(os.urandom(32)), listing, created_at=NOW, expires_at=NOW + DAY).raw
    assert signed_home(other, NOW) is None


def test_a_flood_of_bundles_stays_within_its_bound_and_answers_stay_right() -> None:
    first = _bundle("https://a.example")
    assert signed_home(first, NOW) == "https://a.example"
    for _ in range(BUNDLE_HOMES + 50):
        _bundle_home(os.urandom(200))  # a stranger's junk: refused, remembered, pushed out in turn
    assert _bundle_home.cache_info().currsize == BUNDLE_HOMES
    assert signed_home(first, NOW) == "https://a.example"  # forgotten, checked again, same answer
