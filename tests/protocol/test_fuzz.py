"""The receive path raises one family of errors (STYLE habit 5).

Arbitrary bytes into every decoder raise only RemoteError subclasses, or decode. Random bytes
alone die at the first check (length, version, signature), so the strategies here also start
from valid encodings and garble them: byte-level splices, inserts and deletions, and
value-level mutations of the msgpack tree, re-signed with ``_frame`` so the signature holds
over the garbled payload and the decoding and schema layers are what is exercised.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from peerfed.protocol import (
    Agreement,
    ClientAuth,
    Connection,
    ConnectionStateError,
    Context,
    EncodingError,
    End,
    Envelope,
    Erasure,
    Format,
    KeyBundle,
    Kind,
    Listing,
    Message,
    Move,
    NodeDocument,
    NodeRequest,
    PeerId,
    PreKeys,
    ReachOut,
    RemoteError,
    Response,
    Terms,
    Timing,
    Window,
    Withdrawal,
    open_sealed,
    open_signed,
    pack,
    parse_sealed,
    seal,
    sign,
    unpack,
)
from peerfed.protocol.encoding import Value
from peerfed.protocol.envelope import CONTEXT_TYPES, _frame
from peerfed.protocol.node_bodies import Emergency, FederationPolicy, NodeKey, Registration, Resource
from peerfed.protocol.sealing import MAX_PADDED, _encrypt, pad, padded_length, reacher_bundle

from .test_roundtrip import IDENTITIES, NOW, PEERS, SECRET_OF, SECRETS, recipient_of, values

DAY = 86_400
ALICE, BOB, CAROL = IDENTITIES
CONNECTION = bytes(range(0xC0, 0xD0))
TERMS = Terms(
    helps="Someone to listen while I get through the evenings.",
    formats=(Format.TEXT, Format.VOICE),
    times="weekday evenings",
    until=NOW + 30 * DAY,
    boundaries=("no contact outside peerfed",),
    ending="either of us says so",
)
LISTING = Listing(
    kind=Kind.OFFER,
    topics=("panic attacks", "ataques de pánico"),
    vocab=("anxiety", "panic-attacks"),
    languages=("es", "en-GB"),
    formats=(Format.TEXT, Format.VOICE),
    tz="Europe/Madrid",
    availability=(Window(0b0011111, 18 * 60, 21 * 60), Window(0b1100000, 600, 720)),
    timing=Timing.SCHEDULED,
    capacity=2,
    area="Madrid",
    summary="I have lived with panic attacks;\nI can listen on weekday evenings.",
)
ALICE_BUNDLE = sign(ALICE, KeyBundle(SECRETS[0].public), created_at=NOW - DAY, expires_at=NOW + 30 * DAY).raw
REACH_OUT = ReachOut(BOB.peer_id, CONNECTION, bytes([0x11]) * 32, "Hello, can we talk?", TERMS, ALICE_BUNDLE)

NODE_URL = "https://hearing-voices.example"
NODE_DOCUMENT = NodeDocument(
    url=NODE_URL,
    name="Hearing Voices Circle",
    description="A peer-run node.",
    contact="moderators@hearing-voices.example",
    registration=Registration.INVITE,
    code_of_conduct="No diagnosis, no advice unless asked.",
    resources=(
        Resource("Peer warmline", "+34 900 000 000", Emergency.NEVER, "evenings", ("es", "en"), "Peer-run."),
        Resource("Emergency number", "112", Emergency.MAY),
    ),
    mailbox_ttl=14 * DAY,
    max_listing_lifetime=30 * DAY,
    limits=(("max-bytes", 65_536), ("clock-skew", 300)),
    protocols=("peerfed/1",),
    software="peerfed-py/0.1.0",
    federation=FederationPolicy.ALLOW_LIST,
    keys=(NodeKey(bytes(CAROL.peer_id), NOW - DAY, NOW + 8 * DAY),),
    vocabulary=("voices", "family"),
)

# Valid bodies of every type, signed by their natural author, all fresh at NOW.
CORPUS_BODIES: list[tuple[Any, Any]] = [
    (ALICE, LISTING),
    (BOB, Listing(Kind.REQUEST, ("grief",), ("en",), (Format.TEXT,), Timing.SOON, "Someone to talk with.")),
    (ALICE, Withdrawal(bytes([0x22]) * 32)),
    (BOB, KeyBundle(SECRETS[1].public, home="https://grief-circle.example", pseudonym="R\u00edo")),
    (ALICE, KeyBundle(SECRETS[0].public)),
    (ALICE, REACH_OUT),
    (ALICE, ReachOut(BOB.peer_id, CONNECTION, bytes([0x11]) * 32, "Hi.", bundle=ALICE_BUNDLE)),
    (BOB, Response(ALICE.peer_id, CONNECTION, True, "Yes, gladly.")),
    (BOB, Response(ALICE.peer_id, CONNECTION, False)),
    (ALICE, Agreement(BOB.peer_id, CONNECTION, 1, TERMS)),
    (BOB, Agreement(ALICE.peer_id, CONNECTION, 1, Terms("Practical tips."))),
    (BOB, Message(ALICE.peer_id, CONNECTION, 3, "Tonight was hard.\tBut ok.", reply_to=bytes([0x77]) * 32)),
    (ALICE, Message(BOB.peer_id, CONNECTION, 1, "Gracias.")),
    (ALICE, End(BOB.peer_id, CONNECTION, erase=True)),
    (BOB, End(ALICE.peer_id, CONNECTION)),
    (CAROL, NODE_DOCUMENT),
    (
        CAROL,
        NodeRequest("POST", "/federation/v1/batch", "https://grief.example", NODE_URL, bytes(16), bytes(32)),
    ),
    (ALICE, ClientAuth(NODE_URL, bytes([0x5A]) * 32)),
    (ALICE, Move(NODE_URL, "https://grief.example")),
    (ALICE, PreKeys(NODE_URL, (bytes([0x21]) * 32, bytes([0x22]) * 32))),
    (ALICE, Erasure()),
]
CORPUS = [
    sign(who, body, created_at=NOW - 60, expires_at=NOW - 60 + min(DAY, body.max_lifetime))
    for who, body in CORPUS_BODIES
]
PAYLOADS = [env.raw[97:] for env in CORPUS]
WIRE_PAYLOADS: list[Value] = [unpack(p) for p in PAYLOADS]
SEALED = [
    seal(env, SECRET_OF[recipient_of(env)].public, ephemeral=bytes([n]) * 32, nonce=bytes([n]) * 24)
    for n, env in enumerate(CORPUS)
    if env.context is Context.SEALED
]
ENCODINGS = [env.raw for env in CORPUS] + [s.raw for s in SEALED] + PAYLOADS

# Byte strings that mean something to a msgpack decoder: markers, wrong-width lengths, forbidden types.
# fmt: off
MARKERS = [
    b"\xc0", b"\xc1", b"\xc2", b"\xc3", b"\x80", b"\x90", b"\xa0", b"\x7f", b"\xe0", b"\xff",
    b"\xc4\x00", b"\xc4\x20", b"\xc5\x00\x01", b"\xc6\xff\xff\xff\xff", b"\xd9\x01", b"\xda\x00\x00",
    b"\xdb\x7f\xff\xff\xff", b"\xdc\x00\x01", b"\xdd\x00\x00\x00\x00", b"\xde\x00\x01",
    b"\xdf\xff\xff\xff\xff", b"\xcc\x05", b"\xcd\x00\xc8", b"\xce\x00\x00\x00\x01", b"\xcf" + bytes(8),
    b"\xd0\x05", b"\xd3" + bytes(8), b"\xca\x3f\x80\x00\x00", b"\xcb" + bytes(8), b"\xd4\x01\x01",
    b"\xd5\xff\x00\x00", b"\xd6\xff" + bytes(4), b"\xd7\xff" + b"\xff" * 8, b"\xc7\x0c\xff" + bytes(12),
    b"\xc7\x03\xff" + bytes(3), b"\xc8\x00\x01\x05\x00", b"\xc9\x00\x00\x00\x00\x05", b"\xd8\x01" + bytes(16),
    b"\x91" * 9 + b"\xc0", b"\xa3\xed\xa0\x80", b"\xa2\xc3\x28", b"\xa1\x07", b"\xa0",
]
# fmt: on


def remote_only(action: Any) -> Any:
    """Run a receive-path call: a value or a RemoteError are fine; anything else fails the test."""
    try:
        return action()
    except RemoteError:
        return None


# --- mutation strategies ------------------------------------------------------------------


@st.composite
def byte_mutations(draw: st.DrawFn, base: bytes) -> bytes:
    """``base`` with one to four splices, inserts, deletions, flips or marker overwrites."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "splice", "marker", "duplicate", "truncate"]))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            at = min(at, len(data) - 1)
            data[at] ^= draw(st.integers(1, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif op == "splice":
            donor = draw(st.sampled_from(ENCODINGS))
            start = draw(st.integers(0, len(donor) - 1))
            piece = donor[start : start + draw(st.integers(1, 64))]
            if draw(st.booleans()):
                data[at : at + len(piece)] = piece
            else:
                data[at:at] = piece
        elif op == "marker":
            marker = draw(st.sampled_from(MARKERS))
            if draw(st.booleans()):
                data[at : at + len(marker)] = marker
            else:
                data[at:at] = marker
        elif op == "duplicate":
            end = draw(st.integers(at, min(len(data), at + 32)))
            data[end:end] = data[at:end]
        elif op == "truncate":
            del data[at:]
    return bytes(data)


# fmt: off
SPECIAL: list[Value] = [
    None, True, False, 0, 1, -1, 2, 100, 101, 127, 128, 1439, 1440, 2**32 - 1, 2**32, 2**40 - 1, 2**40,
    2**63, 2**64 - 1, -(2**63), NOW, NOW + DAY, NOW - DAY, NOW + 91 * DAY,
    "", " ", "x" * 49, "x" * 601, "a\u0007", "a\n", "\u00a0a", "offer", "request", "text", "voice",
    "in-person", "scheduled", "en", "en-GB", "english!", "UTC", "https://x.example", "listing", "end",
    "message", "reach-out", "response", "agreement", "withdrawal", "key-bundle", "diagnosis",
    "erasure", "node-document", "node-request", "client-auth", "GET", "/", "https://x.example/",
    b"", bytes(15), bytes(16), bytes(31), bytes(32), bytes(33), CONNECTION,
    bytes(ALICE.peer_id), bytes(BOB.peer_id), bytes(CAROL.peer_id),
    [], [None], [127, 0, 1440], [0, 0, 60], TERMS.to_wire(), ["text", "text"], [[[[[[[[[]]]]]]]]],
    ["max-bytes", 1], [["a", 1], ["a", 2]], [3600, 3600],
]
# fmt: on
replacements = st.one_of(st.sampled_from(SPECIAL), values)


def _paths(value: Value, prefix: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    found = [prefix]
    if isinstance(value, list):
        for i, item in enumerate(value):
            found.extend(_paths(item, (*prefix, i)))
    return found


def _copy(value: Value) -> Value:
    return [_copy(v) for v in value] if isinstance(value, list) else value


@st.composite
def value_mutations(draw: st.DrawFn, base: Value) -> Value:
    """``base`` with one to three nodes replaced, deleted, inserted, duplicated or wrapped."""
    tree = _copy(base)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(tree)))
        if not path:
            tree = _copy(draw(replacements)) if draw(st.booleans()) else [tree]
            continue
        parent: Any = tree
        for i in path[:-1]:
            parent = parent[i]
        i = path[-1]
        op = draw(st.sampled_from(["replace", "replace", "delete", "insert", "duplicate", "wrap"]))
        if op == "replace":
            parent[i] = _copy(draw(replacements))
        elif op == "delete":
            del parent[i]
        elif op == "insert":
            parent.insert(i, _copy(draw(replacements)))
        elif op == "duplicate":
            parent.insert(i, _copy(parent[i]))
        else:
            parent[i] = [parent[i]]
    return tree


def _encode(value: Value) -> bytes:
    # msgpack itself, not pack(): trees nested too deep must still reach the decoder.
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


@st.composite
def signed_garbage(draw: st.DrawFn) -> tuple[Context, bytes]:
    """A context and payload bytes to sign: mostly a garbled valid payload under its own context."""
    base = draw(st.sampled_from(CORPUS))
    context = base.context if draw(st.integers(0, 7)) else draw(st.sampled_from(Context))
    how = draw(st.integers(0, 9))
    if how < 5:
        payload = _encode(draw(value_mutations(unpack(base.raw[97:]))))
    elif how < 8:
        payload = draw(byte_mutations(base.raw[97:]))
    elif how == 8:
        payload = _encode(draw(values))
    else:
        payload = draw(st.binary(max_size=200))
    return context, payload


garbled = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(ENCODINGS).flatmap(byte_mutations),
    st.sampled_from(WIRE_PAYLOADS).flatmap(value_mutations).map(_encode),
)


# --- every decoder on arbitrary input -----------------------------------------------------


@given(garbled)
def test_unpack_raises_only_encoding_errors(data: bytes) -> None:
    try:
        value = unpack(data)
    except EncodingError:
        return
    assert pack(value) == data


@given(garbled, st.sampled_from(Context))
def test_open_signed_raises_only_remote_errors(data: bytes, context: Context) -> None:
    env = remote_only(lambda: open_signed(data, context=context, now=NOW))
    assert env is None or env.raw == data


@given(garbled)
def test_parse_sealed_raises_only_remote_errors(data: bytes) -> None:
    sealed = remote_only(lambda: parse_sealed(data))
    assert sealed is None or sealed.raw == data


@given(
    st.one_of(garbled, st.sampled_from([s.raw for s in SEALED]).flatmap(byte_mutations)),
    st.sampled_from(PEERS),
)
def test_open_sealed_raises_only_remote_errors(data: bytes, recipient: PeerId) -> None:
    opened = remote_only(lambda: open_sealed(data, recipient=recipient, secrets=list(SECRETS), now=NOW))
    assert opened is None or (opened.sealed.raw == data and opened.body.recipient == recipient)


@st.composite
def peer_id_texts(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from([p.text for p in PEERS]))
    chars = list(text)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(chars) - 1))
        # Letters whose case mapping lands in ASCII (dotless i, long s, Kelvin) are the tricky ones.
        chars[at] = draw(st.one_of(st.sampled_from("\u0131\u017f\u212a\u0130=018 a9Z"), st.characters()))
    return "".join(chars)


@given(st.one_of(st.text(), st.text(min_size=61, max_size=61), peer_id_texts()))
def test_peer_id_from_text_raises_only_remote_errors(text: str) -> None:
    peer = remote_only(lambda: PeerId.from_text(text))
    assert peer is None or peer.text == text.lower()


# --- the whole receive path, past a valid signature -------------------------------------------

START = Connection.start(CORPUS[5])
ACCEPTED = START.receive(CORPUS[7])


def receive(raw: bytes, context: Context) -> Envelope | None:
    try:
        env = open_signed(raw, context=context, now=NOW)
    except RemoteError as exc:
        event(exc.code)  # --hypothesis-show-statistics shows which layers the inputs reach
        return None
    event("accepted")
    assert env.raw == raw
    assert env.type in CONTEXT_TYPES[context]
    # What was accepted re-encodes to exactly the bytes that were signed.
    assert pack([env.type, env.created_at, env.expires_at, env.body.to_wire()]) == raw[97:]
    return env


def sealed_path(raw: bytes, env: Envelope | None) -> None:
    """Seal the signed bytes to bob and open them as bob: the same verdict as open_signed."""
    if padded_length(len(raw) + 4) > MAX_PADDED:
        return  # too big to seal; the payloads drawn here are far smaller
    sealed = _encrypt(pad(raw), bytes(BOB.peer_id), NOW - NOW % 3600, bytes(SECRETS[1].public), bytes(32), bytes(24))
    try:
        opened = open_sealed(sealed.raw, recipient=BOB.peer_id, secrets=list(SECRETS), now=NOW)
    except RemoteError as exc:
        if env is not None and recipient_of(env) == BOB.peer_id:
            # Only a reach-out's own key bundle can still fail (spec §7.3 step 12), with its code.
            assert isinstance(env.body, ReachOut)
            with pytest.raises(RemoteError) as bundle_fault:
                reacher_bundle(env)
            assert exc.code == bundle_fault.value.code
        elif env is not None:
            assert exc.code == "seal.wrong_recipient"
        return
    assert env is not None and opened.inner == env
    for conn in (START, ACCEPTED):
        try:
            after = conn.receive(opened.inner)
        except ConnectionStateError:
            continue
        assert after.id == conn.id and opened.inner.id in after.seen


@settings(max_examples=10_000)
@given(st.sampled_from(IDENTITIES), signed_garbage())
def test_the_receive_path_raises_only_remote_errors_over_validly_signed_garbage(
    identity: Any, case: tuple[Context, bytes]
) -> None:
    context, payload = case
    raw = _frame(identity, context, payload)
    env = receive(raw, context)
    if context is Context.SEALED:
        sealed_path(raw, env)


@given(st.sampled_from([e for e in CORPUS if e.context is Context.SEALED]), st.data())
def test_a_garbled_plaintext_inside_a_valid_seal_raises_only_remote_errors(
    inner: Envelope, data: st.DataObject
) -> None:
    plain = bytearray(pad(inner.raw))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(plain) - 1))
        plain[at] ^= data.draw(st.integers(1, 255))
    if data.draw(st.booleans()):
        # A length prefix anywhere in (or beyond) the padded plaintext.
        plain[:4] = data.draw(st.integers(0, 2**32 - 1)).to_bytes(4, "big")
    sealed = _encrypt(bytes(plain), bytes(BOB.peer_id), 0, bytes(SECRETS[1].public), bytes(32), bytes(24))
    opened = remote_only(lambda: open_sealed(sealed.raw, recipient=BOB.peer_id, secrets=list(SECRETS), now=NOW))
    # Whatever opens was padded exactly as pad() pads: unpad accepts nothing looser.
    assert opened is None or pad(opened.inner.raw) == bytes(plain)


def test_the_corpus_is_accepted_unchanged() -> None:
    # The mutations start from valid objects; if these stopped opening, the fuzzing above
    # would only ever exercise the first checks.
    for env in CORPUS:
        opened = open_signed(env.raw, context=env.context, now=NOW)
        assert opened == env
        assert pack([opened.type, opened.created_at, opened.expires_at, opened.body.to_wire()]) == env.raw[97:]
    for sealed in SEALED:
        unsealed = open_sealed(sealed.raw, recipient=sealed.mailbox, secrets=list(SECRETS), now=NOW)
        assert unsealed.inner in CORPUS
    assert {env.type for env in CORPUS} == {n for names in CONTEXT_TYPES.values() for n in names}
