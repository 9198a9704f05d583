"""Inputs the fuzzers found the node mishandling, kept exact, and two stories they led to.

Each input in ``KNOWN`` (see the report in fuzz_long.py's output) must get a coded refusal (or a
documented success), store nothing, and log nothing.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from peerfed.client.transport import NodeAPI
from peerfed.protocol import ClientAuth, Erasure, Identity, Message, RemoteError, seal, sign
from tests.node.harness import DAY

from .cases import Case
from .federation_api import node_request
from .inputs import AUTH_REQUIRED
from .world import World


def _bearer(w: World) -> list[tuple[str, bytes]]:
    return [("Authorization", f"Bearer {w.fuzz[0].token}".encode())]


def _valid_sealed(w: World) -> bytes:
    inner = sign(w.fuzz[0].identity, Message(w.honest.id, bytes(16), 1, "hi"), created_at=w.now, expires_at=w.now + DAY)
    return seal(inner, w.honest.secret.public).raw


def _signed_by_a(w: World, method: str, target: str) -> list[tuple[str, bytes]]:
    return [("Authorization", w.a_signs(method, target, b"").encode())]


def _fresh_proof(w: World) -> bytes:
    auth = ClientAuth(w.b.url, w.challenge("fresh"))
    return sign(Identity(os.urandom(32)), auth, created_at=w.now, expires_at=w.now + 300).raw


def _live(*frames: str) -> Callable[[World], Case]:
    """A live conversation of fuzz-0 (whose mailbox holds items); a lone auth is followed by a close."""

    def make(w: World) -> Case:
        listed: list[tuple[str, Any, dict[str, Any]]] = [
            ("text", f.replace("TOKEN", w.fuzz[0].token), {"kind": "auth-good" if "TOKEN" in f else "junk"})
            for f in frames
        ]
        for _, text, meta in listed:
            meta["after_ok"] = '"after": 0' in text
        if len(frames) == 1 and '"after": 0' in frames[0]:
            w.call(w._fill_mailboxes())
            listed.append(("close", b"", {"kind": "close"}))
        return Case("GET /api/v1/live", "GET", "/api/v1/live", frames=listed, note="live")

    return make


KNOWN: dict[str, Callable[[World], Case]] = {
    "ack-json-nested-deeply": lambda w: Case(
        "POST /api/v1/mailbox/ack", "POST", "/api/v1/mailbox/ack", _bearer(w), b"[" * 50_000,
        expect=frozenset({"request.invalid"}),
    ),
    "reports-reason-lone-surrogate": lambda w: Case(
        "POST /api/v1/reports", "POST", "/api/v1/reports", _bearer(w),
        b'{"target": "' + w.honest.text.encode() + b'", "reason": "\\ud800"}', expect=frozenset({"request.invalid"}),
    ),
    "move-to-lone-surrogate": lambda w: Case(
        "POST /api/v1/move", "POST", "/api/v1/move", _bearer(w), b'{"to": "\\ud800"}',
        expect=frozenset({"request.invalid", "federation.refused"}),
    ),
    "directory-before-over-64-bits": lambda w: Case(
        "GET /api/v1/directory", "GET", "/api/v1/directory?before=99999999999999999999", _bearer(w)
    ),
    "mailbox-after-over-64-bits": lambda w: Case(
        "GET /api/v1/mailbox", "GET", "/api/v1/mailbox?after=99999999999999999999", _bearer(w)
    ),
    "federation-listings-after-over-64-bits": lambda w: Case(
        "GET /federation/v1/listings", "GET", "/federation/v1/listings?after=99999999999999999999",
        _signed_by_a(w, "GET", "/federation/v1/listings?after=99999999999999999999"),
    ),
    "bearer-token-not-utf8": lambda w: Case(
        "GET /api/v1/mailbox", "GET", "/api/v1/mailbox", [("Authorization", b"Bearer \xff\xfe")],
        must_fail=True, expect=AUTH_REQUIRED,
    ),
    "invite-not-utf8": lambda w: Case(
        "POST /api/v1/session", "POST", "/api/v1/session", [("X-Peerfed-Invite", b"\xff\xfe")], _fresh_proof(w),
        must_fail=True, expect=frozenset({"auth.invite"}),
    ),
    "destination-not-utf8": lambda w: Case(
        "POST /api/v1/send", "POST", "/api/v1/send", [*_bearer(w), ("X-Peerfed-Destination", b"http://\xff\xfe")],
        _valid_sealed(w), must_fail=True, expect=frozenset({"federation.refused", "request.invalid"}),
    ),
    "live-after-over-64-bits": _live('{"type": "auth", "token": "TOKEN", "after": 100000000000000000000}'),
    "live-after-infinity": _live('{"type": "auth", "token": "TOKEN", "after": 1e999}'),
    "live-json-nested-deeply": _live("[" * 50_000),
    "live-retry-auth-after-a-bad-after": _live(
        '{"type": "auth", "token": "TOKEN", "after": "soon"}', '{"type": "auth", "token": "TOKEN", "after": 0}'
    ),
    "live-close-while-items-are-pushed": _live('{"type": "auth", "token": "TOKEN", "after": 0}'),
    "live-frame-over-64-kib": lambda w: Case(
        "GET /api/v1/live", "GET", "/api/v1/live", frames=[("text", "x" * 66_000, {"kind": "big"})], note="live"
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def known_world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with World(tmp_path_factory.mktemp("known")) as world:
        yield world


@pytest.mark.parametrize("name", list(KNOWN))
def test_inputs_the_fuzzers_found(name: str, known_world: World) -> None:
    verdict = known_world.run(KNOWN[name](known_world))
    verdict.check()
    assert not known_world.serving(), "the node stopped serving"


def test_a_forged_node_request_stores_no_node(tmp_path: Path) -> None:
    """A node request signed by a key nobody publishes, naming some origin, is refused (auth.invalid);
    checking it, B fetches that origin's document (spec §13.3 step 5) -- it must not keep a row for it."""
    with World(tmp_path) as w:
        for origin in (w.c.url, w.b.url):  # another real node; B itself
            forged = node_request(
                Identity(os.urandom(32)), method="POST", path="/federation/v1/follow", origin=origin,
                destination=w.b.url, body=b"{}", created=w.now, expires=w.now + 600,
            )  # fmt: skip
            header = [("Authorization", b"Peerfed-Node " + base64.b64encode(forged))]
            case = Case(
                "POST /federation/v1/follow", "POST", "/federation/v1/follow", header, b"{}",
                note=f"signed by a throwaway key, origin {origin}", must_fail=True, expect=frozenset({"auth.invalid"}),
            )  # fmt: skip
            w.run(case).check()


def test_an_erased_author_cannot_come_back_with_the_same_key(tmp_path: Path) -> None:
    """Spec §13.6: erasure is final; until it expires the node refuses that key's sign-in, listings and bundles."""
    with World(tmp_path) as w:
        member = w.fuzz[0]
        erasure = sign(member.identity, Erasure(), created_at=w.now, expires_at=w.now + DAY)
        assert w.run(Case("POST /api/v1/erase", "POST", "/api/v1/erase", _bearer(w), erasure.raw)).answer.status == 200
        api = NodeAPI(w.b.url, w.http)
        with pytest.raises(RemoteError) as info:
            w.call(api.sign_in(member.identity, now=w.now))
        assert info.value.code == "gone"
