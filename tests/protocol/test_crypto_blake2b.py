"""BLAKE2b from hashlib is libsodium's crypto_generichash with salt and personalisation (spec §3.1).

The protocol computes BLAKE2b with the standard library because it costs far less per call; these
checks hold it to the very digests libsodium gives for every personalisation, size and key.
"""

from __future__ import annotations

import nacl.bindings as sodium
from hypothesis import given
from hypothesis import strategies as st

from peerfed.protocol import crypto


def _sodium(data: bytes, person: bytes, size: int, key: bytes) -> bytes:
    return bytes(
        sodium.crypto_generichash_blake2b_salt_personal(data, digest_size=size, key=key, salt=bytes(16), person=person)
    )


@given(data=st.binary(max_size=4096), person=st.sampled_from(list(crypto.Person)))
def test_unkeyed_digest_is_libsodiums(data: bytes, person: crypto.Person) -> None:
    assert crypto.blake2b_256(data, person) == _sodium(data, person, 32, b"")


@given(
    data=st.binary(max_size=1024),
    key=st.binary(min_size=16, max_size=64),
    size=st.integers(min_value=16, max_value=64),
    person=st.sampled_from(list(crypto.Person)),
)
def test_keyed_digest_is_libsodiums(data: bytes, key: bytes, size: int, person: crypto.Person) -> None:
    assert crypto.blake2b_keyed(data, key, person, size) == _sodium(data, person, size, key)


def test_personalisation_changes_the_digest() -> None:
    digests = {crypto.blake2b_256(b"same input", person) for person in crypto.Person}
    assert len(digests) == len(crypto.Person)
