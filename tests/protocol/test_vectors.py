"""Every vector in spec/vectors/ holds for this implementation, and the files are reproducible.

The vectors are data for any implementation; this test is ours. It reads the JSON, not the
generator's objects, so it checks what another implementer would check.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import importlib.util
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from peerfed.node.federation.verify import verify_request
from peerfed.protocol import (
    Connection,
    ConnectionStateError,
    Context,
    EncryptionSecret,
    Identity,
    PeerId,
    RemoteError,
    open_sealed,
    open_signed,
    pack,
    padded_length,
    sign,
    topics,
    unpack,
)
from peerfed.protocol.document import open_document
from peerfed.protocol.encoding import Value
from peerfed.protocol.errors import InvalidValue
from peerfed.protocol.node_bodies import WrongNode, body_hash, client_auth_for, erased_hash
from peerfed.protocol.sign_in import open_sign_in
from peerfed.protocol.web_client import web_client_hash, web_client_manifest
from peerfed.protocol.work import check_work, work_bits

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "spec" / "vectors"
FILES = [
    "encoding.json",
    "identity.json",
    "envelopes.json",
    "sealing.json",
    "padding.json",
    "connection.json",
    "node.json",
    "search.json",
    "ratchet.json",
]


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    assert doc["schema"] == "peerfed-vectors/v1"
    return doc


def cases(name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    doc = load(name)
    return [(doc, t) for g in doc["testGroups"] for t in g["tests"]]


def ids(name: str) -> list[str]:
    return [f"{t['tcId']}-{t['comment'][:40]}" for _, t in cases(name)]


def from_typed(value: Any) -> Value:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, list):
        return [from_typed(v) for v in value]
    ((tag, inner),) = value.items()
    decoders: dict[str, Callable[[Any], Value]] = {"int": int, "str": str, "bin": bytes.fromhex}
    return decoders[tag](inner)


def secrets_of(doc: dict[str, Any], name: str) -> tuple[PeerId, EncryptionSecret]:
    key = doc["keys"][name]
    return Identity(bytes.fromhex(key["ed25519_seed"])).peer_id, EncryptionSecret(bytes.fromhex(key["x25519_secret"]))


def expect_error(code: str, action: Any) -> None:
    with pytest.raises(RemoteError) as info:
        action()
    assert info.value.code == code


@pytest.mark.parametrize(("doc", "case"), cases("encoding.json"), ids=ids("encoding.json"))
def test_encoding(doc: dict[str, Any], case: dict[str, Any]) -> None:
    encoded = bytes.fromhex(case["encoded"])
    if case["result"] == "valid":
        value = from_typed(case["value"])
        assert pack(value) == encoded
        assert unpack(encoded) == value
    else:
        expect_error(case["error"], lambda: unpack(encoded))


@pytest.mark.parametrize(("doc", "case"), cases("identity.json"), ids=ids("identity.json"))
def test_identity(doc: dict[str, Any], case: dict[str, Any]) -> None:
    if "ed25519_seed" in case:
        identity = Identity(bytes.fromhex(case["ed25519_seed"]))
        assert identity.peer_id.hex == case["ed25519_public"]
        assert identity.peer_id.text == case["peer_id"]
        assert PeerId.from_text(case["peer_id"]) == identity.peer_id
    elif "x25519_secret" in case:
        assert EncryptionSecret(bytes.fromhex(case["x25519_secret"])).public.hex == case["x25519_public"]
    elif case["result"] == "valid":
        assert PeerId.from_text(case["text"]).hex == case["ed25519_public"]
    else:
        expect_error(case["error"], lambda: PeerId.from_text(case["text"]))


@pytest.mark.parametrize(("doc", "case"), cases("envelopes.json"), ids=ids("envelopes.json"))
def test_envelopes(doc: dict[str, Any], case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["input"])
    context = Context(case["context"])
    if case["result"] == "valid":
        env = open_signed(data, context=context, now=doc["now"])
        assert env.id.hex() == case["id"]
        assert env.author.hex == case["author"]
        assert unpack(data[97:]) == from_typed(case["payload"])
        assert [env.type, env.created_at, env.expires_at, env.body.to_wire()] == from_typed(case["payload"])
    else:
        expect_error(case["error"], lambda: open_signed(data, context=context, now=doc["now"]))


@pytest.mark.parametrize(("doc", "case"), cases("node.json"), ids=ids("node.json"))
def test_node_objects(doc: dict[str, Any], case: dict[str, Any]) -> None:
    if "body_hash" in case:
        assert body_hash(bytes.fromhex(case["body"])).hex() == case["body_hash"]
        return
    if "files" in case:  # WebClientHash (spec §13.10)
        files = {path: bytes.fromhex(data) for path, data in case["files"]}
        if case["result"] == "invalid":
            with pytest.raises(InvalidValue) as refused:
                web_client_hash(files)
            assert refused.value.code == case["error"]
        else:
            assert web_client_manifest(files).hex() == case["manifest"]
            assert web_client_hash(files).hex() == case["hash"]
        return
    if "erased_hash" in case:  # ErasureHash (spec §13.6)
        assert erased_hash(bytes.fromhex(case["peer"])).hex() == case["erased_hash"]
        return
    if "url" in case:  # NodeDocumentRead (spec §13.2)
        read = functools.partial(open_document, bytes.fromhex(case["input"]), case["url"], doc["now"])
        if case["result"] == "invalid":
            expect_error(case["error"], read)
        else:
            assert read()[1].author.hex == case["author"]
        return
    if "node" in case:  # SignInProof: the first steps of spec §13.4
        sign_in = functools.partial(open_sign_in, bytes.fromhex(case["input"]), node=case["node"], now=doc["now"])
        if case["result"] == "invalid":
            expect_error(case["error"], sign_in)
            return
        auth, env = sign_in()
        assert (env.author.hex, auth.challenge.hex()) == (case["author"], case["challenge"])
        return
    if "header" in case:  # NodeRequestHeader: steps 1-4 of spec §13.3
        check = functools.partial(_check_node_request, case, doc["now"])
        if case["result"] == "valid":
            check()
        else:
            expect_error(case["error"], check)
        return
    if "nonce" in case:  # Work: joining (spec §13.4) and first contact (§13.5)
        challenge = bytes.fromhex(case["challenge"])
        if "zero_bits" in case:
            assert work_bits(challenge, bytes.fromhex(case["nonce"])) == case["zero_bits"]
        if case["result"] == "valid":
            check_work(challenge, case["nonce"], case["bits"])
        else:
            expect_error(case["error"], lambda: check_work(challenge, case["nonce"], case["bits"]))
        return
    if "meant" in case:  # ChallengeBinding: the client signs only for the node it meant (spec §13.4)
        answer = case["answer"]
        challenge = bytes.fromhex(answer["challenge"])
        if case["result"] == "invalid":
            with pytest.raises(WrongNode) as info:
                client_auth_for(case["meant"], answer["node"], challenge)
            assert info.value.code == case["error"]
            return
        signer = Identity(bytes.fromhex(doc["keys"][case["signer"]]["ed25519_seed"]))
        body = client_auth_for(case["meant"], answer["node"], challenge)
        proof = sign(signer, body, created_at=case["created_at"], expires_at=case["expires_at"])
        assert proof.raw.hex() == case["proof"]
        return
    test_envelopes(doc, case)


def _check_node_request(case: dict[str, Any], now: int) -> None:
    async def any_key(origin: str, key: bytes, now: int, *, follow: bool) -> None:
        return None  # step 5 needs the origin's document, which no vector holds

    async def fresh(nonce: bytes, until: int) -> bool:
        return True

    asyncio.run(
        verify_request(
            case["header"],
            method=case["method"],
            path=case["path"],
            destination=case["destination"],
            body=bytes.fromhex(case["body"]),
            now=now,
            check_key=any_key,
            use_nonce=fresh,
        )
    )


@pytest.mark.parametrize(("doc", "case"), cases("sealing.json"), ids=ids("sealing.json"))
def test_sealing(doc: dict[str, Any], case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["input"])
    peer, secret = secrets_of(doc, case["recipient"])

    def open_it() -> Any:
        return open_sealed(data, recipient=peer, secrets=[secret], now=doc["now"])

    if case["result"] == "valid":
        opened = open_it()
        assert opened.sealed.id.hex() == case["sealed_id"]
        assert opened.sealed.hour == case["hour"]
        assert bytes(opened.sealed.mailbox).hex() == case["mailbox"]
        assert opened.inner.raw.hex() == case["inner"]
        assert opened.inner.id.hex() == case["inner_id"]
        assert opened.inner.author.hex == case["inner_author"]
        assert len(data) > case["padded_length"]
        assert padded_length(4 + len(opened.inner.raw)) == case["padded_length"]
        ephemeral = EncryptionSecret(bytes.fromhex(case["ephemeral_secret"]))
        assert ephemeral.public.hex == case["ephemeral_public"]
        assert ephemeral.shared(secret.public).hex() == case["shared_secret"]
        assert unpack(opened.inner.raw[97:]) == from_typed(case["inner_payload"])
    else:
        expect_error(case["error"], open_it)


@pytest.mark.parametrize(("doc", "case"), cases("padding.json"), ids=ids("padding.json"))
def test_padding(doc: dict[str, Any], case: dict[str, Any]) -> None:
    assert padded_length(case["length"]) == case["padded_length"]


@pytest.mark.parametrize(("doc", "case"), cases("connection.json"), ids=ids("connection.json"))
def test_connection(doc: dict[str, Any], case: dict[str, Any]) -> None:
    now = doc["now"]
    reach_out = open_signed(bytes.fromhex(case["reach_out"]), context=Context.SEALED, now=now)
    if case["result"] == "invalid":  # RejectedStart (spec §9.1)
        expect_error(case["error"], lambda: Connection.start(reach_out))
        return
    conn = Connection.start(reach_out)
    for step in case["steps"]:
        env = open_signed(bytes.fromhex(step["input"]), context=Context.SEALED, now=now)
        if "error" in step:
            with pytest.raises(ConnectionStateError) as info:
                conn.receive(env)
            assert info.value.code == step["error"]
        else:
            conn = conn.receive(env)
        seen = {
            "state": conn.state.value,
            "in_force": None if conn.in_force is None else conn.in_force[0],
            "ended_by": None if conn.ended_by is None else conn.ended_by.value,
            "erase_requested": conn.erase_requested,
        }
        assert seen == step["state"]


def search_cases() -> list[tuple[str, dict[str, Any]]]:
    return [(g["type"], t) for g in load("search.json")["testGroups"] for t in g["tests"]]


@pytest.mark.parametrize(
    ("group", "case"), search_cases(), ids=[f"{t['tcId']}-{t['comment'][:40]}" for _, t in search_cases()]
)
def test_search(group: str, case: dict[str, Any]) -> None:
    if group == "TopicWords":
        assert list(topics.words(case["text"])) == case["words"]
    elif group == "TopicMatch":
        (query,) = topics.query_words([case["query"]])
        assert topics.topic_matches(case["topic"], query) is case["match"]
    elif group == "ListingMatch":
        assert topics.listing_matches(case["topics"], topics.query_words(case["queries"])) is case["match"]
    else:
        assert group == "RejectedTopicQuery", f"unknown group {group}"
        expect_error(case["error"], lambda: topics.query_words(case["queries"]))


def test_there_are_at_least_sixty_vectors_with_valid_and_invalid_cases() -> None:
    total = sum(load(name)["numberOfTests"] for name in FILES)
    invalid = sum(1 for name in FILES for _, t in cases(name) if t["result"] == "invalid")
    assert total >= 60
    assert invalid >= 40
    assert sorted(p.name for p in VECTORS.glob("*.json")) == sorted(FILES)


def test_the_generator_reproduces_every_file_byte_for_byte() -> None:
    spec = importlib.util.spec_from_file_location("peerfed_vector_generator", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = module.build_all()
    assert sorted(built) == sorted(FILES)
    for name, data in built.items():
        assert data == (VECTORS / name).read_bytes(), name


def test_the_spec_pins_each_file_by_sha256() -> None:
    text = (ROOT / "spec" / "peerfed-v1.md").read_text(encoding="utf-8")
    pinned = dict(re.findall(r"\|\s*`([a-z]+\.json)`\s*\|\s*\d+\s*\|\s*`([0-9a-f]{64})`", text))
    for name in FILES:
        assert pinned.get(name) == hashlib.sha256((VECTORS / name).read_bytes()).hexdigest(), name
