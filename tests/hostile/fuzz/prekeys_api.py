"""Generators for the one-time pre-key routes (spec §13.5, One-time pre-keys; §14.1), each a ``Case``.

Uploads (``POST /api/v1/prekeys``) come valid, garbled, re-signed, re-timed, under another context,
signed by someone else, for another node, with low-order, duplicate, already held or too many
keys, over the stock's cap, or replayed. Claims (``POST /api/v1/prekeys/claim`` and a federated
node's ``POST /federation/v1/prekeys/claim``) name members with a stock, members of A, peers no
node knows, garbled ids and JSON of any shape, and the federation claim comes from A, from C (a
stranger node B does not federate with) or with a forged, stale or replayed signature.
"""

from __future__ import annotations

import os
from typing import Any

from peerfed.protocol import (
    ClientAuth,
    Context,
    EncryptionSecret,
    Envelope,
    Identity,
    Move,
    PeerId,
    PreKeys,
    SealError,
    crypto,
    pack,
    sign,
)
from peerfed.protocol.envelope import _frame
from peerfed.protocol.node_bodies import MAX_PREKEYS

from .cases import Case
from .federation_api import node_auth
from .inputs import body_expect, client_auth, json_value, junk_headers, make_listing, peer_text, query, render_json
from .mutators import signed_variant
from .sources import Source, one_in
from .world import Member, World

__all__ = [
    "LOW_ORDER", "RATE_LIMITED", "fresh_keys", "gen_post_prekeys", "gen_get_prekeys", "gen_claim_prekey",
    "gen_federation_claim", "claim_target"
]  # fmt: skip


def _low_order(key: bytes) -> bool:
    try:
        crypto.x25519(bytes([7]) * 32, key)
    except SealError:
        return True
    return False


P = 2**255 - 19
# X25519 points of small order (and their non-canonical spellings): their product with any scalar is
# all zero, so a key among them would give an initiator a secret everyone knows. Kept if the
# probe agrees, so the list cannot hold a key the node rightly takes.
LOW_ORDER = tuple(
    k
    for k in (
        bytes(32),
        (1).to_bytes(32, "little"),
        (P - 1).to_bytes(32, "little"),
        P.to_bytes(32, "little"),
        (P + 1).to_bytes(32, "little"),
        bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    )
    if _low_order(k)
)
RATE_LIMITED = frozenset({"rate.limited"})  # the pre-key limits are fixed (§13.5), not lifted as LIMITS are


def fresh_keys(count: int) -> list[bytes]:
    return [bytes(EncryptionSecret(os.urandom(32)).public) for _ in range(count)]


def _framed_prekeys(signer: Identity, w: World, node: str, keys: list[Any]) -> bytes:
    """A prekeys object whose body the dataclass would refuse to build (duplicates, 0 or 101 keys, a
    node URL with a path)."""
    payload = pack(["prekeys", w.now, w.now + 300, [node, keys]])
    return _frame(signer, Context.CLIENT_AUTH, payload)


def _session(src: Source, w: World, endpoint: str, method: str, target: str, member: Member) -> Case:
    headers, bad, note = client_auth(src, member)
    return Case(
        endpoint, method, target, headers + junk_headers(src), note=note, must_fail=bad,
        expect=frozenset({"auth.required"}) if bad else None, member=member.name,
    )  # fmt: skip


def gen_post_prekeys(src: Source, w: World) -> Case:
    """An upload (spec §13.5): checked in order -- rate, opens, the session's peer, this node, no
    low-order key, not taken before; then the cap. Held keys are not added twice."""
    replays = [(m, body) for name, body in w.uploads for m in (*w.fuzz, w.bare) if m.name == name]
    # Two draws whatever the world holds, so Hypothesis can replay an example after the world moved on.
    replay = src.pick([*replays, None]) if one_in(src, 8) else None
    if replay is not None:
        member, body = replay
        case = _session(src, w, "POST /api/v1/prekeys", "POST", "/api/v1/prekeys", member)
        case.body = body
        body_expect(case, frozenset({"auth.replayed"}) | RATE_LIMITED, True)
        case.note += ", replayed upload"
        return case
    member = w.member(src, bare=True)
    case = _session(src, w, "POST /api/v1/prekeys", "POST", "/api/v1/prekeys", member)
    signer = member.identity if not one_in(src, 8) else w.someone_else(src, member.identity)
    node = src.pick((w.b.url,) * 6 + (w.a.url, w.c.url, "https://elsewhere.example"))
    stock, held = w.stock(member.identity)
    what = src.pick(("fresh", "fresh", "fresh", "held", "low-order", "max", "over-cap", "duplicate", "empty",
                     "too-many", "not-bin", "bad-url", "move", "auth", "listing"))  # fmt: skip
    keys: list[bytes] = []
    expect: frozenset[str] | None = None
    if what in ("fresh", "held", "low-order", "max", "over-cap"):
        count = {"max": MAX_PREKEYS, "over-cap": max(1, min(MAX_PREKEYS, MAX_PREKEYS - stock + 1))}.get(
            what, src.integer(1, 8)
        )
        keys = fresh_keys(count)
        reused = src.integer(1, len(keys))
        if what == "held":
            keys = [*sorted(held)[:reused], *keys][:MAX_PREKEYS]
        if what == "low-order":
            keys[src.integer(0, len(keys) - 1)] = src.pick(LOW_ORDER)
        keys = list(dict.fromkeys(keys))
        env: Envelope = sign(signer, PreKeys(node, tuple(keys)), created_at=w.now, expires_at=w.now + 300)
        raw, note, must_fail, body_codes = signed_variant(src, w, env, signer, Context.CLIENT_AUTH)
        if note == "valid":
            if signer != member.identity:
                expect = frozenset({"auth.forbidden"})
            elif node != w.b.url:
                expect = frozenset({"auth.invalid"})
            elif what == "low-order":
                expect = frozenset({"schema.invalid"})
            elif stock + len(set(keys) - held) > MAX_PREKEYS:
                expect = frozenset({"prekeys.full"})
            else:  # taken: only the upload limit may still refuse it
                expect, case.stock, case.prekeys = frozenset(), stock + len(set(keys) - held), tuple(keys)
            must_fail = bool(expect)
        else:
            expect = body_codes
    elif what in ("duplicate", "empty", "too-many", "not-bin", "bad-url"):
        one = fresh_keys(1)[0]
        variants: dict[str, list[Any]] = {
            "duplicate": [one, *fresh_keys(src.integer(0, 3)), one],
            "empty": [],
            "too-many": fresh_keys(MAX_PREKEYS + 1),
            "not-bin": [src.pick((one.hex(), one[:31], one + b"\x00", 5, None, [one]))],
            "bad-url": [one],
        }
        bad = variants[what]
        if what == "bad-url":
            node = src.pick((w.b.url + "/", w.b.url + "/api", "ftp://127.0.0.1", "", "http://" + "x" * 300))
        raw, note, must_fail = _framed_prekeys(signer, w, node, bad), "valid", True
        expect = frozenset({"schema.invalid"})
    else:
        # Another object signed where an upload belongs: a move or a sign-in proof (client-auth
        # context, the wrong type: auth.invalid), a listing (the envelope context: signature.invalid).
        env = {
            "move": lambda: sign(signer, Move(w.b.url, w.a.url), created_at=w.now, expires_at=w.now + 300),
            "auth": lambda: sign(signer, ClientAuth(w.b.url, os.urandom(32)), created_at=w.now,
                                 expires_at=w.now + 300),
            "listing": lambda: make_listing(src, w, signer),
        }[what]()  # fmt: skip
        raw, note, must_fail, expect = signed_variant(src, w, env, signer, Context.CLIENT_AUTH)
        if note == "valid":
            expect, must_fail = frozenset({"auth.invalid"}), True
    case.body = raw
    body_expect(case, None if expect is None else expect | RATE_LIMITED, must_fail)
    case.note += f", {what} ({len(keys)} keys, stock {stock}) for {node[:40]} {note}"
    return case


def gen_get_prekeys(src: Source, w: World) -> Case:
    member = w.member(src, bare=True)
    return _session(src, w, "GET /api/v1/prekeys", "GET", "/api/v1/prekeys" + query(src, w, ("stock",)), member)


def claim_target(src: Source, w: World) -> tuple[Any, bytes]:
    """Whom a claim names: a member with a stock, a member of A, a peer nobody knows, garbled text,
    or any JSON value; with the peer's bytes when the text is a peer id."""
    k = src.integer(0, 7)
    if k <= 2:
        who = src.pick((w.honest, w.honest, w.remote, w.stranger, w.bare, *w.fuzz))
        value: Any = who.text
    elif k <= 5:
        value = peer_text(src, w)
    elif k == 6:
        value = src.pick(("", "pf1", "x" * 129, "\ud800", None, 5, [w.honest.text], {"peer": w.honest.text}))
    else:
        value = json_value(src, w)
    try:
        return value, bytes(PeerId.from_text(value))
    except Exception:
        return value, b""


def _claim_body(src: Source, w: World) -> tuple[bytes, str, bytes, frozenset[str] | None]:
    value, peer = claim_target(src, w)
    body: Any = {"peer": value}
    if one_in(src, 8):
        body[src.pick(("claimant", "address", "peer ", ""))] = w.honest.text  # extra fields are ignored
    if one_in(src, 10):
        body = json_value(src, w)
    raw, how = render_json(src, body)
    expect: frozenset[str] | None = None
    if how == "json":
        if not isinstance(body, dict) or not isinstance(body.get("peer"), str):
            expect = frozenset({"request.invalid"})
        elif not peer:
            # Text that is no peer id: schema.invalid; over 128 bytes or a lone surrogate: request.invalid.
            expect = frozenset({"schema.invalid", "request.invalid"})
    return raw, f"{how}, peer {str(value)[:40]!r}", peer if expect is None and how == "json" else b"", expect


def gen_claim_prekey(src: Source, w: World) -> Case:
    member = w.member(src)
    case = _session(src, w, "POST /api/v1/prekeys/claim", "POST", "/api/v1/prekeys/claim", member)
    case.body, note, case.prekey_for, expect = _claim_body(src, w)
    # The body is read before the per-claimant limit (spec §13.5): a claim it names well may meet the limit.
    body_expect(case, RATE_LIMITED if expect is None and case.prekey_for else expect, expect is not None)
    case.note += f", {note}"
    return case


def gen_federation_claim(src: Source, w: World, hostile: bool = False) -> Case:
    """A node's claim for one of its members (spec §13.5, Who asks whom): from A, or from C, which B
    does not federate with (federation.refused), or with a bad signature (``node_auth``)."""
    raw, note, peer, expect = _claim_body(src, w)
    case = Case(
        "POST /federation/v1/prekeys/claim", "POST", "/federation/v1/prekeys/claim", junk_headers(src), raw,
        note=f"prekey claim, {note}", prekey_for=peer,
    )  # fmt: skip
    node_auth(src, w, case, hostile=hostile)
    signed = case.note.endswith(("valid signature", "spaced signature", "unfederated signature"))
    if signed and case.expect is None and not case.must_fail:  # the signature checks out: the body decides
        if case.note.endswith("unfederated signature") and not w.federates(w.c.url):
            # A node B has no relation with is refused as its request is verified, before the body.
            case.expect, case.must_fail = frozenset({"federation.refused"}), True
        elif expect is not None:
            case.expect, case.must_fail = expect, True
        elif peer:
            case.expect = RATE_LIMITED  # the only refusal left: CLAIMS_PER_NODE from A
    return case
