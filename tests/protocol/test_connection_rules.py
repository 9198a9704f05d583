"""The support connection's rules (spec §9), with two in-memory peers (STYLE habit 13).

Alice reaches out about Bob's listing: Alice is the reacher, Bob the author. Every envelope is
really signed, so ids are real and duplicates are real duplicates. The last test runs random
sequences of steps from both peers against a model written from spec §9.2 and §9.3.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from peerfed.protocol import (
    TRANSITIONS,
    Agreement,
    Connection,
    ConnectionStateError,
    EncryptionSecret,
    End,
    Envelope,
    Format,
    Identity,
    IllegalSend,
    KeyBundle,
    Kind,
    Listing,
    LocalError,
    Message,
    ReachOut,
    RemoteError,
    Response,
    Side,
    State,
    Terms,
    Timing,
    pack,
    sign,
    unpack,
)

NOW = 1_800_000_000
DAY = 86_400
ALICE = Identity(bytes([0xA1]) * 32)  # the reacher
BOB = Identity(bytes([0xB1]) * 32)  # the listing's author
CAROL = Identity(bytes([0xC1]) * 32)  # neither
CONN = bytes(range(0x10, 0x20))
LISTING_ID = bytes([0x11]) * 32
REACH_CREATED = NOW - DAY
# What ALICE's reach-outs carry (spec §8.2); the state machine does not look inside it.
ALICE_BUNDLE = sign(
    ALICE, KeyBundle(EncryptionSecret(bytes([0xA2]) * 32).public), created_at=NOW - 2 * DAY, expires_at=NOW + 60 * DAY
).raw

T1 = Terms(helps="Someone to listen in the evenings.", formats=("text",), until=NOW + 30 * DAY)  # type: ignore[arg-type]
# Built another way (an enum member, a list) but encoding to the same bytes: identical terms.
T1_AGAIN = Terms(helps="Someone to listen in the evenings.", formats=[Format.TEXT], until=NOW + 30 * DAY)  # type: ignore[arg-type]
T2 = Terms(helps="Practical tips for sleeping.", boundaries=("no advice unless asked",))
T3 = Terms(helps="Someone to listen in the evenings.", formats=(Format.VOICE,), until=NOW + 30 * DAY)
IDENTITY = {Side.REACHER: ALICE, Side.AUTHOR: BOB}
LIVE = (State.REACHED_OUT, State.ACCEPTED, State.AGREED)

_clock = itertools.count(REACH_CREATED + 1)


def reset_clock() -> None:
    """Start the signing clock over, so a replayed hypothesis example signs the same bytes."""
    global _clock
    _clock = itertools.count(REACH_CREATED + 1)


def signed(identity: Identity, body: Any, *, created: int | None = None) -> Envelope:
    """Sign with a fresh created_at each time, so equal bodies still get distinct ids."""
    when = next(_clock) if created is None else created
    return sign(identity, body, created_at=when, expires_at=when + DAY)


def other(side: Side) -> Side:
    return Side.AUTHOR if side is Side.REACHER else Side.REACHER


def to_other(side: Side) -> Any:
    return IDENTITY[other(side)].peer_id


def accept(reply: str | None = None, **kw: Any) -> Envelope:
    return signed(BOB, Response(ALICE.peer_id, CONN, True, reply), **kw)


def decline(**kw: Any) -> Envelope:
    return signed(BOB, Response(ALICE.peer_id, CONN, False), **kw)


def response_from(side: Side, yes: bool) -> Envelope:
    return signed(IDENTITY[side], Response(to_other(side), CONN, yes))


def message(side: Side, seq: int, text: str = "hello") -> Envelope:
    return signed(IDENTITY[side], Message(to_other(side), CONN, seq, text))


def agree(side: Side, version: int, terms: Terms) -> Envelope:
    return signed(IDENTITY[side], Agreement(to_other(side), CONN, version, terms))


def end(side: Side, erase: bool = False) -> Envelope:
    return signed(IDENTITY[side], End(to_other(side), CONN, erase))


REACH = signed(
    ALICE, ReachOut(BOB.peer_id, CONN, LISTING_ID, "Hello, can we talk?", T1, ALICE_BUNDLE), created=REACH_CREATED
)
assert REACH.expires_at == REACH_CREATED + DAY


def start() -> Connection:
    return Connection.start(REACH)


def reached_out() -> Connection:
    return start()


def accepted() -> Connection:
    return start().receive(accept("Yes, gladly."))


def agreed() -> Connection:
    return accepted().receive(agree(Side.REACHER, 1, T1)).receive(agree(Side.AUTHOR, 1, T1))


BUILD = {State.REACHED_OUT: reached_out, State.ACCEPTED: accepted, State.AGREED: agreed}


def refused(conn: Connection, env: Envelope) -> str:
    """Assert ``env`` is refused both ways, changing nothing; return the code."""
    before = dataclasses.replace(conn)
    with pytest.raises(ConnectionStateError) as received:
        conn.receive(env)
    with pytest.raises(IllegalSend) as sent:
        conn.send(env)
    assert conn == before
    assert received.value.code == sent.value.code
    assert isinstance(received.value, RemoteError) and not isinstance(received.value, LocalError)
    assert isinstance(sent.value, LocalError) and not isinstance(sent.value, RemoteError)
    return received.value.code


def every_next_step() -> list[Envelope]:
    """A fresh envelope for every step type from each side."""
    steps = [accept(), decline(), response_from(Side.REACHER, True), response_from(Side.REACHER, False)]
    for side in Side:
        steps += [message(side, 99), agree(side, 1, T1), agree(side, 2, T2), end(side), end(side, True)]
    return steps


# --- starting ------------------------------------------------------------------------------


def test_a_reach_out_starts_a_connection_between_its_two_peers() -> None:
    conn = start()
    assert conn.state is State.REACHED_OUT
    assert (conn.id, conn.reacher, conn.author, conn.listing) == (
        CONN,
        ALICE.peer_id,
        BOB.peer_id,
        LISTING_ID,
    )
    assert conn.reach_out_expires == REACH.expires_at
    assert conn.seen == frozenset({REACH.id})
    assert conn.in_force is None and conn.round == 0  # terms in a reach-out start no round
    assert conn.side_of(ALICE.peer_id) is Side.REACHER
    assert conn.side_of(BOB.peer_id) is Side.AUTHOR
    assert conn.side_of(CAROL.peer_id) is None


def test_only_a_reach_out_to_someone_else_starts_a_connection() -> None:
    with pytest.raises(ConnectionStateError):
        Connection.start(accept())
    listing = Listing(Kind.OFFER, ("grief",), ("en",), (Format.TEXT,), Timing.SOON, "I can listen.")
    with pytest.raises(ConnectionStateError):
        Connection.start(signed(BOB, listing))
    to_self = signed(ALICE, ReachOut(ALICE.peer_id, CONN, LISTING_ID, "Hello, me.", bundle=ALICE_BUNDLE))
    with pytest.raises(ConnectionStateError) as info:
        Connection.start(to_self)
    assert info.value.code == "connection.not_allowed"


# --- closed is closed ----------------------------------------------------------------------

CLOSINGS = {
    "declined": lambda: (reached_out(), decline()),
    "reacher withdraws the reach-out": lambda: (reached_out(), end(Side.REACHER)),
    "author ends before answering": lambda: (reached_out(), end(Side.AUTHOR)),
    "reacher ends after acceptance": lambda: (accepted(), end(Side.REACHER, True)),
    "author ends after acceptance": lambda: (accepted(), end(Side.AUTHOR)),
    "reacher ends after agreement": lambda: (agreed(), end(Side.REACHER)),
    "author ends after agreement": lambda: (agreed(), end(Side.AUTHOR, True)),
}


@pytest.mark.parametrize("closing", list(CLOSINGS.values()), ids=list(CLOSINGS))
def test_nothing_is_accepted_after_an_end_or_a_decline(closing: Any) -> None:
    conn, last = closing()
    closed = conn.receive(last)
    assert closed.state in (State.DECLINED, State.ENDED)
    assert not closed.live
    assert closed.allowed(Side.REACHER) == closed.allowed(Side.AUTHOR) == frozenset()
    for env in every_next_step():
        assert refused(closed, env) == "connection.closed"
    # The closing message itself, again, is a duplicate; the reach-out is never a step.
    assert refused(closed, last) == "connection.duplicate"
    assert refused(closed, REACH) == "connection.not_allowed"


# --- ending --------------------------------------------------------------------------------


@pytest.mark.parametrize("erase", [False, True])
@pytest.mark.parametrize("side", list(Side))
@pytest.mark.parametrize("state", LIVE)
def test_either_peer_can_end_from_every_live_state(state: State, side: Side, erase: bool) -> None:
    conn = BUILD[state]()
    assert conn.state is state
    assert "end" in conn.allowed(side)
    env = end(side, erase)
    after = conn.receive(env)
    assert after.state is State.ENDED
    assert after.ended_by is side
    assert after.erase_requested is erase
    assert after.in_force == conn.in_force
    assert after.seen == conn.seen | {env.id}
    assert conn.send(env) == after


# --- before acceptance ---------------------------------------------------------------------


def test_before_acceptance_the_reacher_can_send_nothing_but_end() -> None:
    conn = reached_out()
    assert conn.allowed(Side.REACHER) == frozenset({"end"})
    assert conn.allowed(Side.AUTHOR) == frozenset({"accept", "decline", "end"})
    for env in [
        message(Side.REACHER, 1),
        agree(Side.REACHER, 1, T1),
        response_from(Side.REACHER, True),
        response_from(Side.REACHER, False),
    ]:
        assert refused(conn, env) == "connection.not_allowed"
    # The author must answer before talking or proposing terms.
    for env in [message(Side.AUTHOR, 1), agree(Side.AUTHOR, 1, T1)]:
        assert refused(conn, env) == "connection.not_allowed"
    assert conn.receive(end(Side.REACHER)).state is State.ENDED


def test_the_author_answers_once() -> None:
    conn = accepted()
    assert refused(conn, accept()) == "connection.not_allowed"
    assert refused(conn, decline()) == "connection.not_allowed"


def test_a_response_after_the_reach_out_expired_is_refused() -> None:
    conn = reached_out()
    assert refused(conn, accept(created=REACH.expires_at + 1)) == "connection.not_allowed"
    assert refused(conn, decline(created=REACH.expires_at + 1)) == "connection.not_allowed"
    assert conn.receive(accept(created=REACH.expires_at)).state is State.ACCEPTED


def test_messages_from_outside_the_connection_are_refused() -> None:
    conn = accepted()
    outsiders = [
        signed(BOB, Message(ALICE.peer_id, bytes(16), 1, "wrong connection")),
        signed(CAROL, Message(ALICE.peer_id, CONN, 1, "a third peer")),
        signed(BOB, Message(CAROL.peer_id, CONN, 1, "to a third peer")),
        signed(BOB, Message(BOB.peer_id, CONN, 1, "to myself")),
        REACH,
        signed(ALICE, ReachOut(BOB.peer_id, CONN, LISTING_ID, "Hello again", bundle=ALICE_BUNDLE)),
    ]
    for env in outsiders:
        assert refused(conn, env) == "connection.not_allowed"


def test_a_reused_sequence_number_is_a_duplicate_per_sender() -> None:
    conn = accepted().receive(message(Side.AUTHOR, 1))
    assert refused(conn, message(Side.AUTHOR, 1, "other words")) == "connection.duplicate"
    conn = conn.receive(message(Side.REACHER, 1))  # each sender counts on its own
    conn = conn.receive(message(Side.AUTHOR, 5)).receive(message(Side.AUTHOR, 3))  # gaps and disorder are fine
    assert conn.seqs == {(Side.AUTHOR, 1), (Side.REACHER, 1), (Side.AUTHOR, 5), (Side.AUTHOR, 3)}


# --- agreements ----------------------------------------------------------------------------


def test_one_signature_alone_puts_nothing_in_force() -> None:
    conn = accepted().receive(agree(Side.REACHER, 1, T1))
    assert conn.in_force is None
    assert conn.state is State.ACCEPTED
    assert conn.round == 1


def test_two_different_terms_put_nothing_in_force() -> None:
    conn = accepted().receive(agree(Side.REACHER, 1, T1)).receive(agree(Side.AUTHOR, 1, T3))
    assert conn.in_force is None
    assert conn.state is State.ACCEPTED
    # Neither may sign round 1 again; the way on is round 2.
    assert refused(conn, agree(Side.REACHER, 1, T3)) == "connection.not_allowed"
    assert refused(conn, agree(Side.AUTHOR, 1, T1)) == "connection.not_allowed"
    conn = conn.receive(agree(Side.AUTHOR, 2, T3)).receive(agree(Side.REACHER, 2, T3))
    assert conn.in_force == (2, T3)
    assert conn.state is State.AGREED


@pytest.mark.parametrize("first", list(Side))
def test_the_same_version_signed_by_both_with_identical_terms_is_in_force(first: Side) -> None:
    conn = accepted().receive(agree(first, 1, T1)).receive(agree(other(first), 1, T1_AGAIN))
    assert conn.in_force == (1, T1)
    assert conn.state is State.AGREED
    assert conn.allowed(Side.REACHER) == conn.allowed(Side.AUTHOR) == frozenset({"agreement", "message", "end"})


def test_a_new_version_supersedes_only_once_both_sign_it() -> None:
    conn = agreed()
    assert conn.in_force == (1, T1)
    conn = conn.receive(agree(Side.AUTHOR, 2, T2))
    assert conn.in_force == (1, T1) and conn.state is State.AGREED
    conn = conn.receive(agree(Side.REACHER, 2, T3))  # a different answer: round 2 unresolved
    assert conn.in_force == (1, T1) and conn.state is State.AGREED
    conn = conn.receive(agree(Side.REACHER, 3, T2))
    assert conn.in_force == (1, T1)
    conn = conn.receive(message(Side.AUTHOR, 1))  # talking does not touch the terms
    assert conn.in_force == (1, T1)
    conn = conn.receive(agree(Side.AUTHOR, 3, T2))
    assert conn.in_force == (3, T2) and conn.state is State.AGREED


def test_agreement_versions_out_of_turn_are_refused() -> None:
    conn = accepted()
    assert refused(conn, agree(Side.REACHER, 2, T1)) == "connection.not_allowed"
    conn = conn.receive(agree(Side.REACHER, 1, T1))
    assert refused(conn, agree(Side.AUTHOR, 3, T1)) == "connection.not_allowed"
    assert refused(conn, agree(Side.REACHER, 1, T1)) == "connection.not_allowed"  # signs a round once
    conn = conn.receive(agree(Side.REACHER, 2, T2))  # but may propose the next one
    assert refused(conn, agree(Side.AUTHOR, 1, T1)) == "connection.not_allowed"  # round 1 is gone
    assert conn.receive(agree(Side.AUTHOR, 2, T2)).in_force == (2, T2)


# --- a refused step changes nothing --------------------------------------------------------


def test_a_refused_step_leaves_no_trace() -> None:
    early = message(Side.REACHER, 1, "Are you there?")
    conn = reached_out()
    assert refused(conn, early) == "connection.not_allowed"
    # The refused message was not recorded: once accepted, the same envelope and seq are fine.
    conn = conn.receive(accept())
    after = conn.receive(early)
    assert early.id in after.seen and (Side.REACHER, 1) in after.seqs


def test_the_step_after_a_refused_one_behaves_as_if_it_never_happened() -> None:
    base = accepted().receive(agree(Side.REACHER, 1, T1))
    attempts = [
        agree(Side.AUTHOR, 3, T1),
        agree(Side.REACHER, 1, T2),
        accept(),
        signed(CAROL, Agreement(ALICE.peer_id, CONN, 1, T1)),
        agree(Side.REACHER, 1, T1),
    ]
    good = agree(Side.AUTHOR, 1, T1)
    expected = base.receive(good)
    for bad in attempts:
        refused(base, bad)
        assert base.receive(good) == expected
        assert base.send(good) == expected
    assert expected.in_force == (1, T1)


# --- random sequences against a model of spec §9.2 and §9.3 ----------------------------------


# The table of spec §9.1, written out again rather than read from TRANSITIONS.
SPEC_STEPS = {
    State.REACHED_OUT: {
        ("accept", Side.AUTHOR),
        ("decline", Side.AUTHOR),
        ("end", Side.REACHER),
        ("end", Side.AUTHOR),
    },
    State.ACCEPTED: {(step, side) for step in ("agreement", "message", "end") for side in Side},
    State.AGREED: {(step, side) for step in ("agreement", "message", "end") for side in Side},
}


@dataclass
class Model:
    """What spec §9 says the state is, kept independently of Connection."""

    state: State = State.REACHED_OUT
    round: int = 0
    signatures: dict[Side, bytes] = field(default_factory=dict)
    in_force: tuple[int, bytes] | None = None
    seen: set[bytes] = field(default_factory=lambda: {REACH.id})
    seqs: set[tuple[Side, int]] = field(default_factory=set)

    def step(self, env: Envelope) -> str | None:
        """Apply ``env`` if the spec allows it; return the refusal code otherwise."""
        body = env.body
        side = {ALICE.peer_id: Side.REACHER, BOB.peer_id: Side.AUTHOR}.get(env.author)
        if (
            isinstance(body, ReachOut)
            or not isinstance(body, (Response, Agreement, Message, End))
            or body.connection != CONN
            or side is None
            or body.recipient != to_other(side)
        ):
            return "connection.not_allowed"
        if env.id in self.seen:
            return "connection.duplicate"
        if self.state in (State.DECLINED, State.ENDED):
            return "connection.closed"
        name = ("accept" if body.accept else "decline") if isinstance(body, Response) else body.type_name
        if (name, side) not in SPEC_STEPS[self.state]:
            return "connection.not_allowed"
        if isinstance(body, Response) and env.created_at > REACH.expires_at:
            return "connection.not_allowed"
        if isinstance(body, Message) and (side, body.seq) in self.seqs:
            return "connection.duplicate"
        if isinstance(body, Agreement):
            if body.version == self.round + 1:
                self.signatures = {}
            elif body.version != self.round or side in self.signatures:
                return "connection.not_allowed"
            self.round = body.version
            self.signatures[side] = pack(body.terms.to_wire())
            if len(self.signatures) == 2 and len(set(self.signatures.values())) == 1:
                self.in_force = (body.version, self.signatures[side])
                self.state = State.AGREED
        elif isinstance(body, Message):
            self.seqs.add((side, body.seq))
        elif isinstance(body, Response):
            self.state = State.ACCEPTED if body.accept else State.DECLINED
        else:
            self.state = State.ENDED
        self.seen.add(env.id)
        return None


TERMS_CHOICES = [T1, T1_AGAIN, T2, T3]
sides = st.sampled_from(list(Side))
# An agreement is a proposal (round + 1), a countersignature (round, with the terms the other side
# signed, or different ones) or out of turn; choosing among those, rather than among raw version
# numbers, lets random sequences reach terms in force often. Kinds are weighted by repetition.
KINDS = ["respond"] * 2 + ["message"] * 2 + ["agreement"] * 4 + ["end", "replay", "late", "outsider"]
HOW = ["propose", "countersign", "countersign", "counter-differently", "stale"]


@st.composite
def actions(draw: st.DrawFn) -> tuple[Any, ...]:
    kind = draw(st.sampled_from(KINDS))
    if kind == "respond":
        return (kind, draw(sides), draw(st.booleans()))
    if kind == "message":
        return (kind, draw(sides), draw(st.integers(1, 4)))
    if kind == "agreement":
        return (kind, draw(sides), draw(st.sampled_from(HOW)), draw(st.integers(0, 3)))
    if kind == "end":
        return (kind, draw(sides), draw(st.booleans()))
    if kind == "replay":
        return (kind, draw(st.integers(0, 63)))
    if kind == "late":
        return (kind, draw(st.booleans()), draw(st.booleans()))
    return (kind, draw(st.integers(0, 3)))


def _agreement(conn: Connection, side: Side, how: str, choice: int) -> Envelope:
    terms = TERMS_CHOICES[choice]
    if how == "propose":
        return agree(side, conn.round + 1, terms)
    if how == "stale":
        return agree(side, max(1, conn.round + (2 if choice % 2 else -1)), terms)
    theirs = [t for s, t in conn.round_terms if s is other(side)]
    signed_terms = Terms.from_wire(unpack(theirs[0])) if theirs else T1
    terms = (T2 if signed_terms != T2 else T3) if how == "counter-differently" else signed_terms
    return agree(side, max(1, conn.round), terms)


def build(action: tuple[Any, ...], conn: Connection, history: list[Envelope]) -> Envelope:
    kind = action[0]
    if kind == "respond":
        return response_from(action[1], action[2])
    if kind == "message":
        return message(action[1], action[2])
    if kind == "agreement":
        return _agreement(conn, action[1], action[2], action[3])
    if kind == "end":
        return end(action[1], action[2])
    if kind == "replay":
        back: int = action[1]
        return history[back % len(history)]
    if kind == "late":  # a response created exactly at, or just after, the reach-out's expiry
        when = REACH.expires_at + (1 if action[1] else 0)
        return accept(created=when) if action[2] else decline(created=when)
    outsider: int = action[1]
    return [
        signed(BOB, End(ALICE.peer_id, bytes(16))),
        signed(CAROL, End(ALICE.peer_id, CONN)),
        signed(ALICE, End(ALICE.peer_id, CONN)),
        REACH,
    ][outsider]


ACCEPT = ("respond", Side.AUTHOR, True)


@given(st.sampled_from([[], [ACCEPT], [ACCEPT]]), st.lists(actions(), min_size=4, max_size=40))
def test_random_sequences_follow_the_spec_and_keep_the_invariants(
    opening: list[tuple[Any, ...]], rest: list[tuple[Any, ...]]
) -> None:
    steps = opening + rest
    reset_clock()
    conn = start()
    model = Model()
    history: list[Envelope] = [REACH]
    for action in steps:
        env = build(action, conn, history)
        history.append(env)
        before = conn
        expected = model.step(env)
        if expected is not None:
            assert refused(conn, env) == expected, action
        else:
            conn = before.receive(env)
            assert before.send(env) == conn
        # The implementation and the spec model agree on everything observable.
        assert conn.state is model.state
        assert conn.round == model.round
        assert conn.seen == model.seen
        assert conn.seqs == model.seqs
        in_force = None if conn.in_force is None else (conn.in_force[0], pack(conn.in_force[1].to_wire()))
        assert in_force == model.in_force
        # Invariants, stated directly.
        if conn is not before:
            step = _step_of(env, before)
            allowed = None if step is None else TRANSITIONS[before.state].get(step)
            assert conn.state is allowed or (conn.state is State.AGREED and isinstance(env.body, Agreement))
            assert before.live
            assert conn.seen == before.seen | {env.id}
            assert conn.round >= before.round
        if conn.in_force != before.in_force:
            body = env.body
            assert isinstance(body, Agreement) and body.version == conn.round == before.round
            assert len(conn.round_terms) == 2
            assert {s for s, _ in conn.round_terms} == set(Side)
            assert conn.round_terms[0][1] == conn.round_terms[1][1] == pack(body.terms.to_wire())
            assert conn.in_force == (body.version, body.terms)
            assert before.in_force is None or before.in_force[0] < body.version
        if conn.live:
            assert (conn.state is State.AGREED) == (conn.in_force is not None)
        if not before.live:
            assert conn == before
        if conn.in_force != before.in_force:
            event("terms came into force")
    event(f"ended {conn.state.value}")


def _step_of(env: Envelope, conn: Connection) -> tuple[str, Side] | None:
    body = env.body
    side = conn.side_of(env.author)
    if side is None:
        return None
    if isinstance(body, Response):
        return ("accept" if body.accept else "decline", side)
    return (body.type_name, side)
