"""Identities and keys as value objects (spec §4).

A peer *is* an Ed25519 key pair: the public half, a ``PeerId``, names them everywhere.
X25519 encryption keys are separate and certified by the identity in a key bundle, so they
can rotate while the identity stays. Secrets never print: their reprs hide the bytes.
Hex and base32 appear only in the text forms at the edges.
"""

from __future__ import annotations

import base64
import hmac

from . import crypto
from .errors import InvalidValue, SchemaError

__all__ = ["EncryptionKey", "EncryptionSecret", "Identity", "PeerId"]

_PEER_PREFIX = "pf1"
_CHECKSUM_PERSON = crypto.Person.PEER_ID


class _PublicKey:
    """32 public bytes, compared in constant time, hashable, bytes() gives them back."""

    __slots__ = ("_raw",)
    _what = "key"

    def __init__(self, raw: bytes) -> None:
        if not isinstance(raw, bytes) or len(raw) != crypto.KEY_BYTES:
            raise InvalidValue(f"a {self._what} is exactly 32 bytes")
        self._raw = raw

    def __bytes__(self) -> bytes:
        return self._raw

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return hmac.compare_digest(self._raw, other._raw)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._raw))

    @property
    def hex(self) -> str:
        return self._raw.hex()


class PeerId(_PublicKey):
    """A peer's Ed25519 public identity key, with a checksummed text form (spec §4.2)."""

    __slots__ = ()
    _what = "peer id"

    @property
    def text(self) -> str:
        """``pf1`` then lowercase unpadded base32 of key || 4-byte checksum."""
        body = self._raw + _checksum(self._raw)
        return _PEER_PREFIX + base64.b32encode(body).decode("ascii").rstrip("=").lower()

    @classmethod
    def from_text(cls, text: str) -> PeerId:
        """Parse a peer id's text form; raises SchemaError if it is not one."""
        if not isinstance(text, str) or not text.isascii() or not text.startswith(_PEER_PREFIX) or len(text) != 61:
            raise SchemaError("a peer id is 'pf1' followed by 58 base32 characters (ASCII)")
        encoded = text[len(_PEER_PREFIX) :]
        try:
            body = base64.b32decode(encoded.upper() + "======")
        except ValueError as exc:
            raise SchemaError("a peer id is not valid base32") from exc
        raw, checksum = body[:32], body[32:]
        if not hmac.compare_digest(checksum, _checksum(raw)):
            raise SchemaError("the peer id's checksum does not match (a typo?)")
        try:
            crypto.check_ed25519_key(raw, "the peer id")
        except InvalidValue as exc:
            raise SchemaError(str(exc)) from exc
        peer = cls(raw)
        if peer.text != text.lower():
            raise SchemaError("a peer id's text form is not canonical")
        return peer

    def __repr__(self) -> str:
        return f"PeerId({self.text})"

    def __str__(self) -> str:
        return self.text


def _checksum(raw: bytes) -> bytes:
    return crypto.blake2b_256(_PEER_PREFIX.encode("ascii") + raw, _CHECKSUM_PERSON)[:4]


class EncryptionKey(_PublicKey):
    """A peer's public X25519 key, as published in its key bundle."""

    __slots__ = ()
    _what = "X25519 public key"

    def __repr__(self) -> str:
        return f"EncryptionKey({self.hex})"


class Identity:
    """A peer's secret identity: an Ed25519 seed. Signs; never prints its secret."""

    __slots__ = ("_peer_id", "_seed")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != 32:
            raise InvalidValue("an identity seed is exactly 32 bytes")
        self._seed = seed
        self._peer_id = PeerId(crypto.ed25519_public_from_seed(seed))

    @property
    def peer_id(self) -> PeerId:
        return self._peer_id

    @property
    def seed(self) -> bytes:
        """The secret seed, for storing at rest. Handle with care."""
        return self._seed

    def sign(self, message: bytes) -> bytes:
        return crypto.ed25519_sign(self._seed, message)

    def __repr__(self) -> str:
        return f"Identity({self._peer_id.text}, secret hidden)"


class EncryptionSecret:
    """A peer's secret X25519 key. Opens what was sealed to its public half."""

    __slots__ = ("_public", "_secret")

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) != 32:
            raise InvalidValue("an X25519 secret key is exactly 32 bytes")
        self._secret = secret
        self._public = EncryptionKey(crypto.x25519_public(secret))

    @property
    def public(self) -> EncryptionKey:
        return self._public

    @property
    def secret(self) -> bytes:
        return self._secret

    def shared(self, other: EncryptionKey) -> bytes:
        return crypto.x25519(self._secret, bytes(other))

    def __repr__(self) -> str:
        return f"EncryptionSecret(public={self._public.hex}, secret hidden)"
