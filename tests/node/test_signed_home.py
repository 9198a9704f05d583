"""A key bundle's signed home (peerfed/node/homes.py, spec §13.7 Home): remembered signature
checks give the same answer as opening the bundle afresh, at every clock reading, for good
bundles, tampered ones and objects that are not bundles."""

from __future__ import annotations

import gc
import os
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerfed.node.homes import _BUNDLES, BUNDLE_HOMES, signed_home
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


def _bundle(home: str | None, created_at: int = NOW, life: int = DAY, seed: bytes | None = None) -> bytes:
    seed = os.urandom(32) if seed is None else seed
    identity = Identity(seed)
    body = KeyBundle(EncryptionSecret(bytes(reversed(seed))).public, home=home)
    return sign(identity, body, created_at=created_at, expires_at=created_at + life).raw


@settings(max_examples=60)
@given(
    home=st.sampled_from([None, "https://a.example", "https://b.example/node"]),
    offsets=st.lists(st.integers(-2 * DAY, 2 * DAY), min_size=1, max_size=6),
    seed=st.binary(min_size=32, max_size=32),
)
def test_the_signed_home_is_what_opening_the_bundle_afresh_says_at_every_clock(
    home: str | None, offsets: list[int], seed: bytes
) -> None:
    raw = _bundle(home, seed=seed)
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
        assert signed_home(os.urandom(200), NOW) is None  # a stranger's junk: refused, remembered, pushed out
    assert len(_BUNDLES) == BUNDLE_HOMES
    assert signed_home(first, NOW) == "https://a.example"  # forgotten, checked again, same answer


def test_large_junk_is_not_kept_in_memory() -> None:
    """A hostile node's answers of any size leave a 32-byte digest and a verdict behind, no more."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(40):
            assert signed_home(os.urandom(250_000), NOW) is None  # 10 MB of junk in all
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 100_000, held
    assert all(len(key) == 32 for key in _BUNDLES)


def test_only_bytes_are_remembered_so_a_view_cannot_stand_for_a_bundle() -> None:
    raw = _bundle("https://a.example")
    assert signed_home(memoryview(raw), NOW) is None  # type: ignore[arg-type]
    assert signed_home(bytearray(raw), NOW) is None  # type: ignore[arg-type]
    assert signed_home(raw, NOW) == "https://a.example"
    assert signed_home(memoryview(raw), NOW) is None  # type: ignore[arg-type]
