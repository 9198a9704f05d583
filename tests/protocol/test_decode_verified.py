"""Decoding what this program verified before it stored it, and verifying it again (spec §5.5)."""

from __future__ import annotations

import pytest

from peerfed.protocol import Context, Identity, Message, RemoteError, open_signed, sign, verify_kept
from peerfed.protocol.envelope import decode_verified
from peerfed.protocol.listings import DAY

ANA = Identity(bytes(range(32)))
BEN = Identity(bytes(range(1, 33))).peer_id


def test_it_gives_what_open_signed_gave_even_after_expiry() -> None:
    env = sign(ANA, Message(BEN, bytes(16), 1, "hello"), created_at=1_000, expires_at=1_000 + DAY)
    opened = open_signed(env.raw, context=Context.SEALED, now=1_000)
    again = decode_verified(env.raw, context=Context.SEALED)
    assert again == opened
    assert decode_verified(env.raw, context=Context.SEALED).id == env.id  # long after it expired, still readable


@pytest.mark.parametrize("raw", [b"", b"\x01" * 10, bytes([9]) + bytes(200)])
def test_bytes_that_are_not_a_signed_object_raise_the_remote_family(raw: bytes) -> None:
    with pytest.raises(RemoteError):
        decode_verified(raw, context=Context.SEALED)


def test_a_public_object_is_not_read_as_a_sealed_one() -> None:
    env = sign(ANA, Message(BEN, bytes(16), 1, "hello"), created_at=1_000, expires_at=1_000 + DAY)
    with pytest.raises(RemoteError) as caught:
        decode_verified(env.raw, context=Context.ENVELOPE)
    assert caught.value.code == "schema.unknown_type"


def test_a_kept_object_is_verified_again_without_the_clock() -> None:
    """A disclosed message (spec §13.5): the signature still decides after expiry; the clock does not."""
    env = sign(ANA, Message(BEN, bytes(16), 1, "hello"), created_at=1_000, expires_at=1_000 + DAY)
    with pytest.raises(RemoteError) as expired:
        open_signed(env.raw, context=Context.SEALED, now=1_000 + 2 * DAY)
    assert expired.value.code == "time.expired"
    assert verify_kept(env.raw, context=Context.SEALED) == open_signed(env.raw, context=Context.SEALED, now=1_000)
    altered = env.raw.replace(b"hello", b"hellp")
    with pytest.raises(RemoteError) as forged:
        verify_kept(altered, context=Context.SEALED)
    assert forged.value.code == "signature.invalid"
