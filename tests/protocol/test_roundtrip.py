"""Round trips: what the core builds, it reads back unchanged (STYLE habit 12).

The strategies below build *valid* instances of every message body, inside every bound
messages.py enforces: UTF-8 byte lengths, labels without control characters or surrounding
white space, BCP-47-like language tags, distinct items. test_tamper and test_fuzz reuse
them as their source of valid objects.
"""

from __future__ import annotations

import dataclasses
import string
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerfed.protocol import (
    CLOCK_SKEW,
    Agreement,
    Context,
    EncodingError,
    EncryptionKey,
    EncryptionSecret,
    End,
    Envelope,
    Format,
    Identity,
    InvalidValue,
    KeyBundle,
    Kind,
    Listing,
    Message,
    PeerId,
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
from peerfed.protocol.encoding import MAX_DEPTH, Value
from peerfed.protocol.listings import MAX_TIMESTAMP
from peerfed.protocol.messages import MAX_FORGET, MIN_FORGET, SealedBody
from peerfed.protocol.node_bodies import (
    ClientAuth,
    Emergency,
    Erasure,
    FederationPolicy,
    NodeDocument,
    NodeKey,
    NodeRequest,
    Registration,
    Resource,
)
from peerfed.protocol.sealing import HOUR, pad, padded_length, unpad

NOW = 1_800_000_000
DAY = 86_400

# Fixed peers: an Ed25519 identity and an X25519 secret each.
IDENTITIES = [Identity(bytes([0xA1 + 0x10 * i]) * 32) for i in range(3)]
SECRETS = [EncryptionSecret(bytes([0xA2 + 0x10 * i]) * 32) for i in range(3)]
PEERS = [identity.peer_id for identity in IDENTITIES]
SECRET_OF = {peer: secret for peer, secret in zip(PEERS, SECRETS, strict=True)}


def recipient_of(inner: Envelope) -> PeerId:
    """The recipient a signed sealed-inner object names; only such objects are passed here."""
    assert isinstance(inner.body, SealedBody)
    return inner.body.recipient


# --- text ---------------------------------------------------------------------------------

LABEL_CHARS = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))
FREE_CHARS = st.one_of(LABEL_CHARS, st.sampled_from("\n\t"))


def _fit(text: str, max_bytes: int) -> str:
    """Cut ``text`` to at most ``max_bytes`` UTF-8 bytes without splitting a character."""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


def _texts(chars: st.SearchStrategy[str], max_bytes: int) -> st.SearchStrategy[str]:
    """Short texts, plus texts filled up to (or just under) ``max_bytes`` by repeating a unit."""
    short = st.text(chars, min_size=1, max_size=min(max_bytes, 20))
    filled = st.text(chars, min_size=1, max_size=4).map(
        lambda unit: _fit(unit * (max_bytes // len(unit.encode("utf-8")) + 1), max_bytes)
    )
    return st.one_of(short, filled).map(lambda t: _fit(t, max_bytes))


def labels(max_bytes: int) -> st.SearchStrategy[str]:
    """1..max_bytes UTF-8 bytes, no control characters, no leading or trailing white space."""
    return _texts(LABEL_CHARS, max_bytes).map(str.strip).filter(bool)


def free_texts(max_bytes: int) -> st.SearchStrategy[str]:
    """1..max_bytes UTF-8 bytes; line feeds and tabs allowed, no other control characters."""
    return _texts(FREE_CHARS, max_bytes).filter(bool)


def _opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def _distinct(strategy: st.SearchStrategy[Any], low: int, high: int) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(strategy, min_size=low, max_size=high, unique=True).map(tuple)


languages = st.builds(
    lambda primary, subtags: "-".join([primary, *subtags]),
    st.text(string.ascii_letters, min_size=2, max_size=3),
    st.lists(st.text(string.ascii_letters + string.digits, min_size=1, max_size=8), max_size=4),
).filter(lambda tag: len(tag) <= 35)
vocab_terms = st.lists(
    st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=8), min_size=1, max_size=5
).map("-".join)
time_zones = st.one_of(
    st.sampled_from(["UTC", "Europe/Madrid", "America/Argentina/Buenos_Aires", "Etc/GMT+3"]),
    st.text(string.ascii_letters + string.digits + "_+-/", min_size=1, max_size=64),
)
homes = st.builds(lambda scheme, rest: scheme + rest, st.sampled_from(["https://", "http://"]), labels(248))
formats_list = st.lists(st.sampled_from(Format), max_size=5, unique=True).map(tuple)
formats_nonempty = st.lists(st.sampled_from(Format), min_size=1, max_size=5, unique=True).map(tuple)
ids32 = st.binary(min_size=32, max_size=32)
connection_ids = st.binary(min_size=16, max_size=16)


@st.composite
def windows(draw: st.DrawFn) -> Window:
    start = draw(st.integers(0, 1439))
    return Window(draw(st.integers(1, 127)), start, draw(st.integers(start + 1, 1440)))


# --- bodies -------------------------------------------------------------------------------

listings = st.builds(
    Listing,
    kind=st.sampled_from(Kind),
    topics=_distinct(labels(48), 1, 8),
    languages=_distinct(languages, 1, 8),
    formats=formats_nonempty,
    timing=st.sampled_from(Timing),
    summary=free_texts(600),
    vocab=_distinct(vocab_terms, 0, 8),
    tz=time_zones,
    availability=_distinct(windows(), 0, 14),
    capacity=st.integers(1, 100),
    area=_opt(labels(64)),
)
withdrawals = st.builds(Withdrawal, ids32)
key_bundles = st.builds(
    KeyBundle,
    encryption_key=ids32.map(EncryptionKey),
    home=_opt(homes),
    pseudonym=_opt(labels(64)),
)
terms = st.builds(
    Terms,
    helps=free_texts(1000),
    formats=formats_list,
    times=_opt(free_texts(300)),
    until=_opt(st.integers(0, MAX_TIMESTAMP)),
    boundaries=_distinct(free_texts(300), 0, 10),
    ending=_opt(free_texts(300)),
    forget=_opt(st.integers(MIN_FORGET, MAX_FORGET)),
)


known_recipients = st.sampled_from(PEERS)


# A placeholder the size of a signed key bundle; ``signed`` swaps in the signer's own (spec §8.2).
UNSIGNED_BUNDLE = bytes(200)


def own_bundle(identity: Identity, created: int) -> bytes:
    """``identity``'s key bundle, valid at ``created``: what its reach-outs carry."""
    secret = SECRETS[IDENTITIES.index(identity)] if identity in IDENTITIES else SECRETS[0]
    return sign(identity, KeyBundle(secret.public), created_at=created, expires_at=created + 1).raw


def sealed_kinds(
    recipients: st.SearchStrategy[PeerId] = known_recipients,
) -> dict[str, st.SearchStrategy[Any]]:
    """A strategy per sealed body type (and variant), addressed to one of ``recipients``."""
    head = {"recipient": recipients, "connection": connection_ids}
    seqs = st.integers(1, 2**32 - 1)
    return {
        "reach-out": st.builds(
            ReachOut, **head, listing=ids32, hello=free_texts(1000), terms=st.none(), bundle=st.just(UNSIGNED_BUNDLE)
        ),
        "reach-out with terms": st.builds(
            ReachOut, **head, listing=ids32, hello=free_texts(1000), terms=terms, bundle=st.just(UNSIGNED_BUNDLE)
        ),
        "accept": st.builds(Response, **head, accept=st.just(True), reply=_opt(free_texts(1000))),
        "decline": st.builds(Response, **head, accept=st.just(False), reply=st.none()),
        "agreement": st.builds(Agreement, **head, version=st.integers(1, 2**32 - 1), terms=terms),
        "message": st.builds(Message, **head, seq=seqs, text=free_texts(16_000), reply_to=st.none()),
        "message with reply_to": st.builds(Message, **head, seq=seqs, text=free_texts(16_000), reply_to=ids32),
        "end": st.builds(End, **head, erase=st.booleans()),
    }


def sealed_bodies(recipients: st.SearchStrategy[PeerId] = known_recipients) -> st.SearchStrategy[Any]:
    return st.one_of(*sealed_kinds(recipients).values())


# The node protocol's bodies (spec §13) share the signed-object layout.
# A node URL is scheme://host[:port] (spec §13.1): DNS labels, and a port or none.
_dns_labels = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?", fullmatch=True)
urls = st.builds(
    lambda scheme, host, port: scheme + ".".join(host) + ("" if port is None else f":{port}"),
    st.sampled_from(["https://", "http://"]),
    st.lists(_dns_labels, min_size=1, max_size=4),
    st.one_of(st.none(), st.integers(1, 65_535)),
)
resources = st.builds(
    Resource,
    name=labels(100),
    contact=free_texts(300),
    emergency=st.sampled_from(Emergency),
    hours=_opt(free_texts(200)),
    languages=_distinct(languages, 0, 8),
    note=_opt(free_texts(500)),
)


@st.composite
def node_keys(draw: st.DrawFn) -> NodeKey:
    start = draw(st.integers(0, MAX_TIMESTAMP - 1))
    key = bytes(Identity(draw(ids32)).peer_id)  # a valid key encoding (spec §4.1), as a seed gives
    return NodeKey(key, start, draw(st.integers(start + 1, MAX_TIMESTAMP)))


node_documents = st.builds(
    NodeDocument,
    url=urls,
    name=labels(64),
    description=free_texts(2000),
    contact=free_texts(300),
    registration=st.sampled_from(Registration),
    code_of_conduct=free_texts(8000),
    resources=_distinct(resources, 0, 3),
    mailbox_ttl=st.integers(3600, 90 * DAY),
    max_listing_lifetime=st.integers(3600, 90 * DAY),
    limits=st.lists(
        st.tuples(vocab_terms.filter(lambda n: len(n) <= 32), st.integers(0, 2**32 - 1)),
        max_size=4,
        unique_by=lambda pair: pair[0],
    ).map(tuple),
    protocols=_distinct(labels(32), 1, 8),
    software=labels(64),
    federation=st.sampled_from(FederationPolicy),
    keys=_distinct(node_keys(), 1, 8),
    vocabulary=_distinct(vocab_terms, 0, 20),
)
node_requests = st.builds(
    NodeRequest,
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=labels(1023).map(lambda p: "/" + p),
    origin=urls,
    destination=urls,
    nonce=connection_ids,
    body_hash=ids32,
)
any_recipient = st.one_of(st.sampled_from(PEERS), ids32.map(PeerId))
BODY_KINDS: dict[str, st.SearchStrategy[Any]] = {
    "listing": listings,
    "withdrawal": withdrawals,
    "key-bundle": key_bundles,
    **sealed_kinds(any_recipient),
    "node-document": node_documents,
    "node-request": node_requests,
    "client-auth": st.builds(ClientAuth, urls, ids32),
    "erasure": st.just(Erasure()),
}
public_bodies = st.one_of(listings, withdrawals, key_bundles)
all_bodies = st.one_of(*BODY_KINDS.values())


@st.composite
def times_for(draw: st.DrawFn, max_lifetime: int) -> tuple[int, int, int]:
    """(created_at, expires_at, now) that open_signed accepts for a body of this lifetime."""
    created = draw(st.one_of(st.integers(NOW - 30 * DAY, NOW), st.integers(0, MAX_TIMESTAMP - 1)))
    expires = created + draw(st.integers(1, min(max_lifetime, MAX_TIMESTAMP - created)))
    now = draw(st.integers(max(0, created - CLOCK_SKEW), expires - 1))
    return created, expires, now


@st.composite
def signed(draw: st.DrawFn, bodies: st.SearchStrategy[Any] = all_bodies) -> tuple[Envelope, int]:
    """A valid signed object and a ``now`` at which it is fresh."""
    body = draw(bodies)
    created, expires, now = draw(times_for(body.max_lifetime))
    identity = draw(st.sampled_from(IDENTITIES))
    if isinstance(body, ReachOut):
        body = dataclasses.replace(body, bundle=own_bundle(identity, created))
    return sign(identity, body, created_at=created, expires_at=expires), now


@st.composite
def sealed_messages(draw: st.DrawFn, bodies: st.SearchStrategy[Any] | None = None) -> tuple[Envelope, Any, int]:
    """(inner, Sealed, now): a valid signed sealed-inner object sealed to its recipient."""
    inner, now = draw(signed(sealed_bodies() if bodies is None else bodies))
    sealed = seal(
        inner,
        SECRET_OF[recipient_of(inner)].public,
        ephemeral=draw(ids32),
        nonce=draw(st.binary(min_size=24, max_size=24)),
    )
    return inner, sealed, now


# --- the msgpack profile ------------------------------------------------------------------

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.text(),
    st.binary(),
)


def _nested(levels: int) -> st.SearchStrategy[Value]:
    strategy: st.SearchStrategy[Value] = leaves
    for _ in range(levels):
        strategy = st.one_of(leaves, st.lists(strategy, max_size=5))
    return strategy


# Values nested at most MAX_DEPTH arrays deep, the deepest the profile allows.
values = _nested(MAX_DEPTH)


def same(a: object, b: object) -> bool:
    """Equal *and* of the same types all the way down (True == 1 and b'' == '' would hide bugs)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@given(values)
def test_unpack_inverts_pack_for_every_allowed_value(value: Value) -> None:
    assert same(unpack(pack(value)), value)


@given(st.integers(-(2**63), 2**64 - 1))
def test_every_integer_in_range_round_trips(value: int) -> None:
    assert same(unpack(pack(value)), value)


@given(values)
def test_nesting_one_level_past_the_limit_is_refused_both_ways(value: Value) -> None:
    deep: Value = value
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(InvalidValue):
        pack(deep)
    with pytest.raises(EncodingError) as info:
        unpack(msgpack.packb(deep, use_bin_type=True))
    assert info.value.code == "encoding.too_deep"


# --- bodies and envelopes -----------------------------------------------------------------


KIND_IDS = list(BODY_KINDS)


@pytest.mark.parametrize("kind", KIND_IDS)
@given(data=st.data())
def test_to_wire_then_from_wire_gives_back_the_body(kind: str, data: st.DataObject) -> None:
    body = data.draw(BODY_KINDS[kind], label=kind)
    wire = body.to_wire()
    assert type(body).from_wire(wire) == body
    # And through the encoding, as a receiver sees it.
    assert type(body).from_wire(unpack(pack(wire))) == body
    assert type(body).from_wire(unpack(pack(wire))).to_wire() == wire


@pytest.mark.parametrize("kind", KIND_IDS)
@given(data=st.data())
def test_open_signed_gives_back_the_signed_envelope(kind: str, data: st.DataObject) -> None:
    env, now = data.draw(signed(BODY_KINDS[kind]), label=kind)
    opened = open_signed(env.raw, context=env.context, now=now)
    assert opened == env
    assert opened.id == env.id
    assert opened.raw == env.raw
    assert opened.author == env.author
    assert opened.body == env.body
    assert opened.type == env.body.type_name


@given(signed(public_bodies), st.data())
def test_open_signed_accepts_the_whole_freshness_window(case: tuple[Envelope, int], data: st.DataObject) -> None:
    env, _ = case
    now = data.draw(st.sampled_from([env.created_at - CLOCK_SKEW, env.created_at, env.expires_at - 1]))
    assert open_signed(env.raw, context=env.context, now=now) == env


SEALED_KINDS = sealed_kinds()


@pytest.mark.parametrize("kind", list(SEALED_KINDS))
@given(data=st.data(), secrets=st.permutations(SECRETS))
def test_open_sealed_gives_back_the_inner_envelope(kind: str, data: st.DataObject, secrets: list[Any]) -> None:
    inner, sealed, now = data.draw(sealed_messages(SEALED_KINDS[kind]), label=kind)
    recipient = recipient_of(inner)
    opened = open_sealed(sealed.raw, recipient=recipient, secrets=list(secrets), now=now)
    assert opened.inner == inner
    assert opened.inner.id == inner.id
    assert opened.body == inner.body
    assert opened.sealed == sealed
    assert parse_sealed(sealed.raw) == sealed
    assert sealed.mailbox == recipient
    assert sealed.hour == inner.created_at - inner.created_at % HOUR
    assert len(sealed.payload) == 1 + 32 + 32 + 24 + padded_length(4 + len(inner.raw)) + 16


@given(st.binary(max_size=5000))
def test_unpad_inverts_pad(inner: bytes) -> None:
    padded = pad(inner)
    assert len(padded) == padded_length(4 + len(inner))
    assert unpad(padded) == inner


# --- values the spec forbids cannot be built ----------------------------------------------

A = PEERS[0]
C16 = bytes(16)
T = Terms(helps="listening")


def _listing(**changes: Any) -> Listing:
    fields: dict[str, Any] = {
        "kind": "offer",
        "topics": ("grief",),
        "languages": ("en",),
        "formats": ("text",),
        "timing": "soon",
        "summary": "I can listen.",
    }
    fields.update(changes)
    return Listing(**fields)


FORBIDDEN: dict[str, Any] = {
    "decline with reply text": lambda: Response(A, C16, False, "sorry"),
    "decline with an empty-string reply": lambda: Response(A, C16, False, ""),
    "accept with an empty reply": lambda: Response(A, C16, True, ""),
    "accept given as 1": lambda: Response(A, C16, 1, None),  # type: ignore[arg-type]
    "empty topics": lambda: _listing(topics=()),
    "nine topics": lambda: _listing(topics=tuple(f"t{i}" for i in range(9))),
    "duplicate topics": lambda: _listing(topics=("grief", "grief")),
    "topic of 49 bytes": lambda: _listing(topics=("a" * 47 + "\u00e9",)),
    "topic with a control character": lambda: _listing(topics=("grief\u0007",)),
    "topic with a line feed": lambda: _listing(topics=("grief\nloss",)),
    "topic with a trailing space": lambda: _listing(topics=("grief ",)),
    "topic with a leading no-break space": lambda: _listing(topics=("\u00a0grief",)),
    "topic that is not a string": lambda: _listing(topics=(b"grief",)),
    "duplicate formats": lambda: _listing(formats=("text", "text")),
    "duplicate formats, enum and string": lambda: _listing(formats=(Format.TEXT, "text")),
    "unknown format": lambda: _listing(formats=("telepathy",)),
    "no formats": lambda: _listing(formats=()),
    "capacity 0": lambda: _listing(capacity=0),
    "capacity 101": lambda: _listing(capacity=101),
    "capacity True": lambda: _listing(capacity=True),
    "summary of 601 bytes": lambda: _listing(summary="x" * 601),
    "summary of 601 bytes, multibyte": lambda: _listing(summary="x" + "\u00e9" * 300),
    "summary with a bell": lambda: _listing(summary="hello\u0007"),
    "empty summary": lambda: _listing(summary=""),
    "language that is not a tag": lambda: _listing(languages=("english!",)),
    "language of one letter": lambda: _listing(languages=("e",)),
    "language of 36 bytes": lambda: _listing(languages=("en" + "-abcdefgh" * 3 + "-abcdefg",)),
    "no languages": lambda: _listing(languages=()),
    "vocab in upper case": lambda: _listing(vocab=("Anxiety",)),
    "vocab with a double hyphen": lambda: _listing(vocab=("a--b",)),
    "time zone with a space": lambda: _listing(tz="Europe/Mad rid"),
    "unknown kind": lambda: _listing(kind="diagnosis"),
    "unknown timing": lambda: _listing(timing="later"),
    "fifteen windows": lambda: _listing(availability=tuple(Window(1, i, i + 1) for i in range(15))),
    "availability holding a list": lambda: _listing(availability=([1, 0, 60],)),
    "area of 65 bytes": lambda: _listing(area="a" * 65),
    "window that ends when it starts": lambda: Window(1, 600, 600),
    "window with no days": lambda: Window(0, 0, 60),
    "window with an eighth day": lambda: Window(128, 0, 60),
    "window ending after midnight": lambda: Window(1, 0, 1441),
    "withdrawal of a 31-byte id": lambda: Withdrawal(bytes(31)),
    "key bundle with a raw key": lambda: KeyBundle(bytes(32)),  # type: ignore[arg-type]
    "key bundle with an ftp home": lambda: KeyBundle(EncryptionKey(bytes(32)), home="ftp://node.example"),
    "terms with duplicate formats": lambda: Terms("help", formats=(Format.VOICE, Format.VOICE)),
    "terms with 11 boundaries": lambda: Terms("help", boundaries=tuple(str(i) for i in range(11))),
    "terms that forget after 3,599 s": lambda: Terms("help", forget=MIN_FORGET - 1),
    "terms that forget after 365 days + 1 s": lambda: Terms("help", forget=MAX_FORGET + 1),
    "terms that forget after True seconds": lambda: Terms("help", forget=True),
    "terms with until past 2**40": lambda: Terms("help", until=2**40),
    "terms helps of 1001 bytes": lambda: Terms("h" * 1001),
    "message seq 0": lambda: Message(A, C16, 0, "hi"),
    "message seq 2**32": lambda: Message(A, C16, 2**32, "hi"),
    "message of 16,001 bytes": lambda: Message(A, C16, 1, "m" * 16_001),
    "message with a 31-byte reply_to": lambda: Message(A, C16, 1, "hi", reply_to=bytes(31)),
    "message with a carriage return": lambda: Message(A, C16, 1, "hi\r\nthere"),
    "agreement version 0": lambda: Agreement(A, C16, 0, T),
    "agreement without terms": lambda: Agreement(A, C16, 1, None),  # type: ignore[arg-type]
    "reach-out with a 15-byte connection id": lambda: ReachOut(A, bytes(15), bytes(32), "hi", bundle=UNSIGNED_BUNDLE),
    "reach-out to raw bytes": lambda: ReachOut(bytes(A), C16, bytes(32), "hi", bundle=UNSIGNED_BUNDLE),  # type: ignore[arg-type]
    "reach-out with empty hello": lambda: ReachOut(A, C16, bytes(32), "", bundle=UNSIGNED_BUNDLE),
    "reach-out with a key bundle over 1,024 bytes": lambda: ReachOut(A, C16, bytes(32), "hi", bundle=bytes(1025)),
    "end with erase None": lambda: End(A, C16, None),  # type: ignore[arg-type]
    "signed with a zero lifetime": lambda: sign(IDENTITIES[0], Withdrawal(bytes(32)), created_at=NOW, expires_at=NOW),
    "a listing living 90 days + 1 s": lambda: sign(
        IDENTITIES[0], _listing(), created_at=NOW, expires_at=NOW + 90 * DAY + 1
    ),
    "a sealed body living 30 days + 1 s": lambda: sign(
        IDENTITIES[0], End(A, C16), created_at=NOW, expires_at=NOW + 30 * DAY + 1
    ),
    "created before 1970": lambda: sign(IDENTITIES[0], End(A, C16), created_at=-1, expires_at=10),
    "expires after 2**40 - 1": lambda: sign(
        IDENTITIES[0], End(A, C16), created_at=MAX_TIMESTAMP - 5, expires_at=MAX_TIMESTAMP + 1
    ),
    "sealing a listing": lambda: seal(
        sign(IDENTITIES[0], _listing(), created_at=NOW, expires_at=NOW + DAY), SECRETS[0].public
    ),
}


def test_a_reach_out_without_a_bundle_is_history_only() -> None:
    """Stored by a device before reach-outs carried bundles, it still decodes (five elements, the
    bytes it was signed as); arriving now, it is refused (spec §7.3 step 12)."""
    legacy = ReachOut(A, C16, bytes(32), "hi")
    assert len(legacy.to_wire()) == 5 and ReachOut.from_wire(legacy.to_wire()) == legacy
    inner = sign(IDENTITIES[1], legacy, created_at=NOW, expires_at=NOW + DAY)
    sealed = seal(inner, SECRET_OF[A].public, ephemeral=bytes(range(32)), nonce=bytes(24))
    with pytest.raises(RemoteError) as caught:
        open_sealed(sealed.raw, recipient=A, secrets=[SECRET_OF[A]], now=NOW)
    assert caught.value.code == "schema.invalid"


@pytest.mark.parametrize("build", list(FORBIDDEN.values()), ids=list(FORBIDDEN))
def test_a_forbidden_value_cannot_be_built(build: Any) -> None:
    with pytest.raises(InvalidValue):
        build()


def test_the_largest_allowed_values_can_be_built_and_signed() -> None:
    listing = _listing(
        topics=tuple(f"{i}" + "\u00e9" * 23 + "x" for i in range(8)),
        summary="\u00e9" * 300,
        capacity=100,
        area="a" * 64,
        availability=tuple(Window(127, i, 1440) for i in range(14)),
    )
    assert all(len(t.encode()) == 48 for t in listing.topics)
    env = sign(IDENTITIES[0], listing, created_at=NOW, expires_at=NOW + 90 * DAY)
    assert open_signed(env.raw, context=Context.ENVELOPE, now=NOW) == env
    message = Message(A, C16, 2**32 - 1, "\U0001f600" * 4000)
    assert len(message.text.encode()) == 16_000
    inner = sign(IDENTITIES[1], message, created_at=NOW, expires_at=NOW + 30 * DAY)
    sealed = seal(inner, SECRET_OF[A].public)
    assert open_sealed(sealed.raw, recipient=A, secrets=[SECRET_OF[A]], now=NOW).inner == inner


# --- the label and free-text rules of spec §6.1, character by character --------------------

SPEC_WHITE_SPACE = [
    "\u0020",
    "\u00a0",
    "\u1680",
    *map(chr, range(0x2000, 0x200B)),
    "\u2028",
    "\u2029",
    "\u202f",
    "\u205f",
    "\u3000",
]
CONTROLS = [*map(chr, range(0x00, 0x20)), *map(chr, range(0x7F, 0xA0))]


@pytest.mark.parametrize("char", SPEC_WHITE_SPACE, ids=lambda c: f"U+{ord(c):04X}")
def test_a_label_has_no_white_space_at_either_end_but_may_inside(char: str) -> None:
    for topic in (char + "grief", "grief" + char, char):
        with pytest.raises(InvalidValue):
            _listing(topics=(topic,))
    assert _listing(topics=("grief" + char + "loss",)).topics == ("grief" + char + "loss",)
    assert Message(A, C16, 1, char).text == char  # free text has no white-space rule


@pytest.mark.parametrize("char", ["\u200b", "\u180e", "\u2060", "\ufeff"], ids=lambda c: f"U+{ord(c):04X}")
def test_characters_outside_the_spec_list_are_not_white_space(char: str) -> None:
    assert _listing(topics=(char + "grief" + char,)).topics == (char + "grief" + char,)


@pytest.mark.parametrize("char", CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_control_characters_are_refused_except_tab_and_line_feed_in_free_text(char: str) -> None:
    with pytest.raises(InvalidValue):
        _listing(topics=("a" + char + "b",))
    if char in "\t\n":
        assert Message(A, C16, 1, "a" + char + "b").text == "a" + char + "b"
    else:
        with pytest.raises(InvalidValue):
            Message(A, C16, 1, "a" + char + "b")


def test_terms_without_forget_keep_their_six_item_encoding_and_with_it_gain_a_seventh() -> None:
    """Spec §8.3: terms that keep history encode exactly as before ``forget`` existed."""
    plain = Terms("listening", until=5)
    assert pack(plain.to_wire()) == pack(["listening", [], None, 5, [], None])
    forgetting = Terms("listening", until=5, forget=MIN_FORGET)
    assert [*plain.to_wire(), MIN_FORGET] == forgetting.to_wire()
    assert Terms.from_wire(forgetting.to_wire()) == forgetting
    for bad in ([*plain.to_wire(), None], [*plain.to_wire(), MIN_FORGET, None], plain.to_wire()[:5]):
        with pytest.raises(InvalidValue):
            Terms.from_wire(bad)
