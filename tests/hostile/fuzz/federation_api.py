"""One generator per federation endpoint (spec §13.3, §13.7), each signed with a ``Peerfed-Node``
header that is valid, or forged, stale, replayed, misaddressed or garbled (``node_auth``).
"""

from __future__ import annotations

import base64
import os
from typing import Any

import msgpack

from peerfed.node.federation.inbound import BATCH_KINDS
from peerfed.protocol import Context, Erasure, Identity, Withdrawal, pack, seal, sign, unpack
from peerfed.protocol.envelope import _frame
from peerfed.protocol.node_bodies import body_hash
from tests.node.harness import DAY
from tests.protocol.test_fuzz import ENCODINGS

from .cases import Case
from .inputs import (
    json_value,
    junk_headers,
    make_bundle,
    make_inner,
    make_listing,
    peer_text,
    query,
    render_json,
    url_part,
)
from .mutators import encode, mutate_bytes, mutate_value, sealed_variant, signed_variant
from .sources import BODY_LIMIT, Source, one_in
from .world import World

__all__ = [
    "node_request", "HEADER_KINDS", "node_auth", "gen_follow", "batch_item", "gen_batch", "pack_batch", "gen_pull",
    "gen_federation_keys", "gen_federation_auth"
]  # fmt: skip


def node_request(
    identity: Identity, *, method: str, path: str, origin: str, destination: str, body: bytes, created: int,
    expires: int, context: Context = Context.NODE_REQUEST, nonce: bytes | None = None,
) -> bytes:  # fmt: skip
    """A node-request object with every field under the caller's control (sign_request checks them)."""
    fields = [method, path, origin, destination, nonce or os.urandom(16), body_hash(body)]
    payload = bytes(msgpack.packb(["node-request", created, expires, fields], use_bin_type=True))
    return _frame(identity, context, payload)


HEADER_KINDS = (
    "valid", "missing", "scheme", "not-base64", "non-ascii", "forged-key", "unfederated", "stale", "future",
    "expired", "lifetime", "replayed", "misaddressed", "wrong-method", "wrong-path", "wrong-body", "origin-lie",
    "mutated", "mutated", "random", "wrong-context", "spaced",
)  # fmt: skip


def node_auth(src: Source, w: World, case: Case, *, hostile: bool) -> None:
    """Put a Peerfed-Node header on ``case``: valid, or forged, stale, replayed, misaddressed, garbled."""
    kind = src.pick(HEADER_KINDS) if hostile or one_in(src, 10) else "valid"
    if kind == "replayed":
        replay = src.pick([*w.replayable, None])  # one draw, whether or not anything can be replayed yet
        if replay is not None:
            case.method, case.target, case.body, replayed = replay
            case.headers.append(("Authorization", replayed.encode()))
            case.must_fail, case.expect, case.note = True, frozenset({"auth.replayed"}), case.note + ", replayed"
            return
        kind = "valid"
    a, now = w.a.node.identity, w.now
    method, target, body = case.method, case.target, case.body
    fields: dict[str, Any] = {
        "method": method, "path": target, "origin": w.a.url, "destination": w.b.url, "body": body, "created": now,
        "expires": now + 600,
    }  # fmt: skip
    signer, context = a, Context.NODE_REQUEST
    expect: frozenset[str] | None = frozenset({"auth.invalid"})
    header: bytes | None = None
    if kind in ("valid", "spaced"):
        expect = None
    elif kind == "missing":
        expect = frozenset({"auth.required"})
    elif kind == "scheme":
        raw = base64.b64encode(node_request(a, **fields))
        header = src.pick((b"Bearer " + raw, b"peerfed-node " + raw, b"Peerfed-Node" + raw, b"Peerfed-Node"))
        expect = frozenset({"auth.required"})
    elif kind == "not-base64":
        header = b"Peerfed-Node " + src.pick((b"!!!", b"abc", b"====", b"a" * 7001, b"-_-_"))
        expect = frozenset({"auth.invalid", "encoding.malformed"})
    elif kind == "non-ascii":
        header = b"Peerfed-Node " + src.pick((b"\xff\xfe", b"AAAA\xc3\xa9", b"\xed\xa0\x80"))
    elif kind == "forged-key":
        # A's key is checked against A's own document: fetched again, it does not list this key
        # (auth.invalid), or B fetched it under 10 s ago and cannot check yet (spec §13.3 step 5).
        signer = w.throwaway(src)
        expect = frozenset({"auth.invalid", "node.unavailable"})
    elif kind == "unfederated":
        signer, fields["origin"] = w.c.node.identity, w.c.url
        expect = None
    elif kind == "stale":
        fields["created"] = now - src.pick((301, 450, 599))
        fields["expires"] = fields["created"] + 600
        expect = frozenset({"time.expired"})
    elif kind == "future":
        fields["created"] = now + src.pick((301, 3600))
        fields["expires"] = fields["created"] + 600
        expect = frozenset({"time.future"})
    elif kind == "expired":
        fields["created"], fields["expires"] = now - 500, now - src.pick((0, 100))
        expect = frozenset({"time.expired"})
    elif kind == "lifetime":
        fields["expires"] = now + src.pick((601, 3600))
        expect = frozenset({"time.lifetime"})
    elif kind == "misaddressed":
        fields["destination"] = src.pick((w.a.url, w.c.url, "https://elsewhere.example", w.b.url + "/x"))
        if fields["destination"].endswith("/x"):
            expect = frozenset({"schema.invalid"})  # a node URL has no path at all (spec §13.1)
    elif kind == "wrong-method":
        fields["method"] = src.pick([m for m in ("GET", "POST", "PUT", "DELETE") if m != method])
    elif kind == "wrong-path":
        paths = ("/federation/v1/batch", "/federation/v1/follow", target + "?x", target + "/")
        fields["path"] = src.pick([p for p in paths if p != target])
    elif kind == "wrong-body":
        fields["body"] = src.pick((b"", b"{}", body + b" ", b"x"))
        if fields["body"] == body:
            fields["body"] = body + b"!"
    elif kind == "origin-lie":
        # An origin B has no relation with: refused with no fetch, unless the request is a follow
        # (then fetched: not listed, or not to be had now).
        fields["origin"] = src.pick((w.c.url, w.b.url, w.dead_url))
        expect = frozenset({"auth.invalid", "node.unavailable", "federation.refused"})
    elif kind == "wrong-context":
        context = src.pick((Context.CLIENT_AUTH, Context.ENVELOPE, Context.NODE_DOCUMENT))
        expect = frozenset({"signature.invalid"})
    elif kind == "random":
        header = b"Peerfed-Node " + base64.b64encode(src.raw(0, 300))
        expect, case.must_fail = None, True
    if kind == "mutated":
        raw = node_request(a, **fields)
        if one_in(src, 3):
            data = mutate_bytes(src, raw, [raw])
            case.must_fail = data != raw
        else:
            data = _frame(a, Context.NODE_REQUEST, encode(mutate_value(src, w, unpack(raw[97:])), raw[97:]))
        header = b"Peerfed-Node " + base64.b64encode(data)
        expect = None
    elif kind != "missing" and header is None:
        header = b"Peerfed-Node " + base64.b64encode(node_request(signer, context=context, **fields))
        if kind == "spaced":
            header = header.replace(b" ", b"   ") + b"  "
    if len(str(fields["path"]).encode()) > 1024 and kind not in ("missing", "scheme", "not-base64", "non-ascii"):
        # A path over 1,024 bytes cannot be signed validly: the node-request body is refused first.
        expect = frozenset({"schema.invalid"} | (expect or set())) if kind not in ("mutated", "random") else None
        case.must_fail = True
    if len(body) > BODY_LIMIT:
        expect = frozenset({"size.too_large"})  # the body is bounded before the header is checked
    if header is not None:
        case.headers.append(("Authorization", header))
    if kind in ("valid", "spaced"):
        case.federation_header = header.decode() if header else ""
    case.must_fail = case.must_fail or expect is not None
    case.expect = expect
    case.note += f", {kind} signature"


def gen_follow(src: Source, w: World, hostile: bool = False) -> Case:
    body = src.pick((b"{}", b"{}", b"", src.raw(0, 100), render_json(src, json_value(src, w))[0]))
    case = Case("POST /federation/v1/follow", "POST", "/federation/v1/follow", junk_headers(src), body, note="follow")
    node_auth(src, w, case, hostile=hostile)
    return case


def batch_item(src: Source, w: World) -> tuple[Any, str]:
    kind = src.pick((*BATCH_KINDS, "junk"))
    author = src.pick((w.remote.identity, w.throwaway(src), w.stranger.identity, w.member(src).identity))
    if kind == "key-bundle":
        env = make_bundle(src, w, author, w.remote.secret if author == w.remote.identity else None)
    elif kind == "listing":
        env = make_listing(src, w, author, life=src.pick((None, 45 * DAY)))
    elif kind == "withdrawal":
        target = bytes.fromhex(src.pick([*w.remote_held[-5:], *w.listing_ids()[:3], os.urandom(32).hex()]))
        env = sign(author, Withdrawal(target), created_at=w.now, expires_at=w.now + DAY)
    elif kind == "erasure":
        signer = w.throwaway(src) if not one_in(src, 20) else w.member(src).identity
        env = sign(signer, Erasure(), created_at=w.now, expires_at=w.now + DAY)
    elif kind == "takedown":
        ident = src.pick([*w.remote_held[-5:], *w.listing_ids()[:3], "00" * 32, "00" * 31])
        return [kind, bytes.fromhex(ident)], f"takedown {ident[:8]}"
    elif kind == "sealed":
        to = src.pick((w.honest, w.stranger, w.remote, *w.fuzz))
        raw, note, _ = sealed_variant(src, w, seal(make_inner(src, w, w.remote.identity, to.id), to.secret.public).raw)
        return [kind, raw], f"sealed to {to.name} {note}"
    else:
        return [src.pick(("", "Listing", "node-document", 5, None)), src.raw(0, 50)], "junk kind"
    raw, note, _, _ = signed_variant(src, w, env, author)
    if one_in(src, 12):
        return [kind, src.pick((raw.hex(), None, 5, [raw]))], f"{kind} not bin"
    return [kind, raw], f"{kind} {note}"


def gen_batch(src: Source, w: World, hostile: bool = False) -> Case:
    n = src.pick((1, 1, 1, 2, 3, 5))
    made = [batch_item(src, w) for _ in range(n)]
    items = [item for item, _ in made]
    notes = ", ".join(note for _, note in made)
    how = src.pick(("plain", "plain", "plain", "plain", "values", "bytes", "empty", "not-array", "too-many", "random"))
    count: int | None  # None: the body is not a plain batch, so no count of items is expected
    body, count = pack_batch(items), n
    if how == "values":
        body, count = encode(mutate_value(src, w, items), body), None
    elif how == "bytes":
        body, count = mutate_bytes(src, body, [body, *ENCODINGS]), None
    elif how == "empty":
        body, count = pack([]), None
    elif how == "not-array":
        body, count = encode(src.pick(({"a": 1}, "batch", 5, None, [[["listing", b""]]])), b"\xc0"), None
    elif how == "too-many":
        body, count = pack([["takedown", bytes(32)]] * 101), None
    elif how == "random":
        body, count = src.raw(0, 200), None
    case = Case("POST /federation/v1/batch", "POST", "/federation/v1/batch", junk_headers(src), body,
                note=f"batch {how}: {notes}"[:400], items=count)  # fmt: skip
    node_auth(src, w, case, hostile=hostile)
    return case


def pack_batch(items: list[Any]) -> bytes:
    try:
        return pack(items)
    except Exception:
        return encode(items, b"\x90")


def gen_pull(src: Source, w: World, hostile: bool = False) -> Case:
    target = "/federation/v1/listings" + query(src, w, ("after", "limit"), limit=2_500)  # signed in a header
    case = Case("GET /federation/v1/listings", "GET", target, junk_headers(src), note="pull")
    node_auth(src, w, case, hostile=hostile)
    return case


def gen_federation_keys(src: Source, w: World, hostile: bool = False) -> Case:
    text = peer_text(src, w)
    target = "/federation/v1/keys/" + (url_part(src, text) or "x")
    case = Case("GET /federation/v1/keys/{peer}", "GET", target, junk_headers(src), note=f"keys {text[:40]!r}")
    node_auth(src, w, case, hostile=hostile)
    return case


def gen_federation_auth(src: Source, w: World) -> Case:
    """Any federation endpoint, with a node signature that is forged, stale, replayed, misaddressed, ..."""
    make = src.pick((gen_follow, gen_batch, gen_pull, gen_federation_keys))
    return make(src, w, True)
