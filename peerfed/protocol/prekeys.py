"""The agreement of sealing scheme 2: signed and one-time pre-keys to a shared secret (spec §14.2).

    dh1 = X25519(e, S)    dh2 = X25519(e, R)    dh3 = X25519(e, O), or nothing
    SK  = BLAKE2b-256(dh1 || dh2 || dh3 || mailbox || connection || E || R || S || O, "peerfed/agree/v2")

``R`` is the responder's bundle key, ``S`` its signed pre-key (the bundle's ``prekey``, spec §14.1),
``O`` a one-time pre-key claimed from its home node, or none when the stock ran out. The
initiator's ephemeral secret ``e`` is an argument and is not kept by anything here.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import crypto
from .encoding import Value, pack, unpack
from .errors import EncodingError, InvalidValue, SchemaError
from .identity import EncryptionKey, EncryptionSecret

__all__ = ["Agreement", "initiate", "respond"]


@dataclass(frozen=True)
class Agreement:
    """``[R, S, O or nil, E]``: which keys of the responder the initiator used, and its ephemeral key."""

    key: bytes
    prekey: bytes
    one_time: bytes | None
    ephemeral: bytes

    def __post_init__(self) -> None:
        keys = [self.key, self.prekey, self.ephemeral] + ([] if self.one_time is None else [self.one_time])
        if not all(isinstance(k, bytes) and len(k) == 32 for k in keys):
            raise InvalidValue("an agreement's keys are 32 bytes each")

    def to_wire(self) -> list[Value]:
        return [self.key, self.prekey, self.one_time, self.ephemeral]

    @property
    def raw(self) -> bytes:
        return pack(self.to_wire())

    @classmethod
    def from_wire(cls, value: Value) -> Agreement:
        """Raise SchemaError unless ``value`` is ``[bin 32, bin 32, bin 32 or nil, bin 32]`` (spec §14.4)."""
        if not isinstance(value, list) or len(value) != 4:
            raise SchemaError("an agreement is [R, S, O or nil, E]")
        key, prekey, one_time, ephemeral = value
        try:
            return cls(key, prekey, one_time, ephemeral)  # type: ignore[arg-type]
        except InvalidValue as exc:
            raise SchemaError(str(exc)) from exc

    @classmethod
    def from_raw(cls, raw: bytes) -> Agreement:
        try:
            return cls.from_wire(unpack(raw))
        except EncodingError as exc:
            raise SchemaError("not a packed agreement") from exc


def _secret(dhs: list[bytes], mailbox: bytes, connection: bytes, agreement: Agreement) -> bytes:
    info = mailbox + connection + agreement.ephemeral + agreement.key + agreement.prekey + (agreement.one_time or b"")
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
    ephemeral: bytes,
) -> tuple[bytes, Agreement]:
    """The initiator's shared secret and the agreement it sends (spec §14.2).

    ``ephemeral`` is a fresh X25519 secret; the caller MUST NOT keep or reuse it. Raises SealError
    (``seal.decrypt_failed``) if a key is of low order, InvalidValue for malformed arguments.
    """
    _check_ids(mailbox, connection)
    e = EncryptionSecret(ephemeral)
    agreement = Agreement(bytes(key), bytes(prekey), None if one_time is None else bytes(one_time), bytes(e.public))
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

    The caller has matched ``key``, ``prekey`` and ``one_time`` to the agreement's public keys.
    Raises SealError (``seal.decrypt_failed``) for a low-order ephemeral key.
    """
    _check_ids(mailbox, connection)
    theirs = EncryptionKey(agreement.ephemeral)
    dhs = [prekey.shared(theirs), key.shared(theirs)] + ([] if one_time is None else [one_time.shared(theirs)])
    return _secret(dhs, mailbox, connection, agreement)
