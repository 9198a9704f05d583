"""The peer's secrets at rest (spec §4.1, §4.3): the identity seed and X25519 keys, under a passphrase.

Format of a keyring blob (also the export file's core):

    plain:     0x00 || msgpack [seed, [[x25519_secret, created_at, expires_at], ...]]
    encrypted: 0x01 || salt (16) || opslimit (u32be) || memlimit (u32be) || SecretBox(key, that msgpack)
               key = Argon2id(passphrase, salt, opslimit, memlimit) -> 32 bytes

Argon2id and XSalsa20-Poly1305 (SecretBox) are libsodium's, through PyNaCl; nothing is invented.
A wrong passphrase fails the SecretBox tag and is reported as such, never as a corrupt file.

The session token is kept sealed too (``seal_token``): SecretBox under BLAKE2b-256(seed,
personalisation ``peerfed/session``), so it is exactly as safe at rest as the identity seed:
unreadable without the passphrase when there is one, readable by whoever can read the
plaintext keyring when there is none (spec §12).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from peerfed.protocol import EncryptionSecret, Identity, crypto, pack, unpack
from peerfed.protocol.errors import LocalError, PeerfedError

__all__ = [
    "Keyring",
    "KeyringError",
    "WrongPassphrase",
    "is_locked",
    "lock",
    "open_blob",
    "open_secret",
    "open_token",
    "seal_blob",
    "seal_secret",
    "seal_token",
    "unlock",
]

_PLAIN = 0
_SEALED = 1
OPS = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEM = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE


class KeyringError(LocalError):
    code = "local.keyring"


class WrongPassphrase(KeyringError):
    code = "local.passphrase"


@dataclass
class Keyring:
    identity: Identity
    encryption: list[tuple[EncryptionSecret, int, int]] = field(default_factory=list)

    @property
    def current(self) -> tuple[EncryptionSecret, int, int]:
        return max(self.encryption, key=lambda item: item[1])

    def secrets(self) -> list[EncryptionSecret]:
        return [secret for secret, _, _ in self.encryption]

    def to_bytes(self) -> bytes:
        return pack([self.identity.seed, [[s.secret, start, end] for s, start, end in self.encryption]])

    @classmethod
    def from_bytes(cls, data: bytes) -> Keyring:
        try:
            value: Any = unpack(data)
            seed, keys = value
            return cls(Identity(seed), [(EncryptionSecret(k[0]), int(k[1]), int(k[2])) for k in keys])
        except (PeerfedError, ValueError, TypeError, IndexError) as exc:
            raise KeyringError("the keyring is damaged") from exc


def _key(passphrase: str, salt: bytes, ops: int, mem: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(32, passphrase.encode("utf-8"), salt, opslimit=ops, memlimit=mem)


def seal_blob(data: bytes, passphrase: str | None) -> bytes:
    """``data`` as stored: encrypted under the passphrase when one is given."""
    if not passphrase:
        return bytes([_PLAIN]) + data
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    box = nacl.secret.SecretBox(_key(passphrase, salt, OPS, MEM))
    return bytes([_SEALED]) + salt + OPS.to_bytes(4, "big") + MEM.to_bytes(4, "big") + bytes(box.encrypt(data))


def open_blob(blob: bytes, passphrase: str | None) -> bytes:
    """Raises WrongPassphrase (missing or wrong) or KeyringError (damaged)."""
    if not blob:
        raise KeyringError("empty")
    if blob[0] == _PLAIN:
        return blob[1:]
    if blob[0] != _SEALED or len(blob) < 1 + 16 + 8 + 40:
        raise KeyringError("damaged, or made by a newer version")
    if not passphrase:
        raise WrongPassphrase("this is protected by a passphrase; set PEERFED_PASSPHRASE or type it")
    salt, ops, mem = blob[1:17], int.from_bytes(blob[17:21], "big"), int.from_bytes(blob[21:25], "big")
    if ops > 16 or mem > 2**31:
        raise KeyringError("it asks for unreasonable Argon2id costs")
    try:
        return bytes(nacl.secret.SecretBox(_key(passphrase, salt, ops, mem)).decrypt(blob[25:]))
    except nacl.exceptions.CryptoError as exc:
        raise WrongPassphrase("wrong passphrase") from exc


def lock(keyring: Keyring, passphrase: str | None) -> bytes:
    """The keyring as bytes to store: encrypted when a passphrase is given."""
    return seal_blob(keyring.to_bytes(), passphrase)


def is_locked(blob: bytes) -> bool:
    return bool(blob) and blob[0] == _SEALED


def unlock(blob: bytes, passphrase: str | None) -> Keyring:
    """Raises WrongPassphrase (missing or wrong) or KeyringError (damaged)."""
    return Keyring.from_bytes(open_blob(blob, passphrase))


def _token_box(keyring: Keyring) -> nacl.secret.SecretBox:
    return nacl.secret.SecretBox(crypto.blake2b_256(keyring.identity.seed, crypto.Person.SESSION))


def seal_token(keyring: Keyring, token: str | None) -> bytes | None:
    """The session token as stored: sealed under a key only the (unlocked) seed gives."""
    if token is None:
        return None
    return bytes(_token_box(keyring).encrypt(token.encode("utf-8")))


def open_token(keyring: Keyring, stored: object) -> str | None:
    """The session token back, or None if there is none or it cannot be opened (then sign in again).

    A plain text token from an older database is returned as it is; the caller seals it again.
    """
    if isinstance(stored, str):
        return stored
    if not isinstance(stored, bytes):
        return None
    try:
        return bytes(_token_box(keyring).decrypt(stored)).decode("utf-8")
    except (nacl.exceptions.CryptoError, UnicodeDecodeError, ValueError):
        return None


def seal_secret(keyring: Keyring, data: bytes) -> bytes:
    """Other secrets at rest (pre-key secrets, spec §14.1), sealed as the session token is."""
    return bytes(_token_box(keyring).encrypt(data))


def open_secret(keyring: Keyring, stored: object) -> bytes | None:
    """What ``seal_secret`` sealed, or None if nothing is stored or it cannot be opened."""
    if not isinstance(stored, bytes):
        return None
    try:
        return bytes(_token_box(keyring).decrypt(stored))
    except (nacl.exceptions.CryptoError, ValueError):
        return None
