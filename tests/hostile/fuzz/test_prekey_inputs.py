"""Each kind of hostile pre-key input, once and exactly (spec §13.5, One-time pre-keys): its stable code.

The fuzzers (group ``prekeys``) draw these at random; here each gets the one code the spec gives it,
stores nothing (the stock included: ``oracle.judge``), and leaves the node serving.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from peerfed.protocol import Context, Move, PreKeys, pack, sign
from peerfed.protocol.envelope import _frame
from peerfed.protocol.node_bodies import MAX_PREKEYS

from .cases import Case
from .federation_api import node_request
from .prekeys_api import LOW_ORDER, fresh_keys
from .world import World

UPLOAD = "POST /api/v1/prekeys"


def _bearer(w: World, n: int = 0) -> list[tuple[str, bytes]]:
    return [("Authorization", f"Bearer {w.fuzz[n].token}".encode())]


def _prekeys(w: World, keys: list[Any], *, node: str = "", created: int | None = None, life: int = 300) -> bytes:
    """A prekeys object signed by fuzz-0, its body as given (the dataclass would refuse some)."""
    created = w.now if created is None else created
    payload = pack(["prekeys", created, created + life, [w.b.url if node == "" else node, keys]])
    return _frame(w.fuzz[0].identity, Context.CLIENT_AUTH, payload)


def _upload(body: Callable[[World], bytes], code: str) -> Callable[[World], Case]:
    return lambda w: Case(UPLOAD, "POST", "/api/v1/prekeys", _bearer(w), body(w), must_fail=True,
                          expect=frozenset({code}))  # fmt: skip


def _claim(body: bytes, code: str) -> Callable[[World], Case]:
    return lambda w: Case(
        "POST /api/v1/prekeys/claim", "POST", "/api/v1/prekeys/claim", _bearer(w), body, must_fail=True,
        expect=frozenset({code}),
    )  # fmt: skip


def _low_order(key: bytes) -> Callable[[World], Case]:
    return _upload(lambda w: _prekeys(w, [*fresh_keys(2), key]), "schema.invalid")


REFUSED: dict[str, Callable[[World], Case]] = {
    "upload-truncated-msgpack": _upload(lambda w: _prekeys(w, fresh_keys(2))[:120], "signature.invalid"),
    "upload-shorter-than-a-signature": _upload(lambda w: _prekeys(w, fresh_keys(2))[:60], "encoding.malformed"),
    "upload-resigned-truncated-msgpack": _upload(
        lambda w: _frame(w.fuzz[0].identity, Context.CLIENT_AUTH, _prekeys(w, fresh_keys(2))[97:-7]),
        "encoding.malformed",
    ),
    "upload-node-not-text": _upload(lambda w: _prekeys(w, fresh_keys(1), node=5), "schema.invalid"),  # type: ignore[arg-type]
    "upload-key-not-bin": _upload(lambda w: _prekeys(w, [fresh_keys(1)[0].hex()]), "schema.invalid"),
    "upload-key-31-bytes": _upload(lambda w: _prekeys(w, [fresh_keys(1)[0][:31]]), "schema.invalid"),
    "upload-keys-not-an-array": _upload(lambda w: _prekeys(w, fresh_keys(1)[0]), "schema.invalid"),  # type: ignore[arg-type]
    "upload-bad-signature": _upload(
        lambda w: (lambda raw: raw[:40] + bytes([raw[40] ^ 1]) + raw[41:])(_prekeys(w, fresh_keys(1))),
        "signature.invalid",
    ),
    "upload-expired": _upload(lambda w: _prekeys(w, fresh_keys(1), created=w.now - 900), "time.expired"),
    "upload-future": _upload(lambda w: _prekeys(w, fresh_keys(1), created=w.now + 3600), "time.future"),
    "upload-lives-too-long": _upload(lambda w: _prekeys(w, fresh_keys(1), life=601), "time.lifetime"),
    "upload-oversize": _upload(lambda w: _prekeys(w, fresh_keys(1)) + bytes(70_000), "size.too_large"),
    "upload-under-the-envelope-context": _upload(
        lambda w: _frame(w.fuzz[0].identity, Context.ENVELOPE, _prekeys(w, fresh_keys(1))[97:]), "signature.invalid"
    ),
    "upload-a-move-instead": _upload(
        lambda w: sign(w.fuzz[0].identity, Move(w.b.url, w.a.url), created_at=w.now, expires_at=w.now + 300).raw,
        "auth.invalid",
    ),
    "upload-for-another-node": _upload(lambda w: _prekeys(w, fresh_keys(1), node=w.a.url), "auth.invalid"),
    "upload-signed-by-another-peer": _upload(
        lambda w: (
            sign(
                w.fuzz[1].identity, PreKeys(w.b.url, tuple(fresh_keys(1))), created_at=w.now, expires_at=w.now + 300
            ).raw
        ),
        "auth.forbidden",
    ),
    **{f"upload-low-order-key-{n}": _low_order(key) for n, key in enumerate(LOW_ORDER)},
    "upload-duplicate-keys": _upload(lambda w: _prekeys(w, [*fresh_keys(1)] * 2), "schema.invalid"),
    "upload-no-keys": _upload(lambda w: _prekeys(w, []), "schema.invalid"),
    "upload-over-100-keys": _upload(lambda w: _prekeys(w, fresh_keys(MAX_PREKEYS + 1)), "schema.invalid"),
    "claim-peer-not-text": _claim(b'{"peer": 5}', "request.invalid"),
    "claim-not-an-object": _claim(b'["pf1"]', "request.invalid"),
    "claim-truncated-json": _claim(b'{"peer": "pf1', "request.invalid"),
    "claim-not-a-peer-id": _claim(b'{"peer": "pf1abc"}', "schema.invalid"),
    "claim-peer-too-long": _claim(json.dumps({"peer": "p" * 129}).encode(), "request.invalid"),
    "claim-lone-surrogate": _claim(b'{"peer": "\\ud800"}', "request.invalid"),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with World(tmp_path_factory.mktemp("prekeys")) as w:
        yield w


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_hostile_pre_key_input_gets_its_code_and_changes_no_stock(name: str, world: World) -> None:
    world.b.node.limiter.clear()  # the fixed pre-key limits are for tests/node/test_prekeys.py
    verdict = world.run(REFUSED[name](world))
    verdict.check()
    assert not world.serving()


def test_a_replayed_upload_and_one_over_the_cap_put_back_nothing(world: World) -> None:
    """The same upload twice: auth.replayed, even once its keys were handed out; past the cap:
    prekeys.full, none of its keys kept, the stock as it was."""
    world.b.node.limiter.clear()
    member = world.fuzz[2]
    signed = sign(member.identity, PreKeys(world.b.url, tuple(fresh_keys(3))), created_at=world.now,
                  expires_at=world.now + 300)  # fmt: skip
    bearer = _bearer(world, 2)
    first = world.run(Case(UPLOAD, "POST", "/api/v1/prekeys", bearer, signed.raw))
    first.check()
    stock = first.answer.payload["stock"]
    world.run(Case(UPLOAD, "POST", "/api/v1/prekeys", bearer, signed.raw, must_fail=True,
                   expect=frozenset({"auth.replayed"}))).check()  # fmt: skip
    full = sign(member.identity, PreKeys(world.b.url, tuple(fresh_keys(MAX_PREKEYS - stock + 1))),
                created_at=world.now, expires_at=world.now + 300)  # fmt: skip
    world.run(Case(UPLOAD, "POST", "/api/v1/prekeys", bearer, full.raw, must_fail=True,
                   expect=frozenset({"prekeys.full"}))).check()  # fmt: skip
    assert world.stock(member.identity)[0] == stock


def test_a_stranger_nodes_claim_is_refused_and_takes_no_key(world: World) -> None:
    """C, which B does not federate with, signs a claim for B's member: federation.refused, the
    member's stock unchanged; A's claim for the same member gets a key it was given, once."""
    world.b.node.limiter.clear()
    assert not world.federates(world.c.url)
    body = json.dumps({"peer": world.honest.text}).encode()
    path = "/federation/v1/prekeys/claim"

    def signed_by(node: Any) -> list[tuple[str, bytes]]:
        raw = node_request(node.node.identity, method="POST", path=path, origin=node.url, destination=world.b.url,
                           body=body, created=world.now, expires=world.now + 600)  # fmt: skip
        return [("Authorization", b"Peerfed-Node " + base64.b64encode(raw))]

    before = world.stock(world.honest.identity)[0]
    case = Case("POST " + path, "POST", path, signed_by(world.c), body, must_fail=True,
                expect=frozenset({"federation.refused"}))  # fmt: skip
    world.run(case).check()
    assert world.stock(world.honest.identity)[0] == before
    taken = world.run(Case("POST " + path, "POST", path, signed_by(world.a), body))
    taken.check()  # the oracle: one key given for honest, never handed out before, one fewer in stock
    assert taken.answer.payload["prekey"] is not None
    assert world.stock(world.honest.identity)[0] == before - 1
