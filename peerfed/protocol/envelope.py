"""Signed objects: framing, signature, id, freshness (spec §5).

Every signed object has one layout, whatever it carries:

    object  = version (1 byte, 0x01) || author (32) || signature (64) || payload
    payload = canonical msgpack [type, created_at, expires_at, body]
    signed  = context || 0x00 || version || author || payload
    id      = BLAKE2b-256(signed, personalisation "peerfed/id/v1")

The context string names the use (spec §3.2), so bytes signed for one use never verify as
another. ``open_signed`` verifies the signature over the exact received bytes before it
unpacks anything, and checks in the order the spec fixes, so every implementation reports
the same error code for the same bad input.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias

from . import crypto
from .encoding import pack, unpack
from .errors import EncodingError, InvalidValue, SchemaError, SizeError, TimeError, VersionError
from .identity import Identity, PeerId
from .listings import MAX_TIMESTAMP, PREKEY_BUNDLE_LIFETIME, KeyBundle
from .messages import BODY_TYPES
from .messages import Body as PeerBody
from .node_bodies import NODE_BODY_TYPES, ClientAuth, Erasure, Move, NodeDocument, NodeRequest, PreKeys

Body: TypeAlias = PeerBody | NodeDocument | NodeRequest | ClientAuth | Move | PreKeys | Erasure
_TYPES: dict[str, type[Body]] = {**BODY_TYPES, **NODE_BODY_TYPES}

__all__ = [
    "CLOCK_SKEW",
    "CONTEXT_TYPES",
    "FRAMING_VERSION",
    "HEADER_BYTES",
    "MAX_ENVELOPE_BYTES",
    "Context",
    "Body",
    "Envelope",
    "decode_verified",
    "open_signed",
    "sign",
    "verify_kept",
]

FRAMING_VERSION = 1
MAX_ENVELOPE_BYTES = 65_536
CLOCK_SKEW = 300
HEADER_BYTES = 1 + crypto.KEY_BYTES + crypto.SIGNATURE_BYTES
_ID_PERSON = crypto.Person.ID


class Context(enum.StrEnum):
    """Domain-separation strings, one per use of a signature (spec §3.2)."""

    ENVELOPE = "peerfed/v1/envelope"
    KEY_BUNDLE = "peerfed/v1/key-bundle"
    SEALED = "peerfed/v1/sealed-inner"
    NODE_DOCUMENT = "peerfed/v1/node-document"
    NODE_REQUEST = "peerfed/v1/node-request"
    CLIENT_AUTH = "peerfed/v1/client-auth"


# Which body types may be signed under which context (spec §5.4).
CONTEXT_TYPES: dict[Context, frozenset[str]] = {
    Context.ENVELOPE: frozenset({"listing", "withdrawal", "erasure"}),
    Context.KEY_BUNDLE: frozenset({"key-bundle"}),
    Context.SEALED: frozenset({"reach-out", "response", "agreement", "message", "end"}),
    Context.NODE_DOCUMENT: frozenset({"node-document"}),
    Context.NODE_REQUEST: frozenset({"node-request"}),
    Context.CLIENT_AUTH: frozenset({"client-auth", "move", "prekeys"}),
}


def _context_of(type_name: str) -> Context:
    for context, names in CONTEXT_TYPES.items():
        if type_name in names:
            return context
    raise InvalidValue(f"no context signs {type_name!r}")


def _signed_bytes(context: Context, author: bytes, payload: bytes) -> bytes:
    return context.value.encode("ascii") + b"\x00" + bytes([FRAMING_VERSION]) + author + payload


@dataclass(frozen=True)
class Envelope:
    """A verified signed object. ``raw`` is exactly what was signed and sent."""

    context: Context
    author: PeerId
    created_at: int
    expires_at: int
    body: Body
    signature: bytes
    id: bytes
    raw: bytes

    @property
    def type(self) -> str:
        return self.body.type_name


def sign(identity: Identity, body: Body, *, created_at: int, expires_at: int) -> Envelope:
    """Sign ``body`` as ``identity``. The context follows from the body's type.

    Raises InvalidValue if the times break spec §5.3 or the object is over the size cap.
    """
    context = _context_of(body.type_name)
    _check_lifetime(created_at, expires_at, body, local=True)
    payload = pack([body.type_name, created_at, expires_at, body.to_wire()])
    raw = _frame(identity, context, payload)
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise InvalidValue(f"a signed object is at most {MAX_ENVELOPE_BYTES} bytes")
    signed = _signed_bytes(context, raw[1:33], payload)
    return Envelope(
        context,
        identity.peer_id,
        created_at,
        expires_at,
        body,
        raw[33:HEADER_BYTES],
        crypto.blake2b_256(signed, _ID_PERSON),
        raw,
    )


def _frame(identity: Identity, context: Context, payload: bytes) -> bytes:
    """Sign any payload bytes; the vector generator uses it to build invalid cases too."""
    author = bytes(identity.peer_id)
    signature = identity.sign(_signed_bytes(context, author, payload))
    return bytes([FRAMING_VERSION]) + author + signature + payload


def _check_lifetime(created_at: object, expires_at: object, body: Body, *, local: bool) -> None:
    for name, value in (("created_at", created_at), ("expires_at", expires_at)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TIMESTAMP:
            if local:
                raise InvalidValue(f"{name} must be an integer from 0 to {MAX_TIMESTAMP}")
            raise SchemaError(f"{name} must be an integer from 0 to {MAX_TIMESTAMP}")
    assert isinstance(created_at, int) and isinstance(expires_at, int)
    lifetime = expires_at - created_at
    # A bundle that carries a signed pre-key lives shorter: its pre-key's secret must be deleted
    # soon after it expires, and that bounds what a stolen one opens (spec §4.3, §14.1).
    limit = PREKEY_BUNDLE_LIFETIME if isinstance(body, KeyBundle) and body.prekey is not None else body.max_lifetime
    if not 0 < lifetime <= limit:
        message = f"a {body.type_name} must expire within {limit} s after creation"
        if local:
            raise InvalidValue(message)
        raise TimeError(message, "time.lifetime")


def open_signed(data: bytes, *, context: Context, now: int, max_bytes: int = MAX_ENVELOPE_BYTES) -> Envelope:
    """Verify and decode one signed object received from outside (spec §5.5).

    Checks, in this order: size, length, framing version, signature, encoding, payload
    shape, type, body fields, lifetime, not in the future, not expired. Raises only
    RemoteError subclasses.
    """
    env = verify_kept(data, context=context, max_bytes=max_bytes)
    if env.created_at > now + CLOCK_SKEW:
        raise TimeError("created too far in the future", "time.future")
    if env.expires_at <= now:
        raise TimeError("expired", "time.expired")
    return env


def verify_kept(data: bytes, *, context: Context, max_bytes: int = MAX_ENVELOPE_BYTES) -> Envelope:
    """Verify and decode a signed object read again after it was kept: a disclosure (spec §5.5, §13.5).

    Steps 1 to 9 of spec §5.5, every check but the clock's: a message a peer disclosed to the
    moderators is still proved by its signature after it expired. Raises only RemoteError
    subclasses, the same code ``open_signed`` gives for the same fault.
    """
    if not isinstance(data, bytes):
        raise EncodingError("a signed object is bytes")
    if len(data) > max_bytes:
        raise SizeError(f"a signed object is at most {max_bytes} bytes")
    if len(data) <= HEADER_BYTES:
        raise EncodingError("too short to be a signed object", "encoding.malformed")
    if data[0] != FRAMING_VERSION:
        raise VersionError(f"framing version {data[0]} is not supported")
    author = data[1:33]
    signature = data[33:HEADER_BYTES]
    signed = _signed_bytes(context, author, data[HEADER_BYTES:])
    crypto.ed25519_verify(author, signed, signature)
    return _decode(data, context, signed)


def decode_verified(data: bytes, *, context: Context) -> Envelope:
    """Decode a signed object this program verified with ``open_signed`` before it kept it.

    For a peer's or node's own storage only: the signature and the clock are not checked
    again (the object may have expired since), everything else is. Raises RemoteError
    subclasses if the bytes are not a well-formed signed object.
    """
    if not isinstance(data, bytes) or len(data) <= HEADER_BYTES:
        raise EncodingError("too short to be a signed object", "encoding.malformed")
    if data[0] != FRAMING_VERSION:
        raise VersionError(f"framing version {data[0]} is not supported")
    return _decode(data, context, _signed_bytes(context, data[1:33], data[HEADER_BYTES:]))


def _decode(data: bytes, context: Context, signed: bytes) -> Envelope:
    """The payload's shape, type, body fields and lifetime (spec §5.5 steps after the signature)."""
    decoded = unpack(data[HEADER_BYTES:])
    if not isinstance(decoded, list) or len(decoded) != 4 or not isinstance(decoded[0], str):
        raise SchemaError("a payload is [type, created_at, expires_at, body]")
    type_name, created_at, expires_at, wire_body = decoded
    if type_name not in CONTEXT_TYPES[context]:
        raise SchemaError(f"type {type_name!r} is not signed under {context.value}", "schema.unknown_type")
    try:
        body = _TYPES[type_name].from_wire(wire_body)
    except InvalidValue as exc:
        raise SchemaError(f"{type_name}: {exc}") from exc
    _check_lifetime(created_at, expires_at, body, local=False)
    assert isinstance(created_at, int) and isinstance(expires_at, int)
    return Envelope(
        context,
        PeerId(data[1:33]),
        created_at,
        expires_at,
        body,
        data[33:HEADER_BYTES],
        crypto.blake2b_256(signed, _ID_PERSON),
        data,
    )
