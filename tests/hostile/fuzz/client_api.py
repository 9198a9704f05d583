"""One generator per client-API endpoint (spec §13.4, §13.5), each a ``Case`` from a ``Source``."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from peerfed.client.transport import solve_work
from peerfed.protocol import ClientAuth, Context, Erasure, Identity, Withdrawal, seal, sign
from peerfed.protocol.work import work_bits
from tests.node.harness import DAY

from .cases import Case
from .inputs import (
    body_expect,
    client_auth,
    header_value,
    json_value,
    junk_headers,
    make_bundle,
    make_inner,
    make_listing,
    peer_text,
    pick_body,
    query,
    render_json,
    some_text,
    url_part,
    with_auth,
)
from .mutators import sealed_variant, signed_variant
from .sources import BODY_LIMIT, FLOATS, INTS, LIVE_FRAME_LIMIT, METHODS, Source, one_in
from .world import WORK_BITS, Member, World

__all__ = [
    "gen_challenge", "work_header", "gen_session", "gen_put_keys", "gen_get_keys", "gen_post_listing",
    "gen_get_listing", "DIRECTORY", "gen_directory", "gen_send", "gen_mailbox", "gen_ack", "live_frame",
    "json_loads_or_none", "gen_live", "gen_move", "gen_erase", "gen_post_report", "gen_get_reports",
    "gen_well_known", "ROUTES", "gen_misc"
]  # fmt: skip


def gen_challenge(src: Source, w: World) -> Case:
    member = w.member(src)
    return Case(
        "POST /api/v1/challenge", "POST", "/api/v1/challenge", junk_headers(src), pick_body(src, w, member),
        note="challenge",
    )  # fmt: skip


def work_header(src: Source, challenge: bytes) -> tuple[bytes | None, bool | None, str]:
    """An X-Peerfed-Work header: a solution, a weak or malformed one, or none. (value, ok, note)"""
    kind = src.pick(("solved", "solved", "solved", "upper", "missing", "weak", "odd", "long", "not-utf8", "random"))
    if kind in ("solved", "upper"):
        value = solve_work(challenge, WORK_BITS)
        return (value.upper() if kind == "upper" else value).encode(), True, f"work {kind}"
    if kind == "missing":
        return None, False, "no work"
    if kind == "weak":
        nonces = (n.to_bytes(2, "big") for n in range(65_536))
        nonce = next(n for n in nonces if work_bits(challenge, n) < WORK_BITS)
        return nonce.hex().encode(), False, "weak work"
    if kind == "odd":
        return src.pick((b"abc", b"zz", b"0x00", b"-1")), False, "malformed work"
    if kind == "long":
        return b"00" * 33, False, "33-byte work"
    if kind == "not-utf8":
        return src.pick((b"\xff\xfe", b"ab\xc3\xa9", b"\xed\xa0\x80")), False, "non-UTF-8 work"
    return header_value(src), None, "random work"


def gen_session(src: Source, w: World) -> Case:
    """Sign in (spec §13.4): checked in order -- the proof opens, names this node, proof of work for a
    peer that is not a member yet and gave no invite, the challenge is live, then the invite."""
    who = src.pick(("new", "new", "member", "member", "bare", "remote"))
    identity = {
        "new": Identity(os.urandom(32)),
        "member": w.member(src).identity,
        "bare": w.bare.identity,
        "remote": w.remote.identity,
    }[who]
    joining = w.joining(identity)
    challenge_kind = src.pick(("fresh", "fresh", "fresh", "fresh", "used", "expired", "unknown", "elsewhere"))
    challenge = w.challenge("fresh" if challenge_kind == "elsewhere" else challenge_kind)
    node = src.pick((w.a.url, "https://elsewhere.example")) if challenge_kind == "elsewhere" else w.b.url
    env = sign(identity, ClientAuth(node, challenge), created_at=w.now, expires_at=w.now + src.pick((1, 300, 600)))
    raw, note, must_fail, expect = signed_variant(src, w, env, identity)
    headers = junk_headers(src)
    work, work_ok, work_note = work_header(src, challenge)
    if work is not None:
        headers.append(("X-Peerfed-Work", work))
    invite = b""
    if one_in(src, 4):
        invite = src.pick((b"welcome", header_value(src), b"\xff\xfe", b"caf\xc3\xa9", b"x" * 4000, b"\xed\xa0\x80"))
        headers.append(("X-Peerfed-Invite", invite))
        note += f", invite {invite[:20]!r}"
    invited = bool(invite.strip(b" \t"))
    if note == "valid":
        if challenge_kind == "elsewhere":
            expect = frozenset({"auth.invalid"})
        elif joining and not invited and not work_ok:
            expect = None if work_ok is None else frozenset({"auth.work"})
        elif challenge_kind != "fresh":
            expect = frozenset({"auth.invalid"})
        elif joining and invited:
            expect = frozenset({"auth.invite"})  # no invite exists on this node
        must_fail = expect is not None
    return Case(
        "POST /api/v1/session", "POST", "/api/v1/session", headers, raw,
        note=f"{who}{' (joining)' if joining else ''}, {challenge_kind} challenge, {work_note}, {note}",
        must_fail=must_fail, expect=expect,
    )  # fmt: skip


def gen_put_keys(src: Source, w: World) -> Case:
    case, member = with_auth(src, w, "PUT /api/v1/keys", "PUT", "/api/v1/keys", bare=True)
    signer = member.identity if not one_in(src, 8) else w.someone_else(src, member.identity)
    env = make_bundle(src, w, signer, member.secret)
    if one_in(src, 10):
        env = make_listing(src, w, signer)  # a listing where a key bundle belongs
    case.body, note, must_fail, expect = signed_variant(src, w, env, signer, Context.KEY_BUNDLE)
    if signer != member.identity and note == "valid":
        must_fail, expect = True, frozenset({"auth.forbidden"})
    body_expect(case, expect, must_fail)
    case.note += f", {env.type} {note}"
    return case


def gen_get_keys(src: Source, w: World) -> Case:
    text = peer_text(src, w)
    case, _ = with_auth(src, w, "GET /api/v1/keys/{peer}", "GET", "/api/v1/keys/" + (url_part(src, text) or "x"))
    case.note += f", peer {text[:70]!r}"
    return case


def gen_post_listing(src: Source, w: World) -> Case:
    case, member = with_auth(src, w, "POST /api/v1/listings", "POST", "/api/v1/listings", bare=True)
    signer = member.identity if not one_in(src, 10) else w.someone_else(src, member.identity)
    what = src.pick(("listing", "listing", "listing", "withdrawal", "withdrawal", "erasure", "long-life", "bundle"))
    expect: frozenset[str] | None = None
    if what == "listing":
        env = make_listing(src, w, signer)
        if member is w.bare and signer == member.identity:
            expect = frozenset({"request.invalid"})  # no key bundle yet
    elif what == "long-life":
        env = make_listing(src, w, signer, life=30 * DAY + src.pick((1, DAY, 60 * DAY)))
        expect = frozenset({"time.lifetime", "request.invalid"})
    elif what == "withdrawal":
        own = [i for i, author in w.held if author == member.name]
        target = src.pick([*own, *w.listing_ids(), os.urandom(32).hex()])
        env = sign(signer, Withdrawal(bytes.fromhex(target)), created_at=w.now, expires_at=w.now + DAY)
        case.withdraws = target if target in own else ""
    elif what == "erasure":
        env = sign(signer, Erasure(), created_at=w.now, expires_at=w.now + DAY)
        expect = frozenset({"request.invalid"})
    else:
        env = make_bundle(src, w, signer, member.secret)
    raw, note, must_fail, body_codes = signed_variant(src, w, env, signer, Context.ENVELOPE)
    if note != "valid":
        expect = body_codes
        case.withdraws = ""
    elif signer != member.identity:
        expect = frozenset({"auth.forbidden"})
    case.body = raw
    body_expect(case, expect, must_fail or (note == "valid" and expect is not None))
    case.note += f", {what} {note}"
    return case


def gen_get_listing(src: Source, w: World) -> Case:
    k = src.integer(0, 5)
    if k <= 2:
        text = src.pick(w.listing_ids())
    elif k == 3:
        text = src.pick((os.urandom(32).hex(), "0" * 63, "0" * 66, "ZZ" * 32, src.pick(w.listing_ids()).upper(), "a"))
    else:
        text = some_text(src, w)
    target = "/api/v1/listings/" + (url_part(src, text) or "0")
    case, _ = with_auth(src, w, "GET /api/v1/listings/{id}", "GET", target)
    case.note += f", id {text[:70]!r}"
    return case


DIRECTORY = ("kind", "topic", "lang", "format", "timing", "vocab", "before", "limit")


def gen_directory(src: Source, w: World) -> Case:
    target = "/api/v1/directory" + query(src, w, DIRECTORY)
    return with_auth(src, w, "GET /api/v1/directory", "GET", target)[0]


def gen_send(src: Source, w: World) -> Case:
    case, member = with_auth(src, w, "POST /api/v1/send", "POST", "/api/v1/send")
    to = src.pick([w.honest, w.remote, w.stranger, member, *w.fuzz])
    sealed = seal(make_inner(src, w, member.identity, to.id), to.secret.public)
    case.body, note, expect = sealed_variant(src, w, sealed.raw)
    destination = None
    if one_in(src, 2):
        destination = src.pick((
            w.b.url.encode(), (w.b.url + "/").encode(), w.a.url.encode(), w.c.url.encode(), w.dead_url.encode(),
            b"https://unknown.example", b"", b" ", header_value(src), b"http://\xff\xfe", b"caf\xc3\xa9",
            b"https://" + b"x" * 3000,
        ))  # fmt: skip
        case.headers.append(("X-Peerfed-Destination", destination))
        note += f", to {destination[:40]!r}"
    if note == "valid" and to is w.stranger and destination is None and not w.knows(to.identity):
        expect = frozenset({"not_found"})  # unknown here (fuzzers may sign it in, or push its key bundle)
    if note == "valid" and destination in (b"https://unknown.example", w.dead_url.encode()):
        expect = frozenset({"federation.refused"})
    body_expect(case, expect, must_fail=expect is not None and "time" not in note)
    case.note += f", sealed to {to.name}: {note}"
    return case


def gen_mailbox(src: Source, w: World) -> Case:
    return with_auth(src, w, "GET /api/v1/mailbox", "GET", "/api/v1/mailbox" + query(src, w, ("after", "limit")))[0]


def gen_ack(src: Source, w: World) -> Case:
    case, _ = with_auth(src, w, "POST /api/v1/mailbox/ack", "POST", "/api/v1/mailbox/ack")
    k = src.integer(0, 6)
    if k <= 2:
        pool = [*w.mail, os.urandom(32).hex(), "0" * 63, "zz", "", "00" * 32, *w.listing_ids()[:2]]
        ids: Any = [src.pick(pool) if not one_in(src, 6) else json_value(src, w) for _ in range(src.integer(0, 5))]
        value: Any = {"ids": ids}
    elif k == 3:
        value = {"ids": ["00" * 32] * src.pick((1000, 1001, 5000))}
    elif k == 4:
        value = {"ids": json_value(src, w)}
    else:
        value = json_value(src, w)
    case.body, note = render_json(src, value)
    case.note += f", {note}"
    return case


def live_frame(src: Source, w: World, member: Member) -> tuple[str, Any, dict[str, Any]]:
    kind = src.pick(("auth-good", "auth-good", "auth-good", "auth-bad", "ack", "ack", "object", "junk", "binary",
                     "ping", "big"))  # fmt: skip
    if kind == "auth-good":
        after_ok = one_in(src, 2)
        # "after" is an integer mailbox position (spec §13.5): "3" and true are refused, not coerced.
        after: object = (
            src.pick((0, 1, 5)) if after_ok else src.pick([*INTS, *FLOATS, "x", None, [], {}, "1e3", "3", True])
        )
        message: dict[str, Any] = {"type": "auth", "token": member.token}
        if not (after_ok and one_in(src, 4)):
            message["after"] = after
        if after_ok and isinstance(after, int) and after >= 2**63:
            after_ok = False
        return "text", json.dumps(message), {"kind": kind, "after_ok": after_ok}
    if kind == "auth-bad":
        token = src.pick([member.token + "x", member.token[:-1], "", None, 5, [member.token], "\ud800"])
        token = some_text(src, w) if one_in(src, 4) else token
        message = {"type": "auth", "token": token, "after": src.pick((0, "x", 10**30))}
        return "text", json.dumps(message), {"kind": kind}
    if kind == "ack":
        ids: object = src.pick(
            (None, "x", 5, {}, [], [src.pick([*w.mail, "zz"])], [json_value(src, w)], ["00" * 32] * 3)
        )
        return "text", json.dumps({"type": "ack", "ids": ids}), {"kind": kind}
    if kind == "object":
        value = json_value(src, w)
        message = value if isinstance(value, dict) else {"value": value}
        message["type"] = src.pick(("item", "ready", "acked", "error", "", None, 5, "AUTH", "auth ", "Ack"))
        return "text", json.dumps(message), {"kind": kind}
    if kind == "junk":  # text that is not a JSON object
        data, _ = render_json(src, json_value(src, w))
        text = data.decode("utf-8", "replace") if not one_in(src, 3) else src.text(60)
        text = "".join(c for c in text if not 0xD800 <= ord(c) <= 0xDFFF)
        if isinstance(json_loads_or_none(text), dict):
            text = "[" + text + "]"
        # An empty frame is no JSON, or an empty request ({}) as an empty HTTP body is: either answer.
        return "text", text, {"kind": kind if text.strip() else "empty"}
    if kind == "binary":
        return "binary", src.raw(0, 200), {"kind": kind}
    if kind == "ping":
        return "ping", b"", {"kind": kind}
    return "text", "x" * src.integer(LIVE_FRAME_LIMIT + 1, BODY_LIMIT), {"kind": kind}


def json_loads_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def gen_live(src: Source, w: World) -> Case:
    member = w.member(src)
    frames = [live_frame(src, w, member) for _ in range(src.integer(1, 4))]
    big = [i for i, f in enumerate(frames) if f[2]["kind"] == "big"]
    if big:
        frames = frames[: big[0] + 1]  # the node closes the connection after a frame that is too big
    if one_in(src, 8):
        frames.append(("close", b"", {"kind": "close"}))
    return Case("GET /api/v1/live", "GET", "/api/v1/live", frames=frames, member=member.name, note="live")


def gen_move(src: Source, w: World) -> Case:
    case, _ = with_auth(src, w, "POST /api/v1/move", "POST", "/api/v1/move")
    to = src.pick((
        w.a.url, w.a.url + "/", w.b.url, w.c.url, w.dead_url, "https://unknown.example", "", "\ud800",
        "http://" + "x" * 3000, some_text(src, w), None, 5, [w.a.url], {"to": w.a.url},
    ))  # fmt: skip
    value: Any = {"to": to} if not one_in(src, 6) else json_value(src, w)
    case.body, note = render_json(src, value)
    case.note += f", {note}, to {str(to)[:50]!r}"
    return case


def gen_erase(src: Source, w: World) -> Case:
    case, member = with_auth(src, w, "POST /api/v1/erase", "POST", "/api/v1/erase")
    signer = member.identity if not one_in(src, 6) else w.someone_else(src, member.identity)
    env = sign(signer, Erasure(), created_at=w.now, expires_at=w.now + src.pick((60, DAY, 90 * DAY)))
    if one_in(src, 6):
        env = make_listing(src, w, signer)
    raw, note, must_fail, expect = signed_variant(src, w, env, signer, Context.ENVELOPE)
    if note == "valid" and (signer != member.identity or env.type != "erasure"):
        must_fail, expect = True, frozenset({"auth.forbidden"})
    case.body = raw
    body_expect(case, expect, must_fail)
    case.note += f", {env.type} {note}"
    return case


def gen_post_report(src: Source, w: World) -> Case:
    case, member = with_auth(src, w, "POST /api/v1/reports", "POST", "/api/v1/reports")
    target = src.pick((
        *w.listing_ids()[:5], os.urandom(32).hex(), "00" * 32, *w.peer_texts(), peer_text(src, w), "pf1", "ab",
        "0" * 63, None, 5, ["x"], "\ud800",
    ))  # fmt: skip
    reason = src.pick((
        "It asks for phone numbers.", "", "x" * 2000, "x" * 2001, "\u00e9" * 1000, "\u00e9" * 1001, "\ud800",
        "ok \udfff", None, 5, ["why"], some_text(src, w),
    ))  # fmt: skip
    author = w.someone_else(src, member.identity)
    inner = make_inner(src, w, author, member.id)
    shown = base64.b64encode(inner.raw).decode()
    garbled = base64.b64encode(signed_variant(src, w, inner, author)[0]).decode()
    disclosed = src.pick((
        None, [], [shown], [garbled], [shown, garbled], ["not base64!"], [5], "str", [shown] * 21,
        [base64.b64encode(src.raw(0, 99)).decode()],
    ))  # fmt: skip
    value: dict[str, Any] = {"target": target, "reason": reason}
    if disclosed is not None:
        value["disclosed"] = disclosed
    if one_in(src, 6):
        value.pop(src.pick(list(value)))
    if one_in(src, 8):
        value = json_value(src, w)
    case.body, note = render_json(src, value)
    case.note += f", {note}, target {str(target)[:40]!r}, reason {str(reason)[:20]!r}"
    return case


def gen_get_reports(src: Source, w: World) -> Case:
    return with_auth(src, w, "GET /api/v1/reports", "GET", "/api/v1/reports" + query(src, w, ("status",)))[0]


def gen_well_known(src: Source, w: World) -> Case:
    target = "/.well-known/peerfed" + query(src, w, ("url",))
    return Case("GET /.well-known/peerfed", "GET", target, junk_headers(src), note="node document")


ROUTES = [
    ("POST", "/api/v1/challenge"), ("POST", "/api/v1/session"), ("PUT", "/api/v1/keys"), ("GET", "/api/v1/keys/x"),
    ("POST", "/api/v1/listings"), ("GET", "/api/v1/listings/00"), ("GET", "/api/v1/directory"),
    ("POST", "/api/v1/send"), ("GET", "/api/v1/mailbox"), ("POST", "/api/v1/mailbox/ack"), ("GET", "/api/v1/live"),
    ("POST", "/api/v1/move"), ("POST", "/api/v1/erase"), ("POST", "/api/v1/reports"), ("GET", "/api/v1/reports"),
    ("GET", "/.well-known/peerfed"), ("POST", "/federation/v1/follow"), ("POST", "/federation/v1/batch"),
    ("GET", "/federation/v1/listings"), ("GET", "/federation/v1/keys/x"), ("POST", "/api/v1/prekeys"),
    ("GET", "/api/v1/prekeys"), ("POST", "/api/v1/prekeys/claim"), ("POST", "/federation/v1/prekeys/claim"),
]  # fmt: skip


def gen_misc(src: Source, w: World) -> Case:
    """Wrong methods, unknown and near-miss paths, the live route without an upgrade."""
    method, path = src.pick(ROUTES)
    k = src.integer(0, 5)
    if k == 0:
        method = src.pick([m for m in METHODS if m != method])
    elif k == 1:
        path += src.pick(("/", "/x", "//", "/..", "%2F", ";x", "/" + url_part(src, some_text(src, w))))
    elif k == 2:
        path = path.replace("/v1/", src.pick(("/v2/", "/V1/", "//v1/", "/v1//", "/%76%31/")))
    elif k == 3:
        path = src.pick(("/", "//", "/api", "/api/v1", "/%2e%2e/%2e%2e/etc/passwd", "/api/v1/keys/" + "a" * 3000,
                         "/" + url_part(src, some_text(src, w))))  # fmt: skip
    member = w.member(src)
    headers, _, _ = client_auth(src, member)
    target = path + query(src, w, ("after", "limit"))
    case = Case("misc", method, target, headers + junk_headers(src), member=member.name)
    if method != "GET" or one_in(src, 4):
        case.body = pick_body(src, w, member)
    case.note = "misc"
    return case
