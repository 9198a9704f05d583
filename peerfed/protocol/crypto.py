"""The libsodium primitives peerfed composes (spec §3), and the only place nacl's errors are seen.

Nothing here invents cryptography: Ed25519 signatures, X25519, BLAKE2b and
XChaCha20-Poly1305-IETF all come from libsodium through PyNaCl. This module fixes how they
are called (domain separation, personalisation) and turns their failures into the
protocol's remote errors.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac

import nacl.bindings as sodium
import nacl.exceptions
import nacl.signing

from .errors import InvalidValue, SealError, SignatureError

__all__ = [
    "AEAD_KEY_BYTES",
    "AEAD_NONCE_BYTES",
    "AEAD_TAG_BYTES",
    "KEY_BYTES",
    "SIGNATURE_BYTES",
    "aead_decrypt",
    "aead_encrypt",
    "blake2b_256",
    "blake2b_keyed",
    "check_ed25519_key",
    "ed25519_public_from_seed",
    "ed25519_sign",
    "ed25519_verify",
    "equal",
    "prime_order_key",
    "Person",
    "personalisation",
    "x25519",
    "x25519_public",
]

KEY_BYTES = 32
SIGNATURE_BYTES = 64
AEAD_KEY_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_KEYBYTES
AEAD_NONCE_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
AEAD_TAG_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES


def personalisation(label: str) -> bytes:
    """A BLAKE2b personalisation: the ASCII label, zero-padded to 16 bytes (spec §3.1)."""
    raw = label.encode("ascii")
    if len(raw) > 16:
        raise InvalidValue(f"personalisation {label!r} is longer than 16 bytes")
    return raw + bytes(16 - len(raw))


class Person(bytes, enum.Enum):
    """Every BLAKE2b personalisation peerfed uses, in one table (spec §3.1); no label is used twice."""

    ID = personalisation("peerfed/id/v1")  # ids of signed objects (§5.2)
    PEER_ID = personalisation("peerfed/peer-id")  # the peer id checksum (§4.2)
    SEAL = personalisation("peerfed/seal/v1")  # the sealing key (§7.1)
    SEALED_ID = personalisation("peerfed/sealed")  # ids of sealed messages (§7.1)
    BODY = personalisation("peerfed/body/v1")  # the body hash of a node request (§13.3)
    WORK = personalisation("peerfed/work/v1")  # proof of work for joining (§13.4)
    ERASED = personalisation("peerfed/erased")  # erasure tombstones (§13.6)
    # Sealing scheme 2 (§14): the outer key, the agreement, and the ratchet's two keyed chains.
    SEAL_V2 = personalisation("peerfed/seal/v2")
    AGREE = personalisation("peerfed/agree/v2")
    ROOT = personalisation("peerfed/root/v2")
    CHAIN = personalisation("peerfed/chain/v2")
    # A node's own, never sent: its digests only index the node's database (§13.9).
    TOKEN = personalisation("peerfed/token")  # session tokens and invite codes at rest
    ITEM = personalisation("peerfed/item")  # the outbox key of an item without an id
    SOURCE = personalisation("peerfed/source")  # who put an item in a mailbox, keyed, memory only
    WINDOW = personalisation("peerfed/window")  # rate-limit windows shared by a node's processes, keyed
    VERDICT = personalisation("peerfed/verdict")  # a key bundle's checked signature, remembered in memory
    # A client's own, never sent: the key its session token is sealed under at rest (§12).
    SESSION = personalisation("peerfed/session")
    # A client's own, never sent: the key its conversation history is sealed under at rest (§9.6).
    HISTORY = personalisation("peerfed/history")


# BLAKE2b comes from the standard library's hashlib: the same function as libsodium's
# crypto_generichash with salt and personalisation (RFC 7693; tests/protocol/test_crypto_blake2b.py
# checks the two agree), at about a tenth of the cost per call through PyNaCl (issue 17).


def blake2b_256(data: bytes, person: Person) -> bytes:
    """Unkeyed BLAKE2b with a 32-byte digest, no salt, and a 16-byte personalisation."""
    return hashlib.blake2b(data, digest_size=32, person=person).digest()


def blake2b_keyed(data: bytes, key: bytes, person: Person, size: int = 16) -> bytes:
    """Keyed BLAKE2b (a MAC) with a ``size``-byte digest, no salt, and a 16-byte personalisation."""
    return hashlib.blake2b(data, digest_size=size, key=key, person=person).digest()


def _need(value: bytes, size: int, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise InvalidValue(f"{what} must be {size} bytes")


KEY_VERDICTS = 8192  # public keys whose verdict is remembered: about 1.6 MB at most


@functools.lru_cache(maxsize=KEY_VERDICTS)
def prime_order_key(public: bytes) -> bool:
    """libsodium's ``crypto_core_ed25519_is_valid_point`` for a 32-byte public key, remembered.

    The verdict depends on the 32 bytes alone, and keys recur: every listing, message and
    request of one member carries the same key. The subgroup check is a scalar multiplication
    (about 30 µs, as much as the signature's own verification), so a key is checked once per
    process while it stays among the latest ``KEY_VERDICTS`` seen. A signature's R is
    different every time and is not remembered.
    """
    return bool(sodium.crypto_core_ed25519_is_valid_point(public))


def check_ed25519_key(public: bytes, what: str = "an Ed25519 public key") -> None:
    """Raise InvalidValue unless ``public`` is a usable Ed25519 public key (spec §4.1).

    libsodium's ``crypto_core_ed25519_is_valid_point`` decides: the encoding is canonical (y below
    2^255-19), the point is on the curve, it is not one of the eight points of small order, and it
    lies in the prime-order subgroup. Nothing here does curve arithmetic of its own.
    """
    _need(public, KEY_BYTES, what)
    if not prime_order_key(public):
        raise InvalidValue(f"{what} is not a canonical Ed25519 point of prime order")


def ed25519_public_from_seed(seed: bytes) -> bytes:
    _need(seed, KEY_BYTES, "an Ed25519 seed")
    return bytes(nacl.signing.SigningKey(seed).verify_key)


def ed25519_sign(seed: bytes, message: bytes) -> bytes:
    """A detached RFC 8032 Ed25519 signature (deterministic)."""
    _need(seed, KEY_BYTES, "an Ed25519 seed")
    return nacl.signing.SigningKey(seed).sign(message).signature


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> None:
    """Raise SignatureError unless ``signature`` is ``public``'s signature over ``message``.

    Before libsodium's own verification (which refuses an unreduced S and a small-order R or key),
    the key and R must each pass ``check_ed25519_key`` (spec §3): so a small-order, mixed-order or
    non-canonically encoded key or R is refused the same way whichever libsodium is linked.
    """
    _need(public, KEY_BYTES, "an Ed25519 public key")
    _need(signature, SIGNATURE_BYTES, "an Ed25519 signature")
    if not prime_order_key(public):
        raise SignatureError("the key is not a canonical Ed25519 point of prime order")
    if not sodium.crypto_core_ed25519_is_valid_point(signature[:32]):
        raise SignatureError("the signature's R is not a canonical Ed25519 point of prime order")
    try:
        nacl.signing.VerifyKey(public).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError) as exc:
        raise SignatureError("signature does not verify") from exc


def equal(a: bytes, b: bytes) -> bool:
    """Whether two byte strings are equal, in time that does not depend on where they differ."""
    return hmac.compare_digest(a, b)


def x25519_public(secret: bytes) -> bytes:
    _need(secret, KEY_BYTES, "an X25519 secret key")
    return sodium.crypto_scalarmult_base(secret)


def x25519(secret: bytes, public: bytes) -> bytes:
    """The X25519 shared secret; raises SealError for a low-order public key."""
    _need(secret, KEY_BYTES, "an X25519 secret key")
    _need(public, KEY_BYTES, "an X25519 public key")
    try:
        return sodium.crypto_scalarmult(secret, public)
    except (nacl.exceptions.CryptoError, nacl.exceptions.RuntimeError, RuntimeError) as exc:
        raise SealError("X25519 with a low-order key", "seal.decrypt_failed") from exc


def aead_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """XChaCha20-Poly1305-IETF: ciphertext followed by its 16-byte tag."""
    _need(key, AEAD_KEY_BYTES, "an AEAD key")
    _need(nonce, AEAD_NONCE_BYTES, "an AEAD nonce")
    return sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, aad, nonce, key)


def aead_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """Raise SealError unless the tag verifies."""
    _need(key, AEAD_KEY_BYTES, "an AEAD key")
    _need(nonce, AEAD_NONCE_BYTES, "an AEAD nonce")
    try:
        return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, aad, nonce, key)
    except nacl.exceptions.CryptoError as exc:
        raise SealError("ciphertext does not authenticate", "seal.decrypt_failed") from exc
