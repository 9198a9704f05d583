"""The conversation history sealed at rest (spec §9.6, R-9.6-2).

Every stored copy of what two peers wrote to each other (a connection's signed messages, and the
state machine's value, which holds the terms) is kept in the device's database as
``SecretBox(key, bytes)`` with ``key = BLAKE2b-256(seed, "peerfed/history")``: the composition the
session token and the pre-key secrets use (``client.keyring``), under its own personalisation.
The seed is sealed under the passphrase when there is one, so a locked device's database gives
none of this text; without a passphrase it protects nothing, and the spec says so (§12).
"""

from __future__ import annotations

import nacl.exceptions
import nacl.secret

from peerfed.protocol import crypto

from .errors import ClientError

__all__ = ["HistoryBox", "history_key"]


def history_key(seed: bytes) -> bytes:
    """The 32-byte key the history of the identity with this Ed25519 ``seed`` is sealed under."""
    return crypto.blake2b_256(seed, crypto.Person.HISTORY)


class HistoryBox:
    """Seals and opens stored history; XSalsa20-Poly1305 with a fresh random nonce each time."""

    def __init__(self, key: bytes) -> None:
        self._box = nacl.secret.SecretBox(key)

    def seal(self, data: bytes) -> bytes:
        """``data`` as stored: nonce (24) || tag (16) || ciphertext."""
        return bytes(self._box.encrypt(data))

    def open(self, stored: bytes) -> bytes:
        """What ``seal`` sealed. Raises ClientError (``local.damaged``) if it does not open: a
        damaged row, or one sealed under another identity's key."""
        try:
            return bytes(self._box.decrypt(stored))
        except (nacl.exceptions.CryptoError, ValueError) as exc:
            raise ClientError("a stored conversation does not open: the database is damaged", "local.damaged") from exc
