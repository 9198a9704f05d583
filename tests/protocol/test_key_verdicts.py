"""A public key's check is remembered (peerfed/protocol/crypto.py, spec §3 and §4.1): the same
verdict as libsodium's every time, for good keys and for the bad ones in the vectors, and a
stranger's flood of keys neither grows the memory without bound nor changes anyone's verdict."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import nacl.bindings as sodium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerfed.protocol import Context, Identity, RemoteError, open_signed, sign
from peerfed.protocol.crypto import (
    KEY_VERDICTS,
    check_ed25519_key,
    ed25519_public_from_seed,
    ed25519_verify,
    prime_order_key,
)
from peerfed.protocol.errors import InvalidValue, SignatureError
from peerfed.protocol.listings import Format, Kind, Listing, Timing

VECTORS = Path(__file__).resolve().parents[2] / "spec" / "vectors" / "identity.json"
NOW = 1_700_000_000
BAD_FLAGS = {"SmallOrderKey", "MixedOrderKey", "NonCanonicalKey"}


def _vector_keys() -> tuple[list[bytes], list[bytes]]:
    """The keys inside the identity vectors' peer ids: (good, bad), bad being flagged as such."""
    good, bad = [], []
    for group in json.loads(VECTORS.read_text())["testGroups"]:
        for case in group["tests"]:
            text = case.get("text")
            if not isinstance(text, str) or not text.startswith("pf1") or len(text) != 61:
                continue
            if BAD_FLAGS & set(case.get("flags", [])):
                bad.append(base64.b32decode(text[3:].upper() + "======")[:32])
            elif case["result"] == "valid":
                good.append(base64.b32decode(text[3:].upper() + "======")[:32])
    return good, bad


VECTOR_GOOD, BAD = _vector_keys()
GOOD = VECTOR_GOOD + [ed25519_public_from_seed(bytes([seed]) * 32) for seed in (1, 2, 3)]


def _flood(count: int) -> None:
    for _ in range(count):
        prime_order_key(os.urandom(32))


def test_the_vectors_hold_good_and_bad_keys() -> None:
    assert len(VECTOR_GOOD) >= 1 and len(BAD) >= 4


@pytest.mark.parametrize("key", BAD)
def test_a_bad_key_is_refused_every_time_and_after_it_was_forgotten(key: bytes) -> None:
    for _ in range(3):
        with pytest.raises(InvalidValue):
            check_ed25519_key(key)
        with pytest.raises(SignatureError):
            ed25519_verify(key, b"message", bytes(64))
    _flood(KEY_VERDICTS + 10)  # pushed out by a stranger's keys
    with pytest.raises(InvalidValue):
        check_ed25519_key(key)


@pytest.mark.parametrize("key", GOOD)
def test_a_good_key_passes_every_time_and_after_it_was_forgotten(key: bytes) -> None:
    for _ in range(3):
        check_ed25519_key(key)
    _flood(KEY_VERDICTS + 10)
    check_ed25519_key(key)


@settings(max_examples=200)
@given(st.binary(min_size=32, max_size=32))
def test_the_remembered_verdict_is_libsodiums(key: bytes) -> None:
    expected = sodium.crypto_core_ed25519_is_valid_point(key)
    assert prime_order_key(key) is expected
    assert prime_order_key(key) is expected


def test_a_flood_of_strangers_keys_stays_within_its_bound() -> None:
    _flood(KEY_VERDICTS * 2)
    info = prime_order_key.cache_info()
    assert info.currsize == KEY_VERDICTS == info.maxsize


def test_a_members_listings_check_their_key_once_and_every_signature_still(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key is checked by libsodium once; each signature's R is checked every time, and a
    flipped byte is still refused."""
    member = Identity(os.urandom(32))
    key = bytes(member.peer_id)
    listing = Listing(Kind.OFFER, ("grief",), ("en",), (Format.TEXT,), Timing.SOON, "I can listen.")
    envs = [sign(member, listing, created_at=NOW + n, expires_at=NOW + 86_400) for n in range(5)]
    asked: list[bytes] = []
    real = sodium.crypto_core_ed25519_is_valid_point

    def counting(point: bytes) -> bool:
        asked.append(point)
        return bool(real(point))

    monkeypatch.setattr(sodium, "crypto_core_ed25519_is_valid_point", counting)
    prime_order_key.cache_clear()
    for env in envs:
        assert open_signed(env.raw, context=Context.ENVELOPE, now=NOW + 10) == env
    assert asked.count(key) == 1
    assert [r for r in asked if r != key] == [env.raw[33:65] for env in envs]  # each R, every time
    forged = envs[0].raw[:-1] + bytes([envs[0].raw[-1] ^ 1])
    with pytest.raises(RemoteError) as caught:
        open_signed(forged, context=Context.ENVELOPE, now=NOW + 10)
    assert caught.value.code == "signature.invalid"
