"""The agreement of sealing scheme 2: signed and one-time pre-keys to a shared secret (spec §14.2).

    dh1 = X25519(e, S)    dh2 = X25519(e, R)    dh3 = X25519(e, O), or nothing
    SK  = BLAKE2b-256(dh1 || dh2 || dh3 || I || mailbox || connection || E || R || S || O, "peerfed/agree/v2")
    sig = Ed25519(I, "peerfed/v1/agreement" || 0x00 || mailbox || connection || D1 || pack([I, R, S, O, E]))

``R`` is the responder's bundle key, ``S`` its signed pre-key (the bundle's ``prekey``, spec §14.1),
``O`` a one-time pre-key claimed from its home node, or none when the stock ran out. ``I`` is the
initiator's peer id and ``D1`` its first ratchet key: the signature binds the session to the
initiator, so whoever holds the responder's secrets cannot start a session in its name (nor
re-wrap its signed messages under a session of its own). The initiator's ephemeral secret ``e``
is an argument and is not kept by anything here.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import crypto
from .encoding import Value, pack, unpack
from .errors import EncodingError, InvalidValue, SchemaError
from .identity import EncryptionKey, EncryptionSecret, Identity

__all__ = ["Agreement", "initiate", "respond"]

_SIGNED_CONTEXT = b"peerfed/v1/agreement\x00"


@dataclass(frozen=True)
class Agreement:
    """``[I, R, S, O or nil, E, sig]``: who starts, which keys of the responder it used, its signature."""

    initiator: bytes
    key: bytes
    prekey: bytes
    one_time: bytes | None
    ephemeral: bytes
    signature: bytes

    def __post_init__(self) -> None:
        keys = [self.initiator, self.key, self.prekey, self.ephemeral]
        keys += [] if self.one_time is None else [self.one_time]
        if not all(isinstance(k, bytes) and len(k) == 32 for k in keys):
            raise InvalidValue("an agreement's keys are 32 bytes each")
        if self.one_time is not None and self.one_time in (self.key, self.prekey):
            raise InvalidValue("an agreement's one-time pre-key differs from its R and S")
        if not isinstance(self.signature, bytes) or len(self.signature) != crypto.SIGNATURE_BYTES:
            raise InvalidValue("an agreement's signature is 64 bytes")

    def to_wire(self) -> list[Value]:
        return [self.initiator, self.key, self.prekey, self.one_time, self.ephemeral, self.signature]

    def signed(self, mailbox: bytes, connection: bytes, first_key: bytes) -> bytes:
        """The bytes ``signature`` covers: ``first_key`` is the ratchet key of the headers carrying it."""
        keys: list[Value] = [self.initiator, self.key, self.prekey, self.one_time, self.ephemeral]
        return _SIGNED_CONTEXT + mailbox + connection + first_key + pack(keys)

    def verify(self, mailbox: bytes, connection: bytes, first_key: bytes) -> None:
        """Raise SignatureError (``signature.invalid``) unless the initiator signed this agreement for
        this mailbox, connection and first ratchet key (spec §14.5 step 3)."""
        crypto.ed25519_verify(self.initiator, self.signed(mailbox, connection, first_key), self.signature)

    @property
    def raw(self) -> bytes:
        return pack(self.to_wire())

    @classmethod
    def from_wire(cls, value: Value) -> Agreement:
        """Raise SchemaError unless ``value`` is ``[bin 32, bin 32, bin 32, bin 32 or nil, bin 32, bin 64]`` (§14.4)."""
        if not isinstance(value, list) or len(value) != 6:
            raise SchemaError("an agreement is [I, R, S, O or nil, E, signature]")
        try:
            return cls(*value)  # type: ignore[arg-type]
        except InvalidValue as exc:
            raise SchemaError(str(exc)) from exc

    @classmethod
    def from_raw(cls, raw: bytes) -> Agreement:
        try:
            return cls.from_wire(unpack(raw))
        except EncodingError as exc:
            raise SchemaError("not a packed agreement") from exc


def _secret(dhs: list[bytes], mailbox: bytes, connection: bytes, agreement: Agreement) -> bytes:
    info = (
        agreement.initiator
        + mailbox
        + connection
        + agreement.ephemeral
        + agreement.key
        + agreement.prekey
        + (agreement.one_time or b"")
    )
    return crypto.blake2b_256(b"".join(dhs) + info, crypto.Person.AGREE)


def _check_ids(mailbox: bytes, connection: bytes) -> None:
    if not isinstance(mailbox, bytes) or len(mailbox) != 32:
        raise InvalidValue("the mailbox is a 32-byte peer id")
    if not isinstance(connection, bytes) or len(connection) != 16:
        raise InvalidValue("a connection id is 16 bytes")


def initiate(
    mailbox: bytes,
    connection: bytes,
    key: EncryptionKey,
    prekey: EncryptionKey,
    one_time: EncryptionKey | None,
    *,
    identity: Identity,
    first_key: bytes,
    ephemeral: bytes,
) -> tuple[bytes, Agreement]:
    """The initiator's shared secret and the agreement it sends, signed by ``identity`` (spec §14.2).

    ``first_key`` is the public half of the initiator's first ratchet secret; ``ephemeral`` is a
    fresh X25519 secret the caller MUST NOT keep or reuse. Raises SealError (``seal.decrypt_failed``)
    if a key is of low order, InvalidValue for malformed arguments.
    """
    _check_ids(mailbox, connection)
    if not isinstance(first_key, bytes) or len(first_key) != 32:
        raise InvalidValue("a ratchet key is 32 bytes")
    e = EncryptionSecret(ephemeral)
    o = None if one_time is None else bytes(one_time)
    unsigned = Agreement(bytes(identity.peer_id), bytes(key), bytes(prekey), o, bytes(e.public), bytes(64))
    signature = identity.sign(unsigned.signed(mailbox, connection, first_key))
    agreement = Agreement(unsigned.initiator, unsigned.key, unsigned.prekey, o, unsigned.ephemeral, signature)
    dhs = [e.shared(prekey), e.shared(key)] + ([] if one_time is None else [e.shared(one_time)])
    return _secret(dhs, mailbox, connection, agreement), agreement


def respond(
    mailbox: bytes,
    connection: bytes,
    agreement: Agreement,
    *,
    key: EncryptionSecret,
    prekey: EncryptionSecret,
    one_time: EncryptionSecret | None,
) -> bytes:
    """The responder's shared secret from the secrets the agreement names (spec §14.2).

    The caller has matched ``key``, ``prekey`` and ``one_time`` to the agreement's public keys and
    verified its signature.
    Raises SealError (``seal.decrypt_failed``) for a low-order ephemeral key.
    """
    _check_ids(mailbox, connection)
    theirs = EncryptionKey(agreement.ephemeral)
    dhs = [prekey.shared(theirs), key.shared(theirs)] + ([] if one_time is None else [one_time.shared(theirs)])
    return _secret(dhs, mailbox, connection, agreement)
