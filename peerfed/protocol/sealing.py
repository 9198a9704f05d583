"""Sealing scheme v1: person-to-person messages a node can carry but not read (spec §7).

    sealed   = canonical msgpack [1, mailbox, hour, payload]          what a node sees
    payload  = 0x01 || recipient_key (32) || ephemeral (32) || nonce (24) || ciphertext
    key      = BLAKE2b-256(X25519(e, R) || ephemeral || recipient_key, "peerfed/seal/v1")
    aad      = "peerfed/v1/seal" || 0x00 || mailbox || hour (u64 BE) || payload[0:65]
    plain    = len(inner) (u32 BE) || inner || zero bytes up to padded_length(4 + len(inner))

``inner`` is a signed object under the sealed-inner context, so the author signs inside the
encryption and the node never learns who wrote it. v1 has no forward secrecy: whoever
later holds the recipient's X25519 secret can open everything sealed to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import nacl.utils

from . import crypto
from .encoding import pack, unpack
from .envelope import CLOCK_SKEW, MAX_ENVELOPE_BYTES, Context, Envelope, open_signed
from .errors import EncodingError, InvalidValue, SchemaError, SealError, SizeError, TimeError, VersionError
from .identity import EncryptionKey, EncryptionSecret, PeerId
from .messages import MAX_BUNDLE_BYTES, ReachOut, SealedBody

__all__ = [
    "HOUR",
    "MAX_PADDED",
    "MAX_SEALED_AGE",
    "OUTER_VERSION",
    "SCHEME_V1",
    "SCHEME_V2",
    "Opened",
    "Sealed",
    "check_hour",
    "open_sealed",
    "pad",
    "padded_length",
    "parse_sealed",
    "reacher_bundle",
    "seal",
    "unpad",
]

OUTER_VERSION = 1
SCHEME_V1 = 1
SCHEME_V2 = 2  # sealing scheme 2 (spec §14): the same outer layer around a ratchet frame
HOUR = 3600
MAX_SEALED_AGE = 7 * 86_400
MIN_PADDED = 256
MAX_PADDED = 57_344
_PREFIX = 4
_HEAD = 1 + 32 + 32  # version, recipient key, ephemeral key
_OVERHEAD = _HEAD + crypto.AEAD_NONCE_BYTES + crypto.AEAD_TAG_BYTES
_KEY_PERSON = {SCHEME_V1: crypto.Person.SEAL, SCHEME_V2: crypto.Person.SEAL_V2}
_SEALED_ID_PERSON = crypto.Person.SEALED_ID
_AAD_CONTEXT = b"peerfed/v1/seal\x00"


def padded_length(length: int) -> int:
    """The bucket a plaintext of ``length`` bytes is padded to (spec §7.2)."""
    if length <= MIN_PADDED:
        return MIN_PADDED
    step = (1 << (length - 1).bit_length()) // 8
    return -(-length // step) * step


def pad(inner: bytes) -> bytes:
    total = padded_length(_PREFIX + len(inner))
    if total > MAX_PADDED:
        raise InvalidValue(f"a sealed message holds at most {MAX_PADDED - _PREFIX} bytes")
    return len(inner).to_bytes(_PREFIX, "big") + inner + bytes(total - _PREFIX - len(inner))


def unpad(plain: bytes) -> bytes:
    """Raise SealError (seal.bad_padding) unless ``plain`` is exactly what ``pad`` makes."""
    if len(plain) < _PREFIX:
        raise SealError("no length prefix", "seal.bad_padding")
    length = int.from_bytes(plain[:_PREFIX], "big")
    end = _PREFIX + length
    if end > len(plain) or padded_length(end) != len(plain):
        raise SealError("the length prefix does not fit the padded size", "seal.bad_padding")
    if any(plain[end:]):
        raise SealError("padding bytes are not zero", "seal.bad_padding")
    return plain[_PREFIX:end]


@dataclass(frozen=True)
class Sealed:
    """What a node may know of a sealed message: routing only (spec §7.4)."""

    mailbox: PeerId
    hour: int
    payload: bytes
    id: bytes
    raw: bytes


@dataclass(frozen=True)
class Opened:
    """A sealed message opened by its recipient: the routing, and the verified inner object."""

    sealed: Sealed
    inner: Envelope

    @property
    def body(self) -> SealedBody:
        return self.inner.body  # type: ignore[return-value]


def _aad(mailbox: bytes, hour: int, head: bytes) -> bytes:
    return _AAD_CONTEXT + mailbox + hour.to_bytes(8, "big") + head


def _derive(shared: bytes, ephemeral: bytes, recipient_key: bytes, scheme: int = SCHEME_V1) -> bytes:
    person = _KEY_PERSON.get(scheme, crypto.Person.SEAL)
    return crypto.blake2b_256(shared + ephemeral + recipient_key, person)


def seal(
    inner: Envelope,
    recipient_key: EncryptionKey,
    *,
    hour: int | None = None,
    ephemeral: bytes | None = None,
    nonce: bytes | None = None,
) -> Sealed:
    """Seal a signed sealed-inner object to the recipient's current X25519 key.

    ``hour`` defaults to the inner object's creation time rounded down to the hour;
    ``ephemeral`` (an X25519 secret) and ``nonce`` default to fresh random bytes and are
    arguments only so that test vectors can be fixed. Never reuse either.
    """
    if inner.context is not Context.SEALED:
        raise InvalidValue("only sealed-inner objects are sealed")
    mailbox = bytes(inner.body.recipient)  # type: ignore[union-attr]
    hour = inner.created_at - inner.created_at % HOUR if hour is None else hour
    if hour % HOUR or hour < 0:
        raise InvalidValue("hour must be a whole hour in Unix seconds")
    ephemeral = nacl.utils.random(32) if ephemeral is None else ephemeral
    nonce = nacl.utils.random(crypto.AEAD_NONCE_BYTES) if nonce is None else nonce
    return _encrypt(pad(inner.raw), mailbox, hour, bytes(recipient_key), ephemeral, nonce)


def _encrypt(
    plain: bytes,
    mailbox: bytes,
    hour: int,
    rkey: bytes,
    ephemeral: bytes,
    nonce: bytes,
    scheme: int = SCHEME_V1,
    outer_version: int = OUTER_VERSION,
) -> Sealed:
    """The raw construction, exposed to the vector generator so it can build invalid cases."""
    eph_secret = EncryptionSecret(ephemeral)
    eph_public = bytes(eph_secret.public)
    key = _derive(eph_secret.shared(EncryptionKey(rkey)), eph_public, rkey, scheme)
    head = bytes([scheme]) + rkey + eph_public
    ciphertext = crypto.aead_encrypt(key, nonce, plain, _aad(mailbox, hour, head))
    payload = head + nonce + ciphertext
    raw = pack([outer_version, mailbox, hour, payload])
    return Sealed(PeerId(mailbox), hour, payload, crypto.blake2b_256(raw, _SEALED_ID_PERSON), raw)


def parse_sealed(data: bytes) -> Sealed:
    """Check a sealed message's routing layer, as a node does (spec §7.3 steps 1-5).

    Raises only RemoteError: size.too_large, encoding.*, version.unsupported, schema.invalid.
    """
    if not isinstance(data, bytes):
        raise EncodingError("a sealed message is bytes")
    if len(data) > MAX_ENVELOPE_BYTES:
        raise SizeError(f"a sealed message is at most {MAX_ENVELOPE_BYTES} bytes")
    outer = unpack(data)
    if not isinstance(outer, list) or not outer or type(outer[0]) is not int:
        raise SchemaError("a sealed message is [version, mailbox, hour, payload]")
    if outer[0] != OUTER_VERSION:
        raise VersionError(f"sealed message version {outer[0]} is not supported")
    if len(outer) != 4:
        raise SchemaError("a sealed message is [version, mailbox, hour, payload]")
    _, mailbox, hour, payload = outer
    if not isinstance(mailbox, bytes) or len(mailbox) != 32:
        raise SchemaError("mailbox must be 32 bytes of binary")
    if isinstance(hour, bool) or not isinstance(hour, int) or hour < 0 or hour % HOUR:
        raise SchemaError("hour must be a whole hour in Unix seconds")
    if not isinstance(payload, bytes) or not payload:
        raise SchemaError("payload must be non-empty binary")
    if payload[0] not in (SCHEME_V1, SCHEME_V2):  # a node carries both schemes alike (spec §14.5)
        raise VersionError(f"sealing scheme {payload[0]} is not supported")
    padded = len(payload) - _OVERHEAD
    if padded < MIN_PADDED or padded > MAX_PADDED or padded_length(padded) != padded:
        raise SchemaError("payload length is not a padding bucket")
    return Sealed(PeerId(mailbox), hour, payload, crypto.blake2b_256(data, _SEALED_ID_PERSON), data)


def check_hour(sealed: Sealed, now: int) -> None:
    """A node's freshness rule for the routing hour (spec §7.3 step 6)."""
    if sealed.hour > now + CLOCK_SKEW:
        raise TimeError("sealed in the future", "time.future")
    if sealed.hour + MAX_SEALED_AGE < now:
        raise TimeError("sealed too long ago", "time.expired")


def open_sealed(data: bytes, *, recipient: PeerId, secrets: list[EncryptionSecret], now: int) -> Opened:
    """Open a scheme-1 message addressed to ``recipient`` (spec §7.3). Raises only RemoteError.

    A scheme-2 message is ``version.unsupported`` here: it needs its session (``sealing2``).
    """
    sealed = parse_sealed(data)
    if sealed.payload[0] != SCHEME_V1:
        raise VersionError("a scheme-2 message is opened with its session (spec §14.5)")
    if sealed.mailbox != recipient:
        raise SealError("not addressed to this mailbox", "seal.wrong_recipient")
    rkey = sealed.payload[1:33]
    secret = next((s for s in secrets if bytes(s.public) == rkey), None)
    if secret is None:
        raise SealError("sealed to a key this peer does not hold", "seal.wrong_recipient")
    ephemeral = sealed.payload[33:_HEAD]
    nonce = sealed.payload[_HEAD : _HEAD + crypto.AEAD_NONCE_BYTES]
    ciphertext = sealed.payload[_HEAD + crypto.AEAD_NONCE_BYTES :]
    key = _derive(secret.shared(EncryptionKey(ephemeral)), ephemeral, rkey)
    aad = _aad(bytes(sealed.mailbox), sealed.hour, sealed.payload[:_HEAD])
    plain = crypto.aead_decrypt(key, nonce, ciphertext, aad)
    inner = open_signed(unpad(plain), context=Context.SEALED, now=now)
    if inner.body.recipient != recipient:  # type: ignore[union-attr]
        raise SealError("the signed message names another recipient", "seal.wrong_recipient")
    if isinstance(inner.body, ReachOut):
        reacher_bundle(inner)
    return Opened(sealed, inner)


def reacher_bundle(inner: Envelope) -> Envelope:
    """The key bundle a reach-out carries, verified as its author's at the reach-out's time (spec §7.3 step 12).

    Opened under the key-bundle context with the reach-out's ``created_at`` as now, so a bundle
    that was current when the reacher wrote still verifies while the reach-out lives. Raises the
    bundle's own RemoteError (spec §5.5), or SealError ``seal.wrong_sender`` if another peer signed it.
    """
    body = inner.body
    if not isinstance(body, ReachOut):
        raise SchemaError("only a reach-out carries a key bundle")
    if body.bundle is None:
        raise SchemaError("a reach-out must carry its author's signed key bundle")
    bundle = open_signed(body.bundle, context=Context.KEY_BUNDLE, now=inner.created_at, max_bytes=MAX_BUNDLE_BYTES)
    if bundle.author != inner.author:
        raise SealError("the reach-out carries another peer's key bundle", "seal.wrong_sender")
    return bundle
