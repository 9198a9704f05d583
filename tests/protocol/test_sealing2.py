"""Sealing scheme 2 end to end: agreement, sealed sender, sessions, refusals (spec §14)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerfed.protocol import (
    Identity,
    KeyBundle,
    Message,
    PeerId,
    RemoteError,
    open_sealed,
    open_signed,
    prekeys,
    ratchet,
    sign,
)
from peerfed.protocol.connection import Connection
from peerfed.protocol.crypto import aead_decrypt, x25519_public
from peerfed.protocol.encoding import pack, unpack
from peerfed.protocol.envelope import Context, Envelope
from peerfed.protocol.errors import InvalidValue, SchemaError
from peerfed.protocol.identity import EncryptionKey, EncryptionSecret
from peerfed.protocol.messages import ReachOut, Response
from peerfed.protocol.sealing import MAX_PADDED, _aad, _derive, _encrypt, pad, padded_length, parse_sealed, unpad
from peerfed.protocol.sealing2 import Opened2, Session, accept, initiate_session, open_sealed2, seal2

NOW = 1_800_000_000
DAY = 86_400
CONN = bytes(range(16))


@dataclass
class Side:
    """One peer's keys and sessions, as a client would hold them."""

    n: int
    identity: Identity = field(init=False)
    key: EncryptionSecret = field(init=False)
    prekey: EncryptionSecret = field(init=False)
    one_times: list[EncryptionSecret] = field(init=False)
    sessions: dict[bytes, Session] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.identity = Identity(bytes([self.n]) * 32)
        self.key = EncryptionSecret(bytes([self.n + 0x40]) * 32)
        self.prekey = EncryptionSecret(bytes([self.n + 0x80]) * 32)
        self.one_times = [EncryptionSecret(bytes([self.n + 0xC0, i]) * 16) for i in range(3)]

    @property
    def id(self) -> PeerId:
        return self.identity.peer_id

    @property
    def bundle(self) -> Envelope:
        """This side's newest unexpired key bundle, with its signed pre-key (spec §4.3, §14.1)."""
        body = KeyBundle(self.key.public, prekey=self.prekey.public)
        return sign(self.identity, body, created_at=NOW - DAY, expires_at=NOW + 30 * DAY)

    def message(self, to: Side, seq: int, text: str = "hi", connection: bytes = CONN) -> Envelope:
        return sign(self.identity, Message(to.id, connection, seq, text), created_at=NOW, expires_at=NOW + 86_400)

    def send(self, to: Side, inner: Envelope) -> bytes:
        sealed, self.sessions[CONN] = seal2(inner, self.sessions[CONN], to.key.public)
        return sealed.raw

    def open(self, data: bytes, *, keep: bool = True) -> Opened2:
        opened = open_sealed2(
            data,
            recipient=self.id,
            secrets=[self.key],
            signed_prekeys=[self.prekey],
            one_time_prekeys=self.one_times,
            sessions=self.sessions,
            now=NOW,
        )
        if keep:
            self.sessions[opened.pending.connection] = opened.pending
            self.one_times = [k for k in self.one_times if k.public != opened.one_time_used]
        return opened


def pair(one_time: bool = True) -> tuple[Side, Side]:
    ana, ben = Side(1), Side(2)
    otk = ben.one_times[0].public if one_time else None
    ana.sessions[CONN] = initiate_session(ben.bundle, CONN, otk, identity=ana.identity, now=NOW)
    return ana, ben


def code(action: object) -> str:
    with pytest.raises(RemoteError) as info:
        action()  # type: ignore[operator]
    return info.value.code


def test_a_conversation_opens_both_ways_and_uses_up_the_one_time_pre_key() -> None:
    ana, ben = pair()
    first = ana.send(ben, ana.message(ben, 1, "hello"))
    opened = ben.open(first)
    assert opened.inner.body.text == "hello"  # type: ignore[union-attr]
    assert opened.pending.peer == ana.id and opened.one_time_used is not None
    assert len(ben.one_times) == 2
    back = ben.send(ana, ben.message(ana, 1, "hi ana"))
    assert ana.open(back).inner.body.text == "hi ana"  # type: ignore[union-attr]
    assert ana.sessions[CONN].state.agreement is None  # it stops repeating the agreement
    for seq in range(2, 5):
        assert ben.open(ana.send(ben, ana.message(ben, seq, f"m{seq}"))).inner.body.seq == seq  # type: ignore[union-attr]


def test_without_a_one_time_pre_key_the_signed_pre_key_alone_starts_the_session() -> None:
    ana, ben = pair(one_time=False)
    opened = ben.open(ana.send(ben, ana.message(ben, 1)))
    assert opened.one_time_used is None and len(ben.one_times) == 3


def test_the_node_sees_scheme_1_routing_and_the_same_padding() -> None:
    ana, ben = pair()
    raw = ana.send(ben, ana.message(ben, 1, "x" * 40))
    sealed = parse_sealed(raw)  # a node carries it like any sealed message
    assert unpack(raw)[:3] == [1, bytes(ben.id), NOW - NOW % 3600]  # type: ignore[index]
    assert sealed.payload[0] == 2 and padded_length(len(sealed.payload) - 105) == len(sealed.payload) - 105
    assert bytes(ana.id) not in raw  # sealed sender: the author is only inside
    assert code(lambda: open_sealed(raw, recipient=ben.id, secrets=[ben.key], now=NOW)) == "version.unsupported"


def test_the_agreement_repeats_until_answered_so_a_lost_first_message_loses_nothing() -> None:
    ana, ben = pair()
    ana.send(ben, ana.message(ben, 1, "lost"))
    second = ana.send(ben, ana.message(ben, 2, "arrives"))
    assert ben.open(second).inner.body.text == "arrives"  # type: ignore[union-attr]


def test_refusals_change_nothing() -> None:
    ana, ben = pair()
    first = ana.send(ben, ana.message(ben, 1))
    ben.open(first)
    before = dict(ben.sessions), list(ben.one_times)
    assert code(lambda: ben.open(first)) == "ratchet.key_used"  # replayed
    assert (dict(ben.sessions), list(ben.one_times)) == before


def test_typed_refusals_for_sessions_and_pre_keys() -> None:
    ana, ben = pair()
    used = ben.one_times[0].public
    ben.open(ana.send(ben, ana.message(ben, 1)))
    # A new connection whose agreement names the one-time pre-key already used.
    cara = Side(3)
    other = bytes(16)
    cara.sessions[CONN] = initiate_session(ben.bundle, other, used, identity=cara.identity, now=NOW)
    cara.sessions[CONN] = Session(other, ben.id, cara.sessions[CONN].ephemeral, cara.sessions[CONN].state)
    inner = sign(cara.identity, Message(ben.id, other, 1, "x"), created_at=NOW, expires_at=NOW + 86_400)
    sealed, _ = seal2(inner, cara.sessions[CONN], ben.key.public)
    assert code(lambda: ben.open(sealed.raw)) == "ratchet.prekey_used"
    # Bob's answer reaches a device that holds no session and gets no agreement.
    back = ben.send(ana, ben.message(ana, 1))
    ana.sessions.clear()
    assert code(lambda: ana.open(back)) == "ratchet.no_session"


def test_a_session_is_bound_to_its_peer() -> None:
    ana, ben = pair()
    ben.open(ana.send(ben, ana.message(ben, 1)))
    # Cara, who somehow holds Ana's session, cannot speak as herself in it.
    cara = Side(3)
    held = ana.sessions[CONN]
    sealed, _ = seal2(cara.message(ben, 1), Session(CONN, None, held.ephemeral, held.state), ben.key.public)
    assert code(lambda: ben.open(sealed.raw)) == "seal.wrong_sender"


def test_the_size_limit_is_the_senders_error() -> None:
    ana, ben = pair()
    too_big = ana.message(ben, 1, "x" * 16_000)
    assert len(too_big.raw) < MAX_PADDED  # fits: messages are at most 16,000 bytes of text
    ben.open(ana.send(ben, too_big))


def test_sessions_survive_storage() -> None:
    ana, ben = pair()
    ben.open(ana.send(ben, ana.message(ben, 1)))
    for side in (ana, ben):
        session = side.sessions[CONN]
        assert Session.from_wire(unpack(pack(session.to_wire()))) == session


def test_a_bundle_carries_its_signed_pre_key() -> None:
    ben = Side(2)
    bundle = KeyBundle(ben.key.public, "https://node.example", None, ben.prekey.public)
    env = sign(ben.identity, bundle, created_at=NOW, expires_at=NOW + 86_400)
    assert len(env.raw) <= 521
    opened = open_signed(env.raw, context=Context.KEY_BUNDLE, now=NOW)
    assert opened.body == bundle
    three = sign(ben.identity, KeyBundle(ben.key.public), created_at=NOW, expires_at=NOW + 86_400)
    assert len(unpack(three.raw[97:])[3]) == 3  # type: ignore[index, arg-type]
    same = bytes(ben.key.public)
    with pytest.raises(InvalidValue):  # the signed pre-key MUST differ from the bundle key (spec §4.3)
        KeyBundle.from_wire([same, None, None, same])
    with pytest.raises(InvalidValue):
        KeyBundle.from_wire([same, None, None, same[:31]])


# --- the receive path raises only RemoteError (STYLE habit 5) ---------------------------------

LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.binary(max_size=40), st.text(max_size=8))
# Frames two arrays deep at most: enough to reach every check of spec §14.5 step 2.
FRAMES = st.one_of(
    LEAVES,
    st.lists(st.one_of(LEAVES, st.lists(st.one_of(LEAVES, st.lists(LEAVES, max_size=5)), max_size=5)), max_size=5),
)


def _outer(frame: bytes, to: Side) -> bytes:
    """``frame`` under a valid outer seal, so the frame and ratchet layers are what is exercised."""
    return _encrypt(pad(frame), bytes(to.id), NOW - NOW % 3600, bytes(to.key.public), bytes([9]) * 32, bytes(24), 2).raw


@settings(max_examples=200, deadline=None)
@given(FRAMES, st.booleans())
def test_any_frame_inside_a_valid_outer_seal_raises_only_remote_errors(frame: Any, known: bool) -> None:
    ana, ben = pair()
    if known:  # half the time, Ben holds a session for the frame's connection, if it has one
        ben.open(ana.send(ben, ana.message(ben, 1)))
    data = _outer(pack(frame), ben)
    with pytest.raises(RemoteError):
        ben.open(data, keep=False)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 255), st.booleans())
def test_any_flipped_byte_of_the_frame_is_refused(index: int, mask: int, agreement: bool) -> None:
    ana, ben = pair()
    if not agreement:
        ben.open(ana.send(ben, ana.message(ben, 1)))
        ana.open(ben.send(ana, ben.message(ana, 1)))
    raw = ana.send(ben, ana.message(ben, 2))
    frame = bytearray(_frame_of(raw, ben))
    frame[index % len(frame)] ^= mask
    before = dict(ben.sessions), list(ben.one_times)
    with pytest.raises(RemoteError):
        ben.open(_outer(bytes(frame), ben))
    assert (dict(ben.sessions), list(ben.one_times)) == before


@given(FRAMES)
def test_a_stored_state_that_is_not_one_is_schema_invalid(value: Any) -> None:
    with pytest.raises(SchemaError):
        Session.from_wire([CONN, None, bytes(32), value])


def _frame_of(raw: bytes, to: Side) -> bytes:
    sealed = parse_sealed(raw)
    p = sealed.payload
    key = _derive(to.key.shared(EncryptionKey(p[33:65])), p[33:65], p[1:33], 2)
    return unpad(aead_decrypt(key, p[65:89], p[89:], _aad(bytes(sealed.mailbox), sealed.hour, p[:65])))


def test_a_send_repeated_from_a_rolled_back_state_reuses_no_nonce() -> None:
    # A crash between sealing and saving, or a stale draft, seals again from the same state with
    # the same message key (and here even the same ratchet secret); the random message nonce
    # (spec §14.4) keeps the two keystreams apart, so the XOR of the ciphertexts is not the
    # XOR of the plaintexts.
    ana, ben = pair()
    stale = ana.sessions[CONN]
    texts = [ana.message(ben, 1, "a" * 40), ana.message(ben, 1, "b" * 40)]
    frames: list[Any] = [
        unpack(_frame_of(seal2(m, stale, ben.key.public, fresh=bytes([7]) * 32)[0].raw, ben)) for m in texts
    ]
    (_, head1, c1), (_, head2, c2) = frames
    assert head1 == head2  # the same header: the same message key
    assert c1[:24] != c2[:24]
    body1, body2 = c1[24:64], c2[24:64]
    plain = [m.raw for m in texts]
    assert bytes(x ^ y for x, y in zip(body1, body2, strict=True)) != bytes(
        x ^ y for x, y in zip(plain[0][:40], plain[1][:40], strict=True)
    )
    assert ben.open(seal2(texts[1], stale, ben.key.public)[0].raw, keep=False).inner.raw == texts[1].raw


def test_a_holder_of_the_responders_secrets_cannot_rewrap_the_initiators_message() -> None:
    # Mallory holds ben's bundle-key and signed pre-key secrets and can delay delivery: she opens
    # ana's first message as ben would, then tries to start ben's session on keys of her own, so
    # that ben's answers would be hers to read (spec §14.2).
    ana, ben = pair(one_time=False)
    first = ana.send(ben, ana.message(ben, 1))
    inner = ben.open(first, keep=False).inner
    own = initiate_session(ben.bundle, CONN, None, identity=Identity(b"\x66" * 32), now=NOW)
    assert own.state.agreement is not None
    forged = replace(own.state.agreement, initiator=bytes(ana.id))
    forging = Session(CONN, ben.id, forged.ephemeral, replace(own.state, agreement=forged))
    assert code(lambda: ben.open(seal2(inner, forging, ben.key.public)[0].raw)) == "signature.invalid"
    # Ana's own agreement (Mallory computes its secret with ben's), but a first ratchet key of hers.
    genuine = ana.sessions[CONN].state.agreement
    assert genuine is not None
    secret = prekeys.respond(bytes(ben.id), CONN, genuine, key=ben.key, prekey=ben.prekey, one_time=None)
    state = ratchet.start_initiator(secret, bytes(ben.prekey.public), genuine, first=b"\x55" * 32)
    rewrapped = seal2(inner, Session(CONN, ben.id, genuine.ephemeral, state), ben.key.public)[0].raw
    assert code(lambda: ben.open(rewrapped)) == "signature.invalid"
    assert ben.sessions == {}
    # Once ben holds ana's session, the same re-wrap is refused too, and ana's message opens.
    assert ben.open(first).pending.peer == ana.id
    assert code(lambda: ben.open(rewrapped)) == "signature.invalid"
    assert ben.open(ana.send(ben, ana.message(ben, 2))).inner.body.seq == 2  # type: ignore[union-attr]


def test_a_bundle_with_a_signed_pre_key_lives_at_most_60_days() -> None:
    # Its pre-key's secret is kept until the bundle expires (spec §14.1), so the bundle is short-lived.
    ben = Side(2)
    with_prekey = KeyBundle(ben.key.public, prekey=ben.prekey.public)
    day = 86_400
    ok = sign(ben.identity, with_prekey, created_at=NOW - day, expires_at=NOW - day + 60 * day)
    assert open_signed(ok.raw, context=Context.KEY_BUNDLE, now=NOW).body == with_prekey
    with pytest.raises(InvalidValue):
        sign(ben.identity, with_prekey, created_at=NOW - day, expires_at=NOW - day + 60 * day + 1)
    without = sign(ben.identity, KeyBundle(ben.key.public), created_at=NOW - day, expires_at=NOW + 300 * day)
    assert open_signed(without.raw, context=Context.KEY_BUNDLE, now=NOW).body == KeyBundle(ben.key.public)


def test_a_session_is_kept_only_when_the_connection_rules_take_its_first_message() -> None:
    # Spec §14.5, §14.7: a session starts from a reach-out of an unknown connection, or from the
    # response of the connection's author; the would-be session is kept only through ``accept``.
    ana, ben = pair()
    bundle = sign(
        ana.identity, KeyBundle(ana.key.public, prekey=ana.prekey.public), created_at=NOW, expires_at=NOW + DAY
    )
    reach = sign(
        ana.identity,
        ReachOut(ben.id, CONN, bytes(32), "Hello", bundle=bundle.raw),
        created_at=NOW,
        expires_at=NOW + DAY,
    )
    stray = ben.open(ana.send(ben, ana.message(ben, 1)), keep=False)  # a message that starts a session
    assert stray.started
    assert code(lambda: accept(stray, None)) == "ratchet.no_session"
    assert code(lambda: accept(stray, Connection.start(reach))) == "ratchet.no_session"
    ana, ben = pair()
    opened = ben.open(ana.send(ben, reach), keep=False)
    connection, session = accept(opened, None)
    assert (connection.reacher, connection.author, session.peer) == (ana.id, ben.id, ana.id)
    # The reach-out went by scheme 1; ben starts the session with his response. A message of his
    # starting one instead is refused, and so is ana's own "response".
    ana, ben = Side(1), Side(2)
    ben.sessions[CONN] = initiate_session(ana.bundle, CONN, None, identity=ben.identity, now=NOW)
    answer = sign(ben.identity, Response(ana.id, CONN, True), created_at=NOW, expires_at=NOW + DAY)
    chat = ana.open(ben.send(ana, ben.message(ana, 1)), keep=False)
    assert code(lambda: accept(chat, connection)) == "ratchet.no_session"
    opened = ana.open(ben.send(ana, answer), keep=False)
    accepted, session = accept(opened, connection)
    assert accepted.state.value == "accepted" and session.peer == ben.id
    assert code(lambda: accept(opened, accepted)) == "connection.duplicate"


def test_a_session_starts_only_from_an_unexpired_key_bundle_with_a_signed_pre_key() -> None:
    # R and S come from the responder's verified bundle (spec §14.2), never from loose keys.
    ana, ben = Side(1), Side(2)
    session = initiate_session(ben.bundle, CONN, None, identity=ana.identity, now=NOW)
    assert session.peer == ben.id and session.state.remote == bytes(ben.prekey.public)
    expired = sign(
        ben.identity, KeyBundle(ben.key.public, prekey=ben.prekey.public), created_at=NOW - DAY, expires_at=NOW
    )
    plain = sign(ben.identity, KeyBundle(ben.key.public), created_at=NOW - DAY, expires_at=NOW + DAY)
    for bundle in (expired, plain, ben.message(ana, 1)):
        with pytest.raises(InvalidValue):
            initiate_session(bundle, CONN, None, identity=ana.identity, now=NOW)


def test_the_initiator_keeps_no_trace_of_its_agreement_secret() -> None:
    # The ephemeral secret e is used for SK and then forgotten (spec §14.2): a stolen state must
    # not hold it, or every DH term of the agreement could be recomputed from the state alone.
    ana, ben = Side(1), Side(2)
    e = bytes(range(7, 39))
    session = initiate_session(ben.bundle, CONN, None, identity=ana.identity, now=NOW, ephemeral=e)
    kept = pack(session.to_wire())
    assert e not in kept
    assert bytes(x25519_public(e)) in kept  # the public E is in the agreement the header repeats
