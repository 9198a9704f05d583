"""Proof of work for joining a node and for first contact (spec §13.4): zero bits, checking, solving.

A node may ask a peer that is not yet a member for a nonce such that
BLAKE2b-256(challenge || nonce, personalisation ``peerfed/work/v1``) begins with ``bits`` zero
bits. Pure functions: the solver is a plain loop, its cost the caller's choice of ``bits``.
"""

from __future__ import annotations

import hashlib
import re

from .crypto import Person, blake2b_256
from .errors import RequestError

__all__ = ["MAX_NONCE_BYTES", "check_work", "solve_work", "work_bits"]

MAX_NONCE_BYTES = 32
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")


def work_bits(challenge: bytes, nonce: bytes) -> int:
    """Leading zero bits of BLAKE2b-256(challenge || nonce), counted from the first byte's top bit."""
    digest = blake2b_256(challenge + nonce, Person.WORK)
    return 256 - int.from_bytes(digest, "big").bit_length()


def check_work(challenge: bytes, work: str | None, bits: int) -> None:
    """Raise RequestError ``auth.work`` unless ``work`` is 1-32 bytes of hex (digits only: no spaces,
    which ``bytes.fromhex`` would skip) with enough zero bits."""
    text = work or ""
    nonce = bytes.fromhex(text) if _HEX.fullmatch(text) else b""
    if not 1 <= len(nonce) <= MAX_NONCE_BYTES or work_bits(challenge, nonce) < bits:
        raise RequestError(f"this node asks new peers for {bits} bits of proof of work (X-Peerfed-Work)", "auth.work")


def solve_work(challenge: bytes, bits: int) -> bytes:
    """The first 8-byte big-endian counter whose digest has ``bits`` zero bits (about 2**bits tries).

    The standard library's BLAKE2b gives the same digests as libsodium's (spec §3.1); hashing the
    challenge once and copying that state for each try makes a try about eight times cheaper."""
    prefix = hashlib.blake2b(challenge, digest_size=32, person=bytes(Person.WORK))
    below = 1 << (256 - bits)
    counter = 0
    while True:
        nonce = counter.to_bytes(8, "big")
        attempt = prefix.copy()
        attempt.update(nonce)
        if int.from_bytes(attempt.digest(), "big") < below:
            return nonce
        counter += 1
