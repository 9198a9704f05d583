"""Tampering: any change to a signed or sealed object is refused, with the right code (STYLE habit 12).

A signed object is ``version (1) || author (32) || signature (64) || payload``: the signature
covers everything after the version byte, so a flip at index 0 is an unsupported version and
any other flip is a bad signature. A sealed message is the msgpack array
``[1, mailbox, hour, payload]`` with ``payload`` last, so the payload occupies the final
``len(payload)`` bytes of the raw message:

    payload = scheme (1) || recipient key (32) || ephemeral (32) || nonce (24) || ciphertext+tag
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from peerfed.protocol import (
    Context,
    End,
    Envelope,
    Format,
    Kind,
    Listing,
    Message,
    RemoteError,
    Timing,
    open_sealed,
    open_signed,
    pack,
    seal,
    sign,
)
from peerfed.protocol.envelope import HEADER_BYTES
from peerfed.protocol.sealing import HOUR, Sealed

from .test_roundtrip import (
    IDENTITIES,
    NOW,
    PEERS,
    SECRET_OF,
    SECRETS,
    recipient_of,
    sealed_messages,
    signed,
)

SEALED_CODES = {
    "encoding.malformed",
    "encoding.non_canonical",
    "encoding.trailing_bytes",
    "encoding.forbidden_type",
    "encoding.too_deep",
    "schema.invalid",
    "version.unsupported",
    "seal.decrypt_failed",
    "seal.wrong_recipient",
    "size.too_large",
}
SCHEME_AT = 0
RECIPIENT_KEY = range(1, 33)
AEAD_REGION_FROM = 33  # ephemeral key, nonce, ciphertext and tag: everything the AEAD checks


def flip(data: bytes, index: int, mask: int) -> bytes:
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]


def code_of(action: Any) -> str:
    with pytest.raises(RemoteError) as info:
        action()
    return info.value.code


def open_as_recipient(raw: bytes, inner: Envelope, now: int) -> Any:
    return open_sealed(raw, recipient=recipient_of(inner), secrets=list(SECRETS), now=now)


def expected_signed_code(index: int) -> str:
    return "version.unsupported" if index == 0 else "signature.invalid"


def expected_sealed_code(sealed: Sealed, index: int) -> str | None:
    """The exact code a flip at ``index`` must give, or None where only the family is fixed."""
    start = len(sealed.raw) - len(sealed.payload)
    if index >= start:
        offset = index - start
        if offset == SCHEME_AT:
            return "version.unsupported"
        if offset in RECIPIENT_KEY:
            return "seal.wrong_recipient"
        return "seal.decrypt_failed"
    # [fixarray(4), 1, bin8, 32, mailbox...]: a flipped mailbox names a peer we are not.
    if 4 <= index < 36:
        return "seal.wrong_recipient"
    return None


# --- signed objects -----------------------------------------------------------------------


@given(signed(), st.data())
def test_flipping_any_byte_of_a_signed_object_is_refused(case: tuple[Envelope, int], data: st.DataObject) -> None:
    env, now = case
    index = data.draw(st.integers(0, len(env.raw) - 1), label="index")
    mask = data.draw(st.integers(1, 255), label="mask")
    tampered = flip(env.raw, index, mask)
    assert code_of(lambda: open_signed(tampered, context=env.context, now=now)) == expected_signed_code(index)


@given(signed(), st.data())
def test_truncating_a_signed_object_by_any_amount_is_refused(case: tuple[Envelope, int], data: st.DataObject) -> None:
    env, now = case
    length = data.draw(st.integers(0, len(env.raw) - 1), label="length")
    code = code_of(lambda: open_signed(env.raw[:length], context=env.context, now=now))
    assert code == ("encoding.malformed" if length <= HEADER_BYTES else "signature.invalid")


@given(signed(), st.binary(min_size=1, max_size=8))
def test_appending_bytes_to_a_signed_object_is_refused(case: tuple[Envelope, int], extra: bytes) -> None:
    env, now = case
    assert code_of(lambda: open_signed(env.raw + extra, context=env.context, now=now)) == "signature.invalid"


@given(signed(), st.sampled_from(Context))
def test_a_signed_object_does_not_verify_under_another_context(case: tuple[Envelope, int], context: Context) -> None:
    env, now = case
    if context is env.context:
        assert open_signed(env.raw, context=context, now=now) == env
    else:
        assert code_of(lambda: open_signed(env.raw, context=context, now=now)) == "signature.invalid"


def test_every_single_byte_flip_of_one_listing_is_refused() -> None:
    listing = Listing(Kind.OFFER, ("grief",), ("es", "en"), (Format.TEXT, Format.VOICE), Timing.SOON, "Puedo escuchar.")
    env = sign(IDENTITIES[0], listing, created_at=NOW, expires_at=NOW + 7 * 86_400)
    for index in range(len(env.raw)):
        for mask in (0x01, 0x80, 0xFF):
            tampered = flip(env.raw, index, mask)
            code = code_of(lambda t=tampered: open_signed(t, context=Context.ENVELOPE, now=NOW))
            assert code == expected_signed_code(index), (index, mask)


# --- sealed messages ----------------------------------------------------------------------


@given(sealed_messages(), st.data())
def test_flipping_any_byte_of_a_sealed_message_is_refused(
    case: tuple[Envelope, Sealed, int], data: st.DataObject
) -> None:
    inner, sealed, now = case
    index = data.draw(st.integers(0, len(sealed.raw) - 1), label="index")
    mask = data.draw(st.integers(1, 255), label="mask")
    code = code_of(lambda: open_as_recipient(flip(sealed.raw, index, mask), inner, now))
    assert code in SEALED_CODES
    expected = expected_sealed_code(sealed, index)
    if expected is not None:
        assert code == expected


@given(sealed_messages(), st.data())
def test_flipping_any_byte_of_the_aead_region_fails_decryption(
    case: tuple[Envelope, Sealed, int], data: st.DataObject
) -> None:
    inner, sealed, now = case
    start = len(sealed.raw) - len(sealed.payload) + AEAD_REGION_FROM
    index = data.draw(st.integers(start, len(sealed.raw) - 1), label="index")
    mask = data.draw(st.integers(1, 255), label="mask")
    code = code_of(lambda: open_as_recipient(flip(sealed.raw, index, mask), inner, now))
    assert code == "seal.decrypt_failed"


@given(sealed_messages(), st.data())
def test_truncating_a_sealed_message_by_any_amount_is_refused(
    case: tuple[Envelope, Sealed, int], data: st.DataObject
) -> None:
    inner, sealed, now = case
    length = data.draw(st.integers(0, len(sealed.raw) - 1), label="length")
    assert code_of(lambda: open_as_recipient(sealed.raw[:length], inner, now)) == "encoding.malformed"


@given(sealed_messages(), st.binary(min_size=1, max_size=8))
def test_appending_bytes_to_a_sealed_message_is_refused(case: tuple[Envelope, Sealed, int], extra: bytes) -> None:
    inner, sealed, now = case
    assert code_of(lambda: open_as_recipient(sealed.raw + extra, inner, now)) == "encoding.trailing_bytes"


@given(sealed_messages(), st.integers(-1000, 1000).filter(bool))
def test_moving_the_payload_to_another_hour_fails_decryption(case: tuple[Envelope, Sealed, int], hours: int) -> None:
    inner, sealed, now = case
    hour = max(0, sealed.hour + hours * HOUR)
    if hour == sealed.hour:
        hour += HOUR
    moved = pack([1, bytes(sealed.mailbox), hour, sealed.payload])
    assert code_of(lambda: open_as_recipient(moved, inner, now)) == "seal.decrypt_failed"


@given(sealed_messages(), st.sampled_from(PEERS))
def test_moving_the_payload_to_another_mailbox_fails_decryption(case: tuple[Envelope, Sealed, int], other: Any) -> None:
    _, sealed, now = case
    assume(other != sealed.mailbox)
    # The other mailbox's owner holds every key, including the one it was sealed to.
    moved = pack([1, bytes(other), sealed.hour, sealed.payload])
    code = code_of(lambda: open_sealed(moved, recipient=other, secrets=list(SECRETS), now=now))
    assert code == "seal.decrypt_failed"


def test_a_sealed_message_is_refused_by_every_other_peer() -> None:
    inner = sign(IDENTITIES[0], End(PEERS[1], bytes(16)), created_at=NOW, expires_at=NOW + 86_400)
    sealed = seal(inner, SECRET_OF[PEERS[1]].public)
    for peer in (PEERS[0], PEERS[2]):
        code = code_of(lambda p=peer: open_sealed(sealed.raw, recipient=p, secrets=list(SECRETS), now=NOW))
        assert code == "seal.wrong_recipient"
    # The right mailbox, but without the key it was sealed to.
    others = [s for s in SECRETS if s != SECRET_OF[PEERS[1]]]
    code = code_of(lambda: open_sealed(sealed.raw, recipient=PEERS[1], secrets=others, now=NOW))
    assert code == "seal.wrong_recipient"


def test_every_single_byte_flip_of_one_sealed_message_is_refused() -> None:
    body = Message(PEERS[1], bytes(range(16)), 1, "Hola, ¿cómo estás?")
    inner = sign(IDENTITIES[0], body, created_at=NOW, expires_at=NOW + 86_400)
    sealed = seal(inner, SECRET_OF[PEERS[1]].public, ephemeral=bytes([7]) * 32, nonce=bytes([9]) * 24)
    seen: set[str] = set()
    for index in range(len(sealed.raw)):
        for mask in (0x01, 0x80, 0xFF):
            code = code_of(lambda i=index, m=mask: open_as_recipient(flip(sealed.raw, i, m), inner, NOW))
            assert code in SEALED_CODES, (index, mask, code)
            expected = expected_sealed_code(sealed, index)
            assert expected is None or code == expected, (index, mask, code)
            seen.add(code)
    # The sweep reaches each layer: routing, version, recipient and the AEAD.
    assert {
        "encoding.malformed",
        "version.unsupported",
        "seal.wrong_recipient",
        "seal.decrypt_failed",
    } <= seen
