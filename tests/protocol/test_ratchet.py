"""The double ratchet (spec §14.3, §14.6): convergence under loss and reordering, forward secrecy,
post-compromise security, and the bounds on skipped keys."""

from __future__ import annotations

import dataclasses
import functools
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerfed.protocol import EncryptionSecret, Identity, RemoteError
from peerfed.protocol.crypto import aead_encrypt, x25519, x25519_public
from peerfed.protocol.encoding import pack, unpack
from peerfed.protocol.errors import InvalidValue
from peerfed.protocol.prekeys import initiate, respond
from peerfed.protocol.ratchet import (
    MAX_COUNTER,
    MAX_SKIP,
    MAX_SKIPPED,
    Header,
    RatchetState,
    decrypt,
    encrypt,
    kdf_chain,
    kdf_root,
    start_initiator,
    start_responder,
)

MAILBOX = bytes([7]) * 32
CONN = bytes(range(16))
CTX = b"test-context"
INITIATOR = Identity(bytes([9]) * 32)
KEY, PREKEY, ONE_TIME = (EncryptionSecret(bytes([b]) * 32) for b in (0x41, 0x42, 0x43))
_fresh = itertools.count(1)


def fresh() -> bytes:
    """A distinct secret each call; tests need no real randomness, only no repetition."""
    return next(_fresh).to_bytes(32, "big")


def start() -> tuple[RatchetState, RatchetState]:
    first = fresh()
    secret, agreement = initiate(
        MAILBOX, CONN, KEY.public, PREKEY.public, ONE_TIME.public,
        identity=INITIATOR, first_key=x25519_public(first), ephemeral=fresh(),
    )  # fmt: skip
    theirs = respond(MAILBOX, CONN, agreement, key=KEY, prekey=PREKEY, one_time=ONE_TIME)
    assert theirs == secret
    return start_initiator(secret, bytes(PREKEY.public), agreement, first=first), start_responder(theirs, PREKEY.secret)


Wire = tuple[Header, bytes, bytes]  # header, ciphertext, the plaintext it should open to


def send(state: RatchetState, text: bytes) -> tuple[RatchetState, Wire]:
    state, header, ciphertext = encrypt(state, text, CTX, fresh=fresh(), nonce=fresh()[:24])
    return state, (header, ciphertext, text)


def code(action: object) -> str:
    with pytest.raises(RemoteError) as info:
        action()  # type: ignore[operator]
    return info.value.code


# One step of a schedule: who sends, or which in-flight message is delivered, or dropped.
STEP = st.one_of(
    st.tuples(st.just("send"), st.sampled_from([0, 1])),
    st.tuples(st.just("deliver"), st.integers(0, 1000)),
    st.tuples(st.just("drop"), st.integers(0, 1000)),
    st.tuples(st.just("replay"), st.integers(0, 1000)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(STEP, max_size=80))
def test_random_schedules_converge_and_never_reuse_a_message_key(schedule: list[tuple[str, int]]) -> None:
    states = list(start())
    flight: list[tuple[int, Wire]] = []  # (receiver, message)
    opened: list[tuple[int, Wire]] = []
    seen_headers: set[tuple[int, bytes, int]] = set()
    count = 0
    for action, arg in schedule:
        if action == "send":
            sender = arg
            if sender == 1 and states[1].remote is None:
                continue  # the responder cannot send before it opened something (spec §14.3)
            count += 1
            states[sender], wire = send(states[sender], b"m%d" % count)
            key = (sender, wire[0].ratchet_key, wire[0].n)
            assert key not in seen_headers  # each (ratchet key, n) names one message key, used once
            seen_headers.add(key)
            flight.append((1 - sender, wire))
        elif action in ("deliver", "drop") and flight:
            receiver, wire = flight.pop(arg % len(flight))
            if action == "deliver":
                states[receiver], text = decrypt(states[receiver], wire[0], wire[1], CTX)
                assert text == wire[2]
                opened.append((receiver, wire))
        elif action == "replay" and opened:
            receiver, wire = opened[arg % len(opened)]
            again = functools.partial(decrypt, states[receiver], wire[0], wire[1], CTX)
            # Used once: refused (an old chain past the 16 remembered fails to decrypt instead).
            assert code(again) in ("ratchet.key_used", "seal.decrypt_failed")
    # Whatever is still in flight opens, in any order: nothing was lost but what was dropped.
    for receiver, wire in reversed(flight):
        states[receiver], text = decrypt(states[receiver], wire[0], wire[1], CTX)
        assert text == wire[2]
    for state in states:
        assert RatchetState.from_wire(unpack(pack(state.to_wire()))) == state


def test_a_replayed_message_is_key_used_and_changes_nothing() -> None:
    a, b = start()
    a, wire = send(a, b"one")
    b, _ = decrypt(b, wire[0], wire[1], CTX)
    assert code(lambda: decrypt(b, wire[0], wire[1], CTX)) == "ratchet.key_used"
    b, back = send(b, b"two")
    a, _ = decrypt(a, back[0], back[1], CTX)
    a, later = send(a, b"three")
    b, _ = decrypt(b, later[0], later[1], CTX)
    # The first chain is retired now; its used key is named as such.
    assert code(lambda: decrypt(b, wire[0], wire[1], CTX)) == "ratchet.key_used"


def test_forward_secrecy_a_used_key_is_gone_from_state_and_long_term_keys() -> None:
    a, b = start()
    a, captured = send(a, b"secret words")
    b, _ = decrypt(b, captured[0], captured[1], CTX)
    for _ in range(2):  # a couple of round trips later
        b, w = send(b, b"x")
        a, _ = decrypt(a, w[0], w[1], CTX)
        a, w = send(a, b"y")
        b, _ = decrypt(b, w[0], w[1], CTX)
    # The thief takes the device: the current state, and the bundle and signed pre-key secrets
    # (the one-time pre-key's was deleted when the session began, spec §14.5 step 9).
    assert code(lambda: decrypt(b, captured[0], captured[1], CTX)) in ("ratchet.key_used", "seal.decrypt_failed")
    agreement = captured[0].agreement
    assert agreement is not None
    without = respond(MAILBOX, CONN, dataclasses.replace(agreement), key=KEY, prekey=PREKEY, one_time=None)
    rebuilt = start_responder(without, PREKEY.secret)
    assert code(lambda: decrypt(rebuilt, captured[0], captured[1], CTX)) == "seal.decrypt_failed"
    # No message key of the session is stored once used: nothing was skipped here.
    assert b.skipped == () and a.skipped == ()


def test_post_compromise_security_a_copied_state_stops_opening_after_one_round_trip() -> None:
    a, b = start()
    a, w = send(a, b"hello")
    b, _ = decrypt(b, w[0], w[1], CTX)
    stolen = b  # the attacker copies Bob's whole state
    a, w = send(a, b"still readable")
    spy, text = decrypt(stolen, w[0], w[1], CTX)
    assert text == b"still readable"  # until the next round trip, the copy can follow
    b, _ = decrypt(b, w[0], w[1], CTX)
    b, w = send(b, b"bob answers with a fresh ratchet key")
    a, _ = decrypt(a, w[0], w[1], CTX)
    a, w = send(a, b"after the round trip")
    assert code(lambda: decrypt(spy, w[0], w[1], CTX)) == "seal.decrypt_failed"
    b, text = decrypt(b, w[0], w[1], CTX)
    assert text == b"after the round trip"


def test_more_than_100_skipped_in_one_chain_is_refused_and_changes_nothing() -> None:
    a, b = start()
    sent = []
    for i in range(MAX_SKIP + 2):
        a, w = send(a, b"%d" % i)
        sent.append(w)
    b0 = b
    assert code(lambda: decrypt(b0, sent[-1][0], sent[-1][1], CTX)) == "ratchet.too_far_ahead"
    b, text = decrypt(b, sent[-2][0], sent[-2][1], CTX)  # exactly 100 skipped: taken
    assert text == b"%d" % MAX_SKIP and len(b.skipped) == MAX_SKIP
    b, text = decrypt(b, sent[-1][0], sent[-1][1], CTX)
    for w in sent[:-2]:  # every skipped one opens late, once
        b, text = decrypt(b, w[0], w[1], CTX)
        assert text == w[2]
    assert b.skipped == ()


def test_a_closing_chain_more_than_100_behind_is_refused() -> None:
    a, b = start()
    first = None
    for i in range(MAX_SKIP + 2):
        a, w = send(a, b"%d" % i)
        first = first or w
    assert first is not None
    b, _ = decrypt(b, first[0], first[1], CTX)  # only n = 0 arrives; 101 are lost
    b, w = send(b, b"reply")
    a, _ = decrypt(a, w[0], w[1], CTX)
    a, w = send(a, b"new chain")  # pn = 102: the closing chain would leave 101 to skip
    assert code(lambda: decrypt(b, w[0], w[1], CTX)) == "ratchet.too_far_ahead"


def test_at_most_1000_skipped_keys_are_kept_and_the_oldest_go_first() -> None:
    a, b = start()
    early: list[Wire] = []
    for _round in range(11):
        chain = []
        for i in range(MAX_SKIP + 1):
            a, w = send(a, b"%d" % i)
            chain.append(w)
        b, _ = decrypt(b, chain[-1][0], chain[-1][1], CTX)  # 100 of this chain are skipped
        early.append(chain[0])
        b, w = send(b, b"ack")
        a, _ = decrypt(a, w[0], w[1], CTX)
    assert len(b.skipped) == MAX_SKIPPED
    assert code(lambda: decrypt(b, early[0][0], early[0][1], CTX)) == "ratchet.key_used"  # dropped
    b, text = decrypt(b, early[-1][0], early[-1][1], CTX)  # a recent one is still kept
    assert text == b"0"


def test_no_state_keeps_its_ratchet_secret_past_a_dh_step() -> None:
    # The responder's first ratchet secret is its signed pre-key's: once its first DH step is
    # taken, a stolen state no longer holds it (spec §14.3 step 4, §14.8).
    a, b = start()
    a, w = send(a, b"hello")
    assert b.own == PREKEY.secret
    b, _ = decrypt(b, w[0], w[1], CTX)
    assert b.own is None
    # Whoever holds the signed pre-key's secret and a copy of that state writes a valid message on
    # a ratchet key of its own: the state cannot take that DH step, so it is refused.
    d = fresh()
    _, recv = kdf_root(b.root, x25519(PREKEY.secret, x25519_public(d)))
    forged = Header(x25519_public(d), 1, 0)
    nonce = bytes(24)
    body = nonce + aead_encrypt(kdf_chain(recv)[0], nonce, b"take over", CTX + pack(forged.to_wire()))
    assert code(lambda: decrypt(b, forged, body, CTX)) == "seal.decrypt_failed"
    # And the run goes on: b answers on a fresh secret, a steps once and drops its own too.
    b, w = send(b, b"hi")
    assert b.own is not None
    a, _ = decrypt(a, w[0], w[1], CTX)
    assert a.own is None
    a, w = send(a, b"again")
    b, plain = decrypt(b, w[0], w[1], CTX)
    assert plain == b"again"


def test_a_sending_chain_stops_below_two_to_the_32() -> None:
    # Message numbers are u32 on the wire (spec §14.3): a chain at the last number cannot send,
    # rather than wrap around to a number, and so a message key, already used.
    a, _ = start()
    a, _ = send(a, b"first")
    assert a.send is not None
    worn = dataclasses.replace(a, ns=MAX_COUNTER)
    with pytest.raises(InvalidValue):
        encrypt(worn, b"one too many", CTX, fresh=fresh(), nonce=fresh()[:24])
    one_below = dataclasses.replace(a, ns=MAX_COUNTER - 1)
    _, header, _ = encrypt(one_below, b"the last one", CTX, fresh=fresh(), nonce=fresh()[:24])
    assert header.n == MAX_COUNTER - 1
