"""Building blocks of inputs: URL parts, header values, sessions, objects to sign, JSON bodies."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from peerfed.protocol import (
    ClientAuth,
    EncryptionSecret,
    Envelope,
    Identity,
    KeyBundle,
    Kind,
    Listing,
    Message,
    PeerId,
    Timing,
    Window,
    Withdrawal,
    pack,
    seal,
    sign,
)
from tests.node.harness import DAY

from .cases import Case
from .mutators import mutate_bytes
from .sources import (
    BODY_LIMIT,
    CONTENT_TYPES,
    FLOATS,
    FORMATS,
    INTS,
    LANGS,
    QUERY_INTS,
    STRINGS,
    SUMMARIES,
    TOPICS,
    TZS,
    VOCAB,
    Source,
    blob,
    one_in,
)
from .world import Member, World, seeded

__all__ = [
    "pct", "url_part", "some_text", "header_value", "junk_headers", "client_auth", "AUTH_REQUIRED", "with_auth",
    "body_expect", "make_listing", "make_bundle", "make_inner", "any_object", "json_value", "render_json",
    "pick_body", "peer_text", "query"
]  # fmt: skip


def pct(data: bytes) -> str:
    return "".join(f"%{b:02X}" for b in data)


def url_part(src: Source, value: str) -> str:
    """A path segment or query value: percent-encoded UTF-8 (surrogates too), sometimes raw bytes."""
    if one_in(src, 8):
        return pct(src.raw(0, 12))
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def some_text(src: Source, w: World) -> str:
    k = src.integer(0, 4)
    if k == 0:
        return src.text(40)
    if k == 1:
        return src.pick(w.strings())
    if k == 2:
        return src.pick(STRINGS) + src.text(6)
    return src.pick(STRINGS)


def header_value(src: Source) -> bytes:
    """Bytes an HTTP/1.1 parser lets through in a header value: visible ASCII, tab, and 0x80-0xff."""
    return bytes(b for b in src.raw(0, 40) if b == 9 or 0x20 <= b <= 0x7E or b >= 0x80).strip(b" \t")


def junk_headers(src: Source) -> list[tuple[str, bytes]]:
    headers: list[tuple[str, bytes]] = []
    if one_in(src, 3):
        headers.append(("Content-Type", src.pick(CONTENT_TYPES)))
    if one_in(src, 6):
        headers.append((src.pick(("X-Junk", "Accept", "X-Forwarded-For", "Origin", "Cookie")), header_value(src)))
    return headers


def client_auth(src: Source, member: Member) -> tuple[list[tuple[str, bytes]], bool, str]:
    """A session header: usually the member's token, else one of the ways to get it wrong."""
    token = member.token.encode()
    k = src.integer(0, 19)
    if k >= 6:
        return [("Authorization", b"Bearer " + token)], False, "token"
    variants: list[tuple[bytes | None, bool, str]] = [
        (None, True, "no token"),
        (b"Bearer " + src.pick([b"", b"x", token[:-1], token + b"x", token.upper(), token[::-1]]), True, "bad token"),
        (src.pick([b"bearer ", b"Basic ", b"Bearer", b"Token ", b"Peerfed-Node "]) + token, True, "bad scheme"),
        (b"Bearer " + token + src.pick([b"\xff", b"\xc3\x28", b"\xe2\x82", b"\x80abc"]), True, "non-UTF-8 token"),
        (b"Bearer " + src.pick([b"\xff\xfe", b"\xed\xa0\x80", bytes(range(0x80, 0xA0))]), True, "non-UTF-8 token"),
        (b"Bearer  " + token + b"  ", False, "spaced token"),
    ]
    value, must_fail, note = variants[k]
    return ([] if value is None else [("Authorization", value)]), must_fail, note


AUTH_REQUIRED = frozenset({"auth.required"})


def with_auth(
    src: Source, w: World, endpoint: str, method: str, target: str, *, bare: bool = False
) -> tuple[Case, Member]:
    """A request on a fuzz peer's session (sometimes a broken one: then it must get auth.required)."""
    member = w.member(src, bare=bare)
    headers, bad, note = client_auth(src, member)
    case = Case(
        endpoint, method, target, headers + junk_headers(src), note=note, must_fail=bad,
        expect=AUTH_REQUIRED if bad else None, member=member.name,
    )  # fmt: skip
    return case, member


def body_expect(case: Case, expect: frozenset[str] | None, must_fail: bool) -> None:
    """The body's verdict counts only once the session passed (auth is checked first)."""
    if case.expect is None:
        case.expect = expect
    case.must_fail = case.must_fail or must_fail


def make_listing(src: Source, w: World, signer: Identity, life: int | None = None) -> Envelope:
    def some(pool: Sequence[str], lo: int, hi: int) -> tuple[str, ...]:
        return tuple(dict.fromkeys(src.pick(pool) for _ in range(src.integer(lo, hi))))

    body = Listing(
        kind=src.pick((Kind.OFFER, Kind.REQUEST)),
        topics=some(TOPICS, 1, 3),
        languages=some(LANGS, 1, 3),
        formats=some(FORMATS, 1, 3),  # type: ignore[arg-type]
        timing=src.pick((Timing.NOW, Timing.SOON, Timing.SCHEDULED)),
        summary=src.pick(SUMMARIES),
        vocab=some(VOCAB, 0, 2),
        tz=src.pick(TZS),
        availability=(Window(0b0011111, 1080, 1260),) if one_in(src, 2) else (),
        capacity=src.integer(1, 100),
        area=src.pick((None, "Madrid")),
    )
    life = life or src.pick((60, 3600, DAY, 7 * DAY, 30 * DAY))
    created = w.now - min(src.pick((0, 0, 30, 3600)), life // 2)
    return sign(signer, body, created_at=created, expires_at=created + life)


def make_bundle(src: Source, w: World, signer: Identity, secret: EncryptionSecret | None = None) -> Envelope:
    if secret is None or one_in(src, 4):
        secret = EncryptionSecret(seeded(str(src.integer(0, 99))))
    home = src.pick((w.b.url, w.a.url, None, "https://x.example"))
    body = KeyBundle(secret.public, home=home, pseudonym=src.pick((None, "R")))
    created = w.now - src.pick((0, 60))
    return sign(signer, body, created_at=created, expires_at=created + src.pick((DAY, 30 * DAY, 365 * DAY)))


def make_inner(src: Source, w: World, signer: Identity, to: PeerId) -> Envelope:
    text = src.pick(("hello", "\u00bfc\u00f3mo est\u00e1s?", "x" * 500))
    message = Message(to, bytes(16), src.integer(1, 1000), text)
    return sign(signer, message, created_at=w.now, expires_at=w.now + src.pick((60, DAY, 3 * DAY)))


def any_object(src: Source, w: World, member: Member) -> bytes:
    """A valid object of any kind, to send where another kind belongs."""
    k = src.integer(0, 8)
    if k == 0:
        return make_listing(src, w, member.identity).raw
    if k == 1:
        return make_bundle(src, w, member.identity, member.secret).raw
    if k == 2:
        return sign(member.identity, Withdrawal(os.urandom(32)), created_at=w.now, expires_at=w.now + DAY).raw
    if k == 3:
        return make_inner(src, w, member.identity, w.honest.id).raw
    if k == 4:
        return seal(make_inner(src, w, member.identity, w.honest.id), w.honest.secret.public).raw
    if k == 5:
        return w.document
    if k == 6:
        auth = ClientAuth(w.b.url, os.urandom(32))
        return sign(member.identity, auth, created_at=w.now, expires_at=w.now + 300).raw
    if k == 7:
        return pack([["listing", make_listing(src, w, member.identity).raw]])
    return base64.b64decode(w.a_signs("POST", "/federation/v1/batch", b"").split(" ", 1)[1])


def json_value(src: Source, w: World, depth: int = 0) -> Any:
    k = src.integer(0, 9 if depth < 3 else 5)
    if k == 0:
        return None
    if k == 1:
        return one_in(src, 2)
    if k == 2:
        return src.pick(INTS)
    if k == 3:
        return src.pick(FLOATS)
    if k in (4, 5):
        return some_text(src, w)
    if k in (6, 7):
        return [json_value(src, w, depth + 1) for _ in range(src.integer(0, 4))]
    keys = ["ids", "to", "target", "reason", "disclosed", "type", "token", "after", ""]
    return {src.pick(keys) if one_in(src, 2) else src.text(8): json_value(src, w, depth + 1) for _ in range(3)}


def render_json(src: Source, value: Any) -> tuple[bytes, str]:
    """JSON as sent: plain, raw UTF-8 (lone surrogates as CESU-8), UTF-16, garbled, deeply nested, junk."""
    how = src.pick(("plain",) * 4 + ("raw-utf8", "utf16", "garbled", "nested", "tail", "empty", "junk"))
    plain = json.dumps(value).encode()
    if how == "plain":
        return plain, "json"
    if how == "raw-utf8":
        return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"), "json, raw utf-8"
    if how == "utf16":
        return json.dumps(value).encode("utf-16"), "json, utf-16"
    if how == "garbled":
        return mutate_bytes(src, plain, [plain, b'{"ids": [', b"]}", b"\\ud800"]), "garbled json"
    if how == "nested":
        depth = src.pick((100, 1_000, 5_000, 20_000, 60_000))
        opener = src.pick(("[", '{"ids":[', '{"a":'))
        closer = "}" if opener == '{"a":' else "]"
        depth = min(depth, BODY_LIMIT // len(opener) - 1)
        return (opener * depth + "1" + closer * depth * src.integer(0, 1)).encode(), f"json nested {depth} deep"
    if how == "tail":
        return plain + src.pick((b" x", b"}", b"\x00", b"\n\n{}")), "json with a tail"
    if how == "empty":
        return b"", "empty body"
    return src.raw(0, 200), "random bytes"


def pick_body(src: Source, w: World, member: Member) -> bytes:
    k = src.integer(0, 5)
    if k == 0:
        return b""
    if k == 1:
        return src.raw(0, 300)
    if k == 2:
        return render_json(src, json_value(src, w))[0]
    if k == 3:
        return blob(src, src.integer(BODY_LIMIT - 100, 2 * BODY_LIMIT))
    return any_object(src, w, member)


def peer_text(src: Source, w: World) -> str:
    k = src.integer(0, 6)
    if k <= 2:
        return src.pick(w.peer_texts())
    if k == 3:
        text = list(src.pick(w.peer_texts()))
        for _ in range(src.integer(1, 3)):
            text[src.integer(0, len(text) - 1)] = src.pick(["\u0131", "\u017f", "\u212a", "0", "1", "8", "=", "a", "Z"])
        return "".join(text)
    if k == 4:
        return src.pick(w.peer_texts()).upper()
    return some_text(src, w)


def query(src: Source, w: World, names: Sequence[str], limit: int = 6_000) -> str:
    """A query string of junk and near-miss parameters. ``limit`` keeps the request line under aiohttp's
    8,190 bytes: past that its HTTP parser answers before the node does (see the report)."""
    params: list[str] = []
    for _ in range(src.integer(0, 4)):
        name = src.pick([*names, "x", "", "limit[]", "\u00e9"])
        k = src.integer(0, 3)
        value = src.pick(QUERY_INTS) if k == 0 else (some_text(src, w) if k == 1 else src.pick(STRINGS))
        param = f"{url_part(src, name)}={url_part(src, value)}" if not one_in(src, 10) else url_part(src, name)
        if sum(len(p) + 1 for p in params) + len(param) <= limit:
            params.append(param)
    return ("?" + "&".join(params)) if params else ""
