"""Sealing scheme 2: a ratchet frame inside scheme 1's outer seal, per connection (spec §14.4, §14.5).

    sealed  = [1, mailbox, hour, 0x02 || R || E_o || nonce || AEAD(outer, pad(frame))]   as §7.1
    frame   = [connection, [ratchet_key, pn, n, agreement or nil], nonce2 || AEAD(mk, nonce2, inner, aad2)]
    aad2    = "peerfed/v1/ratchet" || 0x00 || mailbox || connection || pack(header)

A node sees exactly what scheme 1 shows it, and the first payload byte. ``open_sealed2`` returns
the would-be session (``pending``) and the one-time pre-key it used; ``accept`` runs the
connection rules (spec §9.2) on the message and only then hands back the session to keep, so a
session starts only from a reach-out of an unknown connection or the response of its author
(§14.5, §14.7), and a refusal anywhere changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import nacl.utils

from . import crypto, prekeys, ratchet
from .connection import Connection
from .encoding import Value, pack, unpack
from .envelope import Context, Envelope, open_signed
from .errors import ConnectionStateError, InvalidValue, RatchetError, SchemaError, SealError
from .identity import EncryptionKey, EncryptionSecret, Identity, PeerId
from .listings import KeyBundle
from .messages import ReachOut, Response, SealedBody
from .sealing import HOUR, SCHEME_V2, Sealed, _aad, _derive, _encrypt, pad, parse_sealed, reacher_bundle, unpad

__all__ = ["Opened2", "Session", "accept", "initiate_session", "open_sealed2", "seal2"]

_RATCHET_CONTEXT = b"peerfed/v1/ratchet\x00"
_HEAD = 65


@dataclass(frozen=True)
class Session:
    """One connection's scheme-2 session: whom it is with, how it began, and its ratchet (spec §14.3)."""

    connection: bytes
    peer: PeerId | None
    ephemeral: bytes  # the agreement's E this session began with (spec §14.5 step 3)
    state: ratchet.RatchetState

    def to_wire(self) -> list[Value]:
        """For a device's own storage; never sent."""
        return [self.connection, None if self.peer is None else bytes(self.peer), self.ephemeral, self.state.to_wire()]

    @classmethod
    def from_wire(cls, value: Value) -> Session:
        """Raise SchemaError unless ``value`` is what ``to_wire`` makes."""
        if not isinstance(value, list) or len(value) != 4:
            raise SchemaError("a session is [connection, peer, ephemeral, state]")
        connection, peer, ephemeral, state = value
        if not (isinstance(connection, bytes) and len(connection) == 16):
            raise SchemaError("a connection id is 16 bytes")
        if not (isinstance(ephemeral, bytes) and len(ephemeral) == 32):
            raise SchemaError("the agreement's ephemeral key is 32 bytes")
        if peer is not None and not (isinstance(peer, bytes) and len(peer) == 32):
            raise SchemaError("a peer id is 32 bytes")
        return cls(connection, None if peer is None else PeerId(peer), ephemeral, ratchet.RatchetState.from_wire(state))


@dataclass(frozen=True)
class Opened2:
    """A scheme-2 message opened: routing, the verified inner object, the would-be session, the pre-key used.

    ``pending`` is kept only through ``accept`` (spec §14.5 steps 8-9); ``started`` says it is new.
    """

    sealed: Sealed
    inner: Envelope
    pending: Session
    one_time_used: EncryptionKey | None
    started: bool

    @property
    def body(self) -> SealedBody:
        return self.inner.body  # type: ignore[return-value]


def initiate_session(
    bundle: Envelope,
    connection: bytes,
    one_time: EncryptionKey | None,
    *,
    identity: Identity,
    now: int,
    ephemeral: bytes | None = None,
    first: bytes | None = None,
) -> Session:
    """Start a session as ``identity`` with the author of ``bundle`` (spec §14.2, §14.3).

    ``bundle`` is the responder's newest unexpired key bundle (spec §4.3), verified by the caller
    (``open_signed``); its key is ``R`` and its signed pre-key ``S``. ``ephemeral`` and ``first``
    (the first ratchet secret) default to new random bytes; they are arguments only so vectors can
    be fixed. Raises InvalidValue for an envelope that is not a key bundle, one expired at ``now``,
    one without a signed pre-key (scheme 1 is used then, §14.7), or malformed keys.
    """
    body = bundle.body
    if bundle.context is not Context.KEY_BUNDLE or not isinstance(body, KeyBundle):
        raise InvalidValue("a session starts from the responder's key bundle")
    if bundle.expires_at <= now:
        raise InvalidValue("that key bundle has expired: use the newest unexpired one (spec §4.3)")
    if body.prekey is None:
        raise InvalidValue("that key bundle has no signed pre-key: scheme 2 cannot start (spec §14.7)")
    return _start(bundle.author, connection, body.encryption_key, body.prekey, one_time, identity, ephemeral, first)


def _start(
    mailbox: PeerId,
    connection: bytes,
    key: EncryptionKey,
    prekey: EncryptionKey,
    one_time: EncryptionKey | None,
    identity: Identity,
    ephemeral: bytes | None,
    first: bytes | None,
) -> Session:
    """The initiator's session from the responder's keys; the vector generator uses it for keys no bundle signs."""
    ephemeral = nacl.utils.random(32) if ephemeral is None else ephemeral
    first = nacl.utils.random(32) if first is None else first
    secret, agreement = prekeys.initiate(
        bytes(mailbox), connection, key, prekey, one_time, identity=identity,
        first_key=crypto.x25519_public(first), ephemeral=ephemeral,
    )  # fmt: skip
    state = ratchet.start_initiator(secret, bytes(prekey), agreement, first=first)
    return Session(connection, mailbox, agreement.ephemeral, state)


def _context(mailbox: bytes, connection: bytes) -> bytes:
    return _RATCHET_CONTEXT + mailbox + connection


def seal2(
    inner: Envelope,
    session: Session,
    recipient_key: EncryptionKey,
    *,
    hour: int | None = None,
    fresh: bytes | None = None,
    ephemeral: bytes | None = None,
    nonce: bytes | None = None,
    inner_nonce: bytes | None = None,
) -> tuple[Sealed, Session]:
    """Seal ``inner`` with the session's next message key; the sealed message and the session to keep.

    ``fresh`` (a ratchet secret), ``ephemeral`` (the outer seal's), ``nonce`` (the outer seal's) and
    ``inner_nonce`` (the message key's) default to new random bytes; they are arguments only so
    vectors can be fixed. The caller MUST store the returned session before it hands the sealed
    bytes to a node (spec §14.4), so no message key is ever used from a state it sent from before.
    Raises InvalidValue for an inner object of another connection or recipient, one too large to
    seal (spec §14.4), or a session that cannot send yet (a responder that has opened nothing).
    """
    body = inner.body
    if inner.context is not Context.SEALED or not hasattr(body, "connection"):
        raise InvalidValue("only sealed-inner objects are sealed")
    mailbox = bytes(body.recipient)  # type: ignore[union-attr]
    other = session.peer is not None and bytes(session.peer) != mailbox
    if other or body.connection != session.connection:
        raise InvalidValue("the message belongs to another connection or peer than the session")
    hour = inner.created_at - inner.created_at % HOUR if hour is None else hour
    if hour % HOUR or hour < 0:
        raise InvalidValue("hour must be a whole hour in Unix seconds")
    fresh = nacl.utils.random(32) if fresh is None else fresh
    inner_nonce = nacl.utils.random(crypto.AEAD_NONCE_BYTES) if inner_nonce is None else inner_nonce
    state, header, ciphertext = ratchet.encrypt(
        session.state, inner.raw, _context(mailbox, session.connection), fresh=fresh, nonce=inner_nonce
    )
    frame = pack([session.connection, header.to_wire(), ciphertext])
    ephemeral = nacl.utils.random(32) if ephemeral is None else ephemeral
    nonce = nacl.utils.random(crypto.AEAD_NONCE_BYTES) if nonce is None else nonce
    # The same padding as scheme 1 (spec §7.2), over the whole frame.
    sealed = _encrypt(pad(frame), mailbox, hour, bytes(recipient_key), ephemeral, nonce, SCHEME_V2)
    return sealed, Session(session.connection, session.peer, session.ephemeral, state)


def _frame(plain: bytes) -> tuple[bytes, ratchet.Header, bytes]:
    """Step 2 of spec §14.5: the frame's shape. Raises EncodingError or SchemaError."""
    frame = unpack(plain)
    if not isinstance(frame, list) or len(frame) != 3:
        raise SchemaError("a frame is [connection, header, ciphertext]")
    connection, header, ciphertext = frame
    if not isinstance(connection, bytes) or len(connection) != 16:
        raise SchemaError("a connection id is 16 bytes")
    if not isinstance(ciphertext, bytes) or len(ciphertext) < crypto.AEAD_NONCE_BYTES + crypto.AEAD_TAG_BYTES:
        raise SchemaError("the ciphertext is a nonce and at least a tag")
    return connection, ratchet.Header.from_wire(header), ciphertext


def _by_public(keys: Sequence[EncryptionSecret], public: bytes) -> EncryptionSecret | None:
    return next((k for k in keys if crypto.equal(bytes(k.public), public)), None)


def _session(
    recipient: PeerId,
    connection: bytes,
    header: ratchet.Header,
    sessions: Mapping[bytes, Session],
    keys: tuple[Sequence[EncryptionSecret], Sequence[EncryptionSecret], Sequence[EncryptionSecret]],
) -> tuple[Session, EncryptionKey | None]:
    """Step 3 of spec §14.5: the connection's session, or a new responder session from the agreement."""
    agreement = header.agreement
    held = sessions.get(connection)
    if held is not None:
        if agreement is not None:
            if not crypto.equal(agreement.ephemeral, held.ephemeral):
                raise RatchetError("an agreement other than the one this session began with", "ratchet.no_session")
            if held.peer is None or not crypto.equal(agreement.initiator, bytes(held.peer)):
                raise SealError("the agreement names another initiator than the session's peer", "seal.wrong_sender")
            # Every header that repeats the agreement carries the signed first ratchet key, so a
            # holder of this side's secrets cannot move the session to a ratchet key of its own.
            agreement.verify(bytes(recipient), connection, header.ratchet_key)
        return held, None
    if agreement is None:
        raise RatchetError("no session for this connection, and no agreement", "ratchet.no_session")
    secrets, signed, one_times = keys
    key, prekey = _by_public(secrets, agreement.key), _by_public(signed, agreement.prekey)
    if key is None or prekey is None:
        raise SealError("the agreement names keys this peer does not hold", "seal.wrong_recipient")
    agreement.verify(bytes(recipient), connection, header.ratchet_key)
    one_time = None if agreement.one_time is None else _by_public(one_times, agreement.one_time)
    if agreement.one_time is not None and one_time is None:
        raise RatchetError("that one-time pre-key is not held: used, or never ours", "ratchet.prekey_used")
    secret = prekeys.respond(bytes(recipient), connection, agreement, key=key, prekey=prekey, one_time=one_time)
    state = ratchet.start_responder(secret, prekey.secret)
    peer = PeerId(agreement.initiator)  # verified above: a valid key, and the inner author must be it
    return Session(connection, peer, agreement.ephemeral, state), None if one_time is None else one_time.public


def open_sealed2(
    data: bytes,
    *,
    recipient: PeerId,
    secrets: Sequence[EncryptionSecret],
    signed_prekeys: Sequence[EncryptionSecret],
    one_time_prekeys: Sequence[EncryptionSecret],
    sessions: Mapping[bytes, Session],
    now: int,
) -> Opened2:
    """Open a scheme-2 message (spec §14.5). Raises only RemoteError; changes none of its arguments.

    ``sessions`` maps connection ids to the sessions held. The result's ``session`` replaces the
    held one and ``one_time_used`` names the pre-key whose secret the caller then deletes.
    """
    sealed = parse_sealed(data)
    if sealed.payload[0] != SCHEME_V2:
        raise SchemaError("not a scheme-2 message")
    if sealed.mailbox != recipient:
        raise SealError("not addressed to this mailbox", "seal.wrong_recipient")
    rkey = sealed.payload[1:33]
    outer = _by_public(secrets, rkey)
    if outer is None:
        raise SealError("sealed to a key this peer does not hold", "seal.wrong_recipient")
    ephemeral = sealed.payload[33:_HEAD]
    nonce = sealed.payload[_HEAD : _HEAD + crypto.AEAD_NONCE_BYTES]
    key = _derive(outer.shared(EncryptionKey(ephemeral)), ephemeral, rkey, SCHEME_V2)
    aad = _aad(bytes(sealed.mailbox), sealed.hour, sealed.payload[:_HEAD])
    plain = unpad(crypto.aead_decrypt(key, nonce, sealed.payload[_HEAD + crypto.AEAD_NONCE_BYTES :], aad))
    connection, header, ciphertext = _frame(plain)
    keys = (secrets, signed_prekeys, one_time_prekeys)
    session, one_time = _session(recipient, connection, header, sessions, keys)
    started = connection not in sessions
    context = _context(bytes(recipient), connection)
    state, inner_raw = ratchet.decrypt(session.state, header, ciphertext, context)
    inner = open_signed(inner_raw, context=Context.SEALED, now=now)
    body = inner.body
    if body.recipient != recipient:  # type: ignore[union-attr]
        raise SealError("the signed message names another recipient", "seal.wrong_recipient")
    if isinstance(body, ReachOut):
        reacher_bundle(inner)
    if body.connection != connection:  # type: ignore[union-attr]
        raise SchemaError("the signed message names another connection than its frame")
    if session.peer is not None and inner.author != session.peer:
        raise SealError("the session is with another peer", "seal.wrong_sender")
    return Opened2(sealed, inner, Session(connection, inner.author, session.ephemeral, state), one_time, started)


def accept(opened: Opened2, connection: Connection | None) -> tuple[Connection, Session]:
    """The connection and session to keep once the §9.2 rules take the opened message (spec §14.5).

    ``connection`` is the one held for the message's connection id, or None if there is none. A new
    session is kept only for a reach-out of an unknown connection or a response from the
    connection's author (§14.7): anything else that started one is ``ratchet.no_session``. Raises
    that RatchetError, ConnectionStateError from the rules (connection.not_allowed, .duplicate,
    .closed), or InvalidValue for a connection of another id; nothing is changed either way.
    """
    inner, body = opened.inner, opened.inner.body
    if connection is not None and connection.id != opened.pending.connection:
        raise InvalidValue("the connection is not the message's")
    if connection is None:
        if not isinstance(body, ReachOut):
            if opened.started:
                raise RatchetError("a session starts only with a reach-out or its response", "ratchet.no_session")
            raise ConnectionStateError("no connection holds this message")
        return Connection.start(inner), opened.pending
    if opened.started and not (isinstance(body, Response) and inner.author == connection.author):
        raise RatchetError("a session starts only with a reach-out or its response", "ratchet.no_session")
    return connection.receive(inner), opened.pending
