"""Proof of work for joining (spec §13.4): what the solver finds, the checker takes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerfed.protocol import RequestError
from peerfed.protocol.crypto import Person, blake2b_256
from peerfed.protocol.work import check_work, solve_work, work_bits


@given(challenge=st.binary(min_size=32, max_size=32), bits=st.integers(min_value=0, max_value=10))
def test_a_solved_nonce_passes_and_has_the_bits(challenge: bytes, bits: int) -> None:
    nonce = solve_work(challenge, bits)
    assert work_bits(challenge, nonce) >= bits
    check_work(challenge, nonce.hex(), bits)
    check_work(challenge, nonce.hex().upper(), bits)  # hex of either case (§13.4)


def test_bits_are_counted_from_the_top_of_the_first_byte() -> None:
    challenge = bytes(32)
    for nonce in (bytes([n]) for n in range(256)):
        digest = blake2b_256(challenge + nonce, Person.WORK)
        bits = next((i for i in range(256) if digest[i // 8] >> (7 - i % 8) & 1), 256)
        assert work_bits(challenge, nonce) == bits


@pytest.mark.parametrize("work", [None, "", "zz", "00" * 33, "0"])
def test_a_malformed_header_is_auth_work(work: str | None) -> None:
    with pytest.raises(RequestError) as caught:
        check_work(bytes(32), work, 0)
    assert caught.value.code == "auth.work"


def test_too_few_bits_is_auth_work() -> None:
    challenge = bytes(range(32))
    weak = next(bytes([n]) for n in range(256) if work_bits(challenge, bytes([n])) == 0)
    with pytest.raises(RequestError) as caught:
        check_work(challenge, weak.hex(), 1)
    assert caught.value.code == "auth.work"
