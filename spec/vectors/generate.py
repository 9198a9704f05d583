"""Regenerate peerfed's v1 test vectors, byte for byte, from fixed keys, nonces and times.

    python spec/vectors/generate.py            # rewrite the JSON files beside this script
    python spec/vectors/generate.py --check    # exit 1 if any file differs from what it makes

Everything is deterministic: Ed25519 signing is (RFC 8032), and every seed, ephemeral key,
nonce and timestamp is fixed below. Values inside the files use a typed JSON form so that
str and bin stay apart: null, true, false, {"int": "<decimal>"}, {"str": "..."},
{"bin": "<hex>"}, and JSON arrays for msgpack arrays.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peerfed.protocol import (
    Agreement,
    Connection,
    ConnectionStateError,
    Context,
    EncryptionSecret,
    End,
    Envelope,
    Identity,
    KeyBundle,
    Listing,
    Message,
    PeerId,
    ReachOut,
    RemoteError,
    Response,
    Terms,
    Window,
    Withdrawal,
    crypto,
    open_sealed,
    open_signed,
    pack,
    prekeys,
    ratchet,
    seal,
    sealing,
    sealing2,
    sign,
    topics,
    unpack,
)
from peerfed.protocol.document import open_document
from peerfed.protocol.encoding import Value
from peerfed.protocol.envelope import _frame
from peerfed.protocol.errors import InvalidValue
from peerfed.protocol.identity import EncryptionKey
from peerfed.protocol.node_bodies import (
    ClientAuth,
    Erasure,
    Move,
    NodeDocument,
    NodeKey,
    NodeRequest,
    Resource,
    WrongNode,
    body_hash,
    client_auth_for,
    erased_hash,
)
from peerfed.protocol.sealing import parse_sealed
from peerfed.protocol.sign_in import open_sign_in
from peerfed.protocol.web_client import web_client_hash, web_client_manifest
from peerfed.protocol.work import check_work, solve_work, work_bits

HERE = Path(__file__).resolve().parent
SCHEMA = "peerfed-vectors/v1"
NOW = 1_800_000_000  # 2027-01-15T08:00:00Z, the "now" every vector is checked at
DAY = 86_400

NAMES = ("alice", "bob", "carol")
SEEDS = {name: bytes([0xA1 + 0x10 * i]) * 32 for i, name in enumerate(NAMES)}
X_SECRETS = {name: bytes([0xA2 + 0x10 * i]) * 32 for i, name in enumerate(NAMES)}
IDS = {name: Identity(seed) for name, seed in SEEDS.items()}
XS = {name: EncryptionSecret(secret) for name, secret in X_SECRETS.items()}

# Ed25519 encodings a verifier MUST refuse as a key or as R (spec §4.1, §3). The points come
# from libsodium (its small-order list; crypto_core_ed25519_add for the mixed-order key).
_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
IDENTITY_POINT = bytes([1]) + bytes(31)  # order 1
ORDER_8_POINT = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
NON_CANONICAL_POINT = (_P + 3).to_bytes(32, "little")  # y = p + 3: y is not reduced


def typed(value: Value) -> Any:
    """A msgpack value in the typed JSON form."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return {"int": str(value)}
    if isinstance(value, str):
        return {"str": value}
    if isinstance(value, bytes):
        return {"bin": value.hex()}
    return [typed(v) for v in value]


def keys_section() -> dict[str, Any]:
    return {
        name: {
            "ed25519_seed": SEEDS[name].hex(),
            "ed25519_public": IDS[name].peer_id.hex,
            "peer_id": IDS[name].peer_id.text,
            "x25519_secret": X_SECRETS[name].hex(),
            "x25519_public": XS[name].public.hex,
        }
        for name in NAMES
    }


def document(algorithm: str, notes: str, groups: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    tc = 0
    for group in groups:
        for test in group["tests"]:
            tc += 1
            test["tcId"] = tc
            test.setdefault("flags", [])
            # tcId first, for people reading the file.
            ordered = {"tcId": test.pop("tcId"), **test}
            test.clear()
            test.update(ordered)
    return {
        "schema": SCHEMA,
        "algorithm": algorithm,
        "numberOfTests": tc,
        "notes": notes,
        "now": NOW,
        **extra,
        "testGroups": groups,
    }


def error_of(action: Callable[[], object]) -> str | None:
    try:
        action()
    except RemoteError as exc:
        return exc.code
    return None


def expect_local(code: str, action: Callable[[], object]) -> str:
    """As ``expect``, for a refusal the client makes on its own (a local error, spec §13.4)."""
    try:
        action()
    except WrongNode as exc:
        if exc.code != code:
            raise AssertionError(f"the spec says {code}, the implementation gives {exc.code}") from exc
        return code
    raise AssertionError(f"the spec says {code}; the implementation accepts")


def expect(code: str, action: Callable[[], object], what: str) -> str:
    """``code``, the error the spec declares for a case, once the implementation is seen to agree.

    The expected codes are written by hand in the case tables and the tables below, from the spec;
    they are never read from the implementation. If it disagrees, generation stops: one of the
    two is a bug (spec §11).
    """
    got = error_of(action)
    if got != code:
        raise AssertionError(f"{what}: the spec says {code}, the implementation gives {got}")
    return code


# The error each kind of defect (a case's first flag) gets, declared by hand from the spec.
ENCODING_CODES = {  # §2.3
    "Truncated": "encoding.malformed",
    "Malformed": "encoding.malformed",
    "InvalidUtf8": "encoding.malformed",
    "NonCanonical": "encoding.non_canonical",
    "ForbiddenType": "encoding.forbidden_type",
    "TrailingBytes": "encoding.trailing_bytes",
    "TooDeep": "encoding.too_deep",
}
SIGNED_CODES = {  # §5.5, in its order; a bad key or R is step 4 (§3, §4.1)
    "Oversize": "size.too_large",
    "Truncated": "encoding.malformed",
    "UnknownVersion": "version.unsupported",
    "BadSignature": "signature.invalid",
    "WrongContext": "signature.invalid",
    "SmallOrderKey": "signature.invalid",
    "NonCanonicalKey": "signature.invalid",
    "MixedOrderKey": "signature.invalid",
    "SmallOrderR": "signature.invalid",
    "NonCanonicalR": "signature.invalid",
    "NonCanonicalS": "signature.invalid",
    "MixedOrderR": "signature.invalid",
    **{flag: code for flag, code in ENCODING_CODES.items() if flag not in ("Truncated",)},
    "Schema": "schema.invalid",
    "UnknownType": "schema.unknown_type",
    "Lifetime": "time.lifetime",
    "Future": "time.future",
    "Expired": "time.expired",
}
SEALED_CODES = {  # §7.3, then §5.5 for the inner object
    **SIGNED_CODES,
    "Tampered": "seal.decrypt_failed",
    "LowOrder": "seal.decrypt_failed",
    "WrongRecipient": "seal.wrong_recipient",
    "BadPadding": "seal.bad_padding",
    "WrongSender": "seal.wrong_sender",
}
PEER_ID_TEXT_CODE = "schema.invalid"  # §4.2: every fault of the text form


# --- encoding -----------------------------------------------------------------------------


def encoding_vectors() -> dict[str, Any]:
    valid_values: list[tuple[str, Value]] = [
        ("nil", None),
        ("false", False),
        ("true", True),
        ("zero", 0),
        ("largest positive fixint", 127),
        ("smallest uint8", 128),
        ("largest uint8", 255),
        ("smallest uint16", 256),
        ("smallest uint32", 65_536),
        ("smallest uint64", 2**32),
        ("largest uint64", 2**64 - 1),
        ("-1, negative fixint", -1),
        ("smallest negative fixint", -32),
        ("largest int8", -33),
        ("smallest int8", -128),
        ("largest int16", -129),
        ("largest int32", -32_769),
        ("largest int64", -(2**31) - 1),
        ("smallest int64", -(2**63)),
        ("empty str", ""),
        ("UTF-8 str", "escucho, sin juicio"),
        ("non-ASCII str", "écoute ✓"),
        ("31-byte str, longest fixstr", "a" * 31),
        ("32-byte str, shortest str8", "a" * 32),
        ("256-byte str, shortest str16", "b" * 256),
        ("empty bin", b""),
        ("bin8", bytes(range(32))),
        ("256-byte bin, shortest bin16", bytes(256)),
        ("empty array", []),
        ("15 items, longest fixarray", list(range(15))),
        ("16 items, shortest array16", list(range(16))),
        ("nested arrays", [1, ["two", [b"\x03", None, True]]]),
        ("eight levels of arrays, the deepest allowed", [[[[[[[[]]]]]]]]),
    ]
    valid = [
        {"comment": comment, "value": typed(value), "encoded": pack(value).hex(), "result": "valid"}
        for comment, value in valid_values
    ]
    invalid_inputs: list[tuple[str, str, list[str]]] = [
        ("empty input", "", ["Truncated"]),
        ("uint8 holding a fixint value", "cc05", ["NonCanonical"]),
        ("uint16 holding a uint8 value", "cd00c8", ["NonCanonical"]),
        ("uint64 holding a uint32 value", "cf00000000ffffffff", ["NonCanonical"]),
        ("int8 holding a non-negative value", "d005", ["NonCanonical"]),
        ("int16 holding an int8 value", "d1ff80", ["NonCanonical"]),
        ("int64 holding a negative fixint", "d3ffffffffffffffff", ["NonCanonical"]),
        ("str8 holding a fixstr", "d903616263", ["NonCanonical"]),
        ("str16 holding a str8", "da0020" + "61" * 32, ["NonCanonical"]),
        ("bin16 holding a bin8", "c50003010203", ["NonCanonical"]),
        ("array16 holding a fixarray", "dc00020102", ["NonCanonical"]),
        ("float32", "ca3f800000", ["ForbiddenType"]),
        ("float64", "cb3ff0000000000000", ["ForbiddenType"]),
        ("fixmap", "81a161a162", ["ForbiddenType"]),
        ("empty map", "80", ["ForbiddenType"]),
        ("fixext1", "d40101", ["ForbiddenType"]),
        ("timestamp extension", "d6ff00000001", ["ForbiddenType"]),
        ("two values", "0102", ["TrailingBytes"]),
        ("array followed by a byte", "920102c0", ["TrailingBytes"]),
        ("truncated str", "a36162", ["Truncated"]),
        ("truncated array", "930102", ["Truncated"]),
        ("truncated uint32", "ce0001", ["Truncated"]),
        ("reserved byte 0xc1", "c1", ["Malformed"]),
        ("invalid UTF-8 in a str", "a2c328", ["InvalidUtf8"]),
        ("UTF-16 surrogate encoded in a str", "a3eda080", ["InvalidUtf8"]),
        ("nine levels of arrays", "91" * 9 + "c0", ["TooDeep"]),
        ("uint32 holding a uint16 value", "ce0000ffff", ["NonCanonical"]),
        ("uint32 holding a fixint", "ce00000005", ["NonCanonical"]),
        ("int32 holding an int16 value", "d2ffff8000", ["NonCanonical"]),
        ("int32 holding a non-negative value", "d200010000", ["NonCanonical"]),
        ("str32 holding a fixstr", "db00000003616263", ["NonCanonical"]),
        ("bin32 holding a bin8", "c600000003010203", ["NonCanonical"]),
        ("array32 holding a fixarray", "dd000000020102", ["NonCanonical"]),
    ]
    invalid = []
    for comment, hexed, flags in invalid_inputs:
        data = bytes.fromhex(hexed)
        invalid.append(
            {
                "comment": comment,
                "encoded": hexed,
                "result": "invalid",
                "error": expect(ENCODING_CODES[flags[0]], lambda data=data: unpack(data), comment),
                "flags": flags,
            }
        )
    return document(
        "peerfed/v1 canonical msgpack profile (spec §2)",
        "Valid: decoding 'encoded' gives 'value' and encoding 'value' gives 'encoded'. "
        "Invalid: decoding 'encoded' fails with 'error'.",
        [
            {"type": "CanonicalEncoding", "tests": valid},
            {"type": "RejectedEncoding", "tests": invalid},
        ],
    )


# --- identity -----------------------------------------------------------------------------


def identity_vectors() -> dict[str, Any]:
    tests = []
    for name in NAMES:
        tests.append(
            {
                "comment": f"{name}'s identity",
                "ed25519_seed": SEEDS[name].hex(),
                "ed25519_public": IDS[name].peer_id.hex,
                "peer_id": IDS[name].peer_id.text,
                "result": "valid",
            }
        )
    x_tests = [
        {
            "comment": f"{name}'s encryption key",
            "x25519_secret": X_SECRETS[name].hex(),
            "x25519_public": XS[name].public.hex,
            "result": "valid",
        }
        for name in NAMES
    ]
    good = IDS["alice"].peer_id.text
    wrong_char = good[:-1] + ("a" if good[-1] != "a" else "b")
    bad_texts = [
        ("the last character changed: checksum fails", wrong_char, ["BadChecksum"]),
        ("two characters swapped", good[:10] + good[11] + good[10] + good[12:], ["BadChecksum"]),
        ("wrong prefix", "pf2" + good[3:], ["BadPrefix"]),
        ("one character short", good[:-1], ["BadLength"]),
        ("not base32 ('1' is outside the alphabet)", good[:-2] + "1" + good[-1], ["BadAlphabet"]),
        ("non-zero trailing bits", _nonzero_tail(good), ["NonCanonical"]),
        ("the key is the identity point (small order)", PeerId(IDENTITY_POINT).text, ["SmallOrderKey"]),
        ("the key is a point of order 8", PeerId(ORDER_8_POINT).text, ["SmallOrderKey"]),
        ("the key is encoded with y = p + 3 (not canonical)", PeerId(NON_CANONICAL_POINT).text, ["NonCanonicalKey"]),
        ("the key is alice's plus a point of order 8 (mixed order)", PeerId(_mixed_order()).text, ["MixedOrderKey"]),
    ]
    text_tests = [
        {
            "comment": "upper case is accepted; the canonical form is lower case",
            "text": good.upper().replace("PF1", "pf1", 1),
            "ed25519_public": IDS["alice"].peer_id.hex,
            "result": "valid",
        }
    ]
    for comment, text, flags in bad_texts:
        text_tests.append(
            {
                "comment": comment,
                "text": text,
                "result": "invalid",
                "error": expect(PEER_ID_TEXT_CODE, lambda t=text: PeerId.from_text(t), comment),
                "flags": flags,
            }
        )
    return document(
        "Ed25519 identities, X25519 keys and peer id text (spec §4)",
        "The peer id text is 'pf1' + lowercase unpadded base32 (RFC 4648) of the public key "
        "followed by the first 4 bytes of BLAKE2b-256('pf1' || key, personalisation 'peerfed/peer-id').",
        [
            {"type": "Identity", "tests": tests},
            {"type": "EncryptionKey", "tests": x_tests},
            {"type": "PeerIdText", "tests": text_tests},
        ],
    )


def _mixed_order() -> bytes:
    import nacl.bindings

    return bytes(nacl.bindings.crypto_core_ed25519_add(bytes(IDS["alice"].peer_id), ORDER_8_POINT))


def _nonzero_tail(text: str) -> str:
    # 36 bytes in base32: the last character carries 2 data bits and 3 zero bits. Setting
    # one of those zero bits keeps the data (and checksum) but breaks canonicity.
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    last = alphabet.index(text[-1])
    return text[:-1] + alphabet[last | 1]


# --- envelopes ----------------------------------------------------------------------------

FULL_LISTING = Listing(
    kind="offer",
    topics=("panic attacks", "ataques de pánico"),
    vocab=("anxiety",),
    languages=("es", "en"),
    formats=("text", "voice"),
    tz="Europe/Madrid",
    availability=(Window(days=0b0011111, start=18 * 60, end=21 * 60),),
    timing="scheduled",
    capacity=2,
    area="Madrid",
    summary="I have lived with panic attacks; I can listen on weekday evenings, in Spanish or English.",
)
MIN_LISTING = Listing(
    kind="request",
    topics=("grief",),
    languages=("en",),
    formats=("text",),
    timing="soon",
    summary="Looking for someone who has lost a parent to talk with.",
)


def _listing_payload(
    body_wire: Value, *, type_name: str = "listing", created: int = NOW - 3600, expires: int = NOW + 7 * DAY
) -> bytes:
    return pack([type_name, created, expires, body_wire])


def _with_float(body: list[Value]) -> bytes:
    marked = list(body)
    marked[8] = 77  # capacity, encoded as the single byte 0x4d
    payload = _listing_payload(marked)
    float_payload = payload.replace(b"\x4d\xa6Madrid", b"\xcb" + struct.pack(">d", 2.0) + b"\xa6Madrid", 1)
    assert float_payload != payload
    return float_payload


def _bundle_payload(home: str | None, pseudonym: str | None) -> bytes:
    body: list[Value] = [bytes(XS["alice"].public), home, pseudonym]
    return pack(["key-bundle", NOW - DAY, NOW + DAY, body])


def _prekey_bundle_payload(lifetime: int) -> bytes:
    """A bundle with a signed pre-key (spec §4.3): it lives at most 60 days (§14.1)."""
    body: list[Value] = [bytes(XS["alice"].public), None, None, bytes(XS["bob"].public)]
    return pack(["key-bundle", NOW - DAY, NOW - DAY + lifetime, body])


def envelope_vectors() -> dict[str, Any]:
    alice, bob = IDS["alice"], IDS["bob"]
    full = sign(alice, FULL_LISTING, created_at=NOW - 3600, expires_at=NOW + 14 * DAY)
    minimal = sign(bob, MIN_LISTING, created_at=NOW - 60, expires_at=NOW + 3 * DAY)
    valid_envs: list[tuple[str, Envelope]] = [
        ("an offer with every field", full),
        ("a request with only the required fields", minimal),
        (
            "a withdrawal of the first offer",
            sign(alice, Withdrawal(full.id), created_at=NOW, expires_at=NOW + 14 * DAY),
        ),
        (
            "a key bundle with a home node and pseudonym",
            sign(
                bob,
                KeyBundle(XS["bob"].public, home="https://grief-circle.example", pseudonym="Río"),
                created_at=NOW - DAY,
                expires_at=NOW + 29 * DAY,
            ),
        ),
        (
            "a key bundle with neither",
            sign(alice, KeyBundle(XS["alice"].public), created_at=NOW - DAY, expires_at=NOW + 29 * DAY),
        ),
        (
            "a listing at the longest lifetime, 90 days",
            sign(alice, MIN_LISTING, created_at=NOW - DAY, expires_at=NOW - DAY + 90 * DAY),
        ),
        (
            "created exactly at the clock-skew limit, now + 300 s",
            sign(alice, MIN_LISTING, created_at=NOW + 300, expires_at=NOW + DAY),
        ),
        ("expires one second after now", sign(alice, MIN_LISTING, created_at=NOW - DAY, expires_at=NOW + 1)),
        (
            "white space inside a topic, a tab and a line feed in the summary: all allowed (§6.1)",
            sign(
                alice,
                dataclasses.replace(
                    MIN_LISTING, topics=("grief\u00a0and\u3000loss",), summary="Evenings:\tyes\nMornings: no"
                ),
                created_at=NOW,
                expires_at=NOW + DAY,
            ),
        ),
        (
            "a time zone no database knows: only the pattern is checked (§6.2)",
            sign(
                alice, dataclasses.replace(FULL_LISTING, tz="Atlantis/Poseidonia"), created_at=NOW, expires_at=NOW + DAY
            ),
        ),
    ]
    context_of = {
        "listing": "peerfed/v1/envelope",
        "withdrawal": "peerfed/v1/envelope",
        "key-bundle": "peerfed/v1/key-bundle",
    }
    valid = []
    for comment, env in valid_envs:
        opened = open_signed(env.raw, context=env.context, now=NOW)
        assert opened == env
        valid.append(
            {
                "comment": comment,
                "context": context_of[env.type],
                "input": env.raw.hex(),
                "result": "valid",
                "id": env.id.hex(),
                "author": env.author.hex,
                "payload": typed(unpack(env.raw[97:])),
            }
        )

    body = FULL_LISTING.to_wire()
    ctx = Context.ENVELOPE

    def framed(payload: bytes, context: Context = ctx) -> bytes:
        return _frame(alice, context, payload)

    def flip(data: bytes, index: int) -> bytes:
        return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]

    long_summary = list(body)
    long_summary[10] = "x" * 601
    bad_lang = list(body)
    bad_lang[3] = ["english!"]
    bad_format = list(body)
    bad_format[4] = ["telepathy"]
    no_topics = list(body)
    no_topics[1] = []
    control = list(body)
    control[1] = ["grief\u0007"]
    zero_capacity = list(body)
    zero_capacity[8] = 0
    bad_window = list(body)
    bad_window[6] = [[31, 1200, 1080]]
    noncanonical = full.raw[97:].replace(pack(NOW - 3600), b"\xcf" + (NOW - 3600).to_bytes(8, "big"), 1)
    invalid_cases: list[tuple[str, str, bytes, list[str]]] = [
        ("signature with one bit flipped", "peerfed/v1/envelope", flip(full.raw, 40), ["BadSignature"]),
        (
            "payload with one bit flipped",
            "peerfed/v1/envelope",
            flip(full.raw, len(full.raw) - 5),
            ["BadSignature"],
        ),
        ("author with one bit flipped", "peerfed/v1/envelope", flip(full.raw, 5), ["BadSignature"]),
        (
            "author the identity point, R the identity point, S zero (a forgery for any payload if unchecked)",
            "peerfed/v1/envelope",
            bytes([1]) + IDENTITY_POINT + IDENTITY_POINT + bytes(32) + full.raw[97:],
            ["SmallOrderKey"],
        ),
        (
            "author a point of order 8",
            "peerfed/v1/envelope",
            bytes([1]) + ORDER_8_POINT + full.raw[33:],
            ["SmallOrderKey"],
        ),
        (
            "author encoded with y = p + 3",
            "peerfed/v1/envelope",
            bytes([1]) + NON_CANONICAL_POINT + full.raw[33:],
            ["NonCanonicalKey"],
        ),
        (
            "signature R replaced by a point of order 8",
            "peerfed/v1/envelope",
            full.raw[:33] + ORDER_8_POINT + full.raw[65:],
            ["SmallOrderR"],
        ),
        (
            "signature R encoded with y = p + 3",
            "peerfed/v1/envelope",
            full.raw[:33] + NON_CANONICAL_POINT + full.raw[65:],
            ["NonCanonicalR"],
        ),
        (
            "signature S + L (not reduced)",
            "peerfed/v1/envelope",
            full.raw[:65] + (int.from_bytes(full.raw[65:97], "little") + _L).to_bytes(32, "little") + full.raw[97:],
            ["NonCanonicalS"],
        ),
        (
            "all-zero signature",
            "peerfed/v1/envelope",
            full.raw[:33] + bytes(64) + full.raw[97:],
            ["BadSignature"],
        ),
        (
            "a listing checked under the key-bundle context",
            "peerfed/v1/key-bundle",
            full.raw,
            ["WrongContext"],
        ),
        (
            "a key bundle checked under the envelope context",
            "peerfed/v1/envelope",
            bytes.fromhex(valid[3]["input"]),
            ["WrongContext"],
        ),
        (
            "a listing checked as a sealed inner message",
            "peerfed/v1/sealed-inner",
            full.raw,
            ["WrongContext"],
        ),
        ("framing version 0x00", "peerfed/v1/envelope", b"\x00" + full.raw[1:], ["UnknownVersion"]),
        ("framing version 0x02", "peerfed/v1/envelope", b"\x02" + full.raw[1:], ["UnknownVersion"]),
        ("97 bytes: a header and no payload", "peerfed/v1/envelope", full.raw[:97], ["Truncated"]),
        (
            "payload truncated, correctly signed",
            "peerfed/v1/envelope",
            framed(full.raw[97:-3]),
            ["Truncated"],
        ),
        (
            "one byte after the payload, correctly signed",
            "peerfed/v1/envelope",
            framed(full.raw[97:] + b"\xc0"),
            ["TrailingBytes"],
        ),
        (
            "created_at as uint64, correctly signed",
            "peerfed/v1/envelope",
            framed(noncanonical),
            ["NonCanonical"],
        ),
        (
            "a map as payload, correctly signed",
            "peerfed/v1/envelope",
            framed(bytes.fromhex("81a174a76c697374696e67")),
            ["ForbiddenType"],
        ),
        (
            "a float in the body, correctly signed",
            "peerfed/v1/envelope",
            framed(_with_float(body)),
            ["ForbiddenType"],
        ),
        ("over 65,536 bytes", "peerfed/v1/envelope", full.raw + bytes(65_537 - len(full.raw)), ["Oversize"]),
        ("payload is a str, not an array", "peerfed/v1/envelope", framed(pack("listing")), ["Schema"]),
        (
            "payload has five items",
            "peerfed/v1/envelope",
            framed(pack(["listing", NOW, NOW + DAY, body, None])),
            ["Schema"],
        ),
        (
            "listing body with ten fields",
            "peerfed/v1/envelope",
            framed(_listing_payload(body[:10])),
            ["Schema"],
        ),
        ("summary of 601 bytes", "peerfed/v1/envelope", framed(_listing_payload(long_summary)), ["Schema"]),
        (
            "language that is not a BCP 47 tag",
            "peerfed/v1/envelope",
            framed(_listing_payload(bad_lang)),
            ["Schema"],
        ),
        ("unknown format", "peerfed/v1/envelope", framed(_listing_payload(bad_format)), ["Schema"]),
        ("no topics", "peerfed/v1/envelope", framed(_listing_payload(no_topics)), ["Schema"]),
        (
            "control character in a topic",
            "peerfed/v1/envelope",
            framed(_listing_payload(control)),
            ["Schema"],
        ),
        ("capacity 0", "peerfed/v1/envelope", framed(_listing_payload(zero_capacity)), ["Schema"]),
        (
            "window that ends before it starts",
            "peerfed/v1/envelope",
            framed(_listing_payload(bad_window)),
            ["Schema"],
        ),
        (
            "key bundle whose home is not an http(s) URL",
            "peerfed/v1/key-bundle",
            framed(_bundle_payload("ftp://node.example", None), Context.KEY_BUNDLE),
            ["Schema"],
        ),
        (
            "key bundle whose pseudonym starts with a space",
            "peerfed/v1/key-bundle",
            framed(_bundle_payload(None, " Río"), Context.KEY_BUNDLE),
            ["Schema"],
        ),
        (
            "unknown type",
            "peerfed/v1/envelope",
            framed(_listing_payload(body, type_name="diagnosis")),
            ["UnknownType"],
        ),
        (
            "a sealed-only type under the envelope context",
            "peerfed/v1/envelope",
            framed(_listing_payload([bytes(32), bytes(16), True], type_name="end")),
            ["UnknownType"],
        ),
        (
            "a key bundle with a signed pre-key living 60 days + 1 s",
            "peerfed/v1/key-bundle",
            framed(_prekey_bundle_payload(60 * DAY + 1), Context.KEY_BUNDLE),
            ["Lifetime"],
        ),
        (
            "lifetime 90 days + 1 s",
            "peerfed/v1/envelope",
            framed(_listing_payload(body, created=NOW - DAY, expires=NOW - DAY + 90 * DAY + 1)),
            ["Lifetime"],
        ),
        (
            "expires_at equal to created_at",
            "peerfed/v1/envelope",
            framed(_listing_payload(body, created=NOW + 10, expires=NOW + 10)),
            ["Lifetime"],
        ),
        (
            "created now + 301 s",
            "peerfed/v1/envelope",
            framed(_listing_payload(body, created=NOW + 301, expires=NOW + DAY)),
            ["Future"],
        ),
        (
            "expires exactly now",
            "peerfed/v1/envelope",
            framed(_listing_payload(body, created=NOW - DAY, expires=NOW)),
            ["Expired"],
        ),
        (
            "expired a day ago",
            "peerfed/v1/envelope",
            framed(_listing_payload(body, created=NOW - 3 * DAY, expires=NOW - DAY)),
            ["Expired"],
        ),
        *_edge_signatures(full),
        *(
            (comment, "peerfed/v1/envelope", framed(_listing_payload(_changed(body, index, value))), ["Schema"])
            for comment, index, value in _FIELD_RULE_CASES
        ),
    ]
    invalid = []
    for comment, context_name, data, flags in invalid_cases:
        context = Context(context_name)
        invalid.append(
            {
                "comment": comment,
                "context": context_name,
                "input": data.hex(),
                "result": "invalid",
                "error": expect(
                    SIGNED_CODES[flags[0]], lambda d=data, c=context: open_signed(d, context=c, now=NOW), comment
                ),
                "flags": flags,
            }
        )
    return document(
        "peerfed/v1 signed objects: listings, withdrawals, key bundles (spec §5, §6, §4.3)",
        "Open 'input' under 'context' at 'now'. Valid: the id, author and decoded payload match. "
        "Invalid: opening fails with 'error'; checks run in the order of spec §5.5.",
        [
            {"type": "SignedObject", "tests": valid},
            {"type": "RejectedSignedObject", "tests": invalid},
        ],
        keys=keys_section(),
    )


def _changed(body: list[Value], index: int, value: Value) -> list[Value]:
    changed = list(body)
    changed[index] = value
    return changed


# Listing fields that break a rule of §6.1 or §6.2, each a schema.invalid (§5.5 step 8).
_FIELD_RULE_CASES: list[tuple[str, int, Value]] = [
    ("the same topic twice (a set, §6.1)", 1, ["grief", "grief"]),
    ("the same format twice", 4, ["text", "text"]),
    ("the same window twice", 6, [[31, 1080, 1260], [31, 1080, 1260]]),
    ("a topic starting with U+00A0 (white space, §6.1)", 1, ["\u00a0grief"]),
    ("a topic ending with U+3000", 1, ["grief\u3000"]),
    ("a topic ending with U+2028", 1, ["grief\u2028"]),
    ("a topic holding U+0085, a C1 control character", 1, ["gr\u0085ief"]),
    ("a summary holding U+007F", 10, ["I listen.\u007f"]),
    ("a summary holding U+009B (CSI)", 10, ["I listen.\u009b2J"]),
    ("a summary holding a carriage return", 10, ["I listen.\r"]),
    ("a time zone with a space (§6.2 pattern)", 5, "Europe/Madrid Centre"),
    ("a time zone with a character outside the pattern", 5, "Europe/Madrid!"),
    ("a time zone of 65 bytes", 5, "A" * 65),
    ("a vocabulary term in upper case", 2, ["Anxiety"]),
    ("a vocabulary term ending with a hyphen", 2, ["anxiety-"]),
    ("a vocabulary term with two hyphens together", 2, ["social--anxiety"]),
    ("a vocabulary term of 49 bytes", 2, ["a" * 49]),
]


def _edge_signatures(full: Envelope) -> list[tuple[str, str, bytes, list[str]]]:
    """Ed25519 encodings §3 says a verifier MUST refuse, beyond the basic ones: each signature.invalid."""
    ctx = "peerfed/v1/envelope"
    r, s_value = full.raw[33:65], int.from_bytes(full.raw[65:97], "little")
    payload = full.raw[97:]
    negative_zero = bytes([1]) + bytes(30) + bytes([0x80])  # the identity point with the sign bit set
    mixed = _mixed_order()
    return [
        (
            "author a mixed-order point (alice's key plus a point of order 8)",
            ctx,
            bytes([1]) + mixed + full.raw[33:],
            ["MixedOrderKey"],
        ),
        (
            "author the identity point with the sign bit set",
            ctx,
            bytes([1]) + negative_zero + full.raw[33:],
            ["SmallOrderKey"],
        ),
        (
            "author encoded with y = p (not canonical)",
            ctx,
            bytes([1]) + _P.to_bytes(32, "little") + full.raw[33:],
            ["NonCanonicalKey"],
        ),
        ("signature R the identity point", ctx, full.raw[:33] + IDENTITY_POINT + full.raw[65:], ["SmallOrderR"]),
        ("signature R a mixed-order point", ctx, full.raw[:33] + mixed + full.raw[65:], ["MixedOrderR"]),
        ("signature S = L exactly", ctx, full.raw[:65] + _L.to_bytes(32, "little") + payload, ["NonCanonicalS"]),
        (
            "signature S with its top bit set (S + 2^255)",
            ctx,
            full.raw[:65] + (s_value | (1 << 255)).to_bytes(32, "little") + payload,
            ["NonCanonicalS"],
        ),
        ("signature R and S swapped", ctx, full.raw[:33] + full.raw[65:97] + r + payload, ["BadSignature"]),
    ]


# --- sealing ------------------------------------------------------------------------------

CONNECTION = bytes(range(0xC0, 0xD0))
TERMS = Terms(
    helps="Someone to listen without advice while I get through the evenings.",
    formats=("text",),
    times="weekday evenings, 19:00-21:00 Madrid time",
    until=NOW + 30 * DAY,
    boundaries=("no contact outside peerfed", "either of us can pause for a week"),
    ending="either of us says so; no reason needed",
)


def _bundle(name: str) -> bytes:
    """The peer's own signed key bundle, as a reach-out carries it (spec §8.2)."""
    body = KeyBundle(XS[name].public, home="https://grief-circle.example", pseudonym=name.capitalize())
    return sign(IDS[name], body, created_at=NOW - 2 * DAY, expires_at=NOW + 60 * DAY).raw


def _ephemeral(n: int) -> bytes:
    return bytes([0xE0 + n]) * 32


def _nonce(n: int) -> bytes:
    return bytes([0x40 + n]) * 24


def sealing_vectors() -> dict[str, Any]:
    alice, bob = IDS["alice"], IDS["bob"]
    a_id, b_id = alice.peer_id, bob.peer_id
    listing_id = sign(bob, MIN_LISTING, created_at=NOW - 60, expires_at=NOW + 3 * DAY).id
    t = NOW - 1800
    inners: list[tuple[str, Identity, str, Any]] = [
        (
            "reach-out with proposed terms",
            alice,
            "bob",
            ReachOut(
                b_id,
                CONNECTION,
                listing_id,
                "Hola. I read your request; I lost my father last year.",
                TERMS,
                _bundle("alice"),
            ),
        ),
        (
            "reach-out with only a hello",
            alice,
            "bob",
            ReachOut(b_id, CONNECTION, listing_id, "Hi, I'd like to talk.", bundle=_bundle("alice")),
        ),
        (
            "response: accept with a reply",
            bob,
            "alice",
            Response(a_id, CONNECTION, True, "Thank you for writing. Yes, let's talk."),
        ),
        ("response: decline, which carries no text", bob, "alice", Response(a_id, CONNECTION, False)),
        ("agreement version 1", alice, "bob", Agreement(b_id, CONNECTION, 1, TERMS)),
        (
            "message with reply_to",
            bob,
            "alice",
            Message(a_id, CONNECTION, 3, "Tonight was hard, but writing helps.", reply_to=bytes([0x77]) * 32),
        ),
        (
            "message text of 3,000 bytes; padded plaintext 3,584",
            alice,
            "bob",
            Message(b_id, CONNECTION, 1, "ñ" * 1500),
        ),
        ("end with an erase request", alice, "bob", End(b_id, CONNECTION, erase=True)),
        ("end without one", bob, "alice", End(a_id, CONNECTION)),
        (
            "agreement whose terms forget each message 30 days after it was sent",
            bob,
            "alice",
            Agreement(a_id, CONNECTION, 2, dataclasses.replace(TERMS, forget=30 * DAY)),
        ),
    ]
    valid = []
    sealed_for_invalid = None
    for n, (comment, author, recipient, body) in enumerate(inners):
        inner = sign(author, body, created_at=t + n, expires_at=t + n + 7 * DAY)
        sealed = seal(inner, XS[recipient].public, ephemeral=_ephemeral(n), nonce=_nonce(n))
        opened = open_sealed(sealed.raw, recipient=IDS[recipient].peer_id, secrets=[XS[recipient]], now=NOW)
        assert opened.inner == inner
        shared = EncryptionSecret(_ephemeral(n)).shared(XS[recipient].public)
        eph_pub = EncryptionSecret(_ephemeral(n)).public
        if sealed_for_invalid is None:
            sealed_for_invalid = (inner, sealed)
        valid.append(
            {
                "comment": comment,
                "recipient": recipient,
                "input": sealed.raw.hex(),
                "result": "valid",
                "sealed_id": sealed.id.hex(),
                "mailbox": IDS[recipient].peer_id.hex,
                "hour": sealed.hour,
                "ephemeral_secret": _ephemeral(n).hex(),
                "ephemeral_public": eph_pub.hex,
                "nonce": _nonce(n).hex(),
                "shared_secret": shared.hex(),
                "key": sealing._derive(shared, bytes(eph_pub), bytes(XS[recipient].public)).hex(),
                "padded_length": sealing.padded_length(4 + len(inner.raw)),
                "inner": inner.raw.hex(),
                "inner_id": inner.id.hex(),
                "inner_author": author.peer_id.hex,
                "inner_payload": typed(unpack(inner.raw[97:])),
            }
        )

    assert sealed_for_invalid is not None
    inner, good = sealed_for_invalid
    mailbox = bytes(b_id)
    rkey = bytes(XS["bob"].public)
    hour = good.hour

    def raw_seal(
        plain: bytes,
        *,
        mb: bytes = mailbox,
        hr: int = hour,
        key: bytes = rkey,
        scheme: int = 1,
        outer: int = 1,
    ) -> bytes:
        return sealing._encrypt(plain, mb, hr, key, _ephemeral(20), _nonce(20), scheme, outer).raw

    def with_payload(change: Callable[[bytes], bytes]) -> bytes:
        return pack([1, mailbox, hour, change(good.payload)])

    def flip_at(index: int) -> Callable[[bytes], bytes]:
        return lambda p: p[:index] + bytes([p[index] ^ 0x01]) + p[index + 1 :]

    padded = sealing.pad(inner.raw)
    bad_pad = padded[:-1] + b"\x01"
    too_long = (len(padded)).to_bytes(4, "big") + padded[4:]
    small = sign(alice, End(b_id, CONNECTION), created_at=t, expires_at=t + DAY).raw
    overpadded = len(small).to_bytes(4, "big") + small + bytes(512 - 4 - len(small))
    other_recipient = sign(alice, End(IDS["carol"].peer_id, CONNECTION), created_at=t, expires_at=t + DAY)
    expired = sign(alice, End(b_id, CONNECTION), created_at=NOW - 3 * DAY, expires_at=NOW - DAY)
    listing_inner = _frame(alice, Context.ENVELOPE, inner.raw[97:])
    broken_sig = inner.raw[:40] + bytes([inner.raw[40] ^ 1]) + inner.raw[41:]
    decline_with_text = _frame(
        alice,
        Context.SEALED,
        pack(["response", t, t + DAY, [bytes(b_id), CONNECTION, False, "no, because"]]),
    )
    carols_bundle = sign(
        alice, ReachOut(b_id, CONNECTION, listing_id, "Hi.", bundle=_bundle("carol")), created_at=t, expires_at=t + DAY
    )
    old_bundle = sign(IDS["alice"], KeyBundle(XS["alice"].public), created_at=t - 40 * DAY, expires_at=t - 10 * DAY).raw
    expired_bundle = sign(
        alice, ReachOut(b_id, CONNECTION, listing_id, "Hi.", bundle=old_bundle), created_at=t, expires_at=t + DAY
    )

    def agreement_with(terms: list[Any]) -> bytes:
        body = [bytes(b_id), CONNECTION, 1, terms]
        return sealing.pad(_frame(alice, Context.SEALED, pack(["agreement", t, t + DAY, body])))

    six = TERMS.to_wire()
    legacy_reach = _frame(
        alice,
        Context.SEALED,
        pack(["reach-out", t, t + DAY, [bytes(b_id), CONNECTION, listing_id, "Hi.", None]]),
    )
    invalid_cases: list[tuple[str, str, bytes, list[str]]] = [
        ("ciphertext with one bit flipped", "bob", with_payload(flip_at(200)), ["Tampered"]),
        ("tag with one bit flipped", "bob", with_payload(flip_at(len(good.payload) - 1)), ["Tampered"]),
        ("nonce with one bit flipped", "bob", with_payload(flip_at(70)), ["Tampered"]),
        ("ephemeral key with one bit flipped", "bob", with_payload(flip_at(40)), ["Tampered"]),
        (
            "hour moved by an hour (authenticated as associated data)",
            "bob",
            pack([1, mailbox, hour - 3600, good.payload]),
            ["Tampered"],
        ),
        (
            "all-zero (low-order) ephemeral key",
            "bob",
            with_payload(lambda p: p[:33] + bytes(32) + p[65:]),
            ["LowOrder"],
        ),
        ("opened by carol: another mailbox", "carol", good.raw, ["WrongRecipient"]),
        (
            "bob's mailbox, but sealed to carol's encryption key",
            "bob",
            raw_seal(padded, key=bytes(XS["carol"].public)),
            ["WrongRecipient"],
        ),
        (
            "the signed inner message names carol",
            "bob",
            raw_seal(sealing.pad(other_recipient.raw)),
            ["WrongRecipient"],
        ),
        ("outer version 2", "bob", raw_seal(padded, outer=2), ["UnknownVersion"]),
        ("sealing scheme 3", "bob", raw_seal(padded, scheme=3), ["UnknownVersion"]),
        ("sealing scheme 0", "bob", raw_seal(padded, scheme=0), ["UnknownVersion"]),
        ("payload length is not a padding bucket", "bob", with_payload(lambda p: p + b"\x00"), ["Schema"]),
        ("hour is not a whole hour", "bob", pack([1, mailbox, hour + 1, good.payload]), ["Schema"]),
        ("mailbox of 31 bytes", "bob", pack([1, mailbox[:31], hour, good.payload]), ["Schema"]),
        ("outer with three items", "bob", pack([1, mailbox, hour]), ["Schema"]),
        ("an empty payload", "bob", pack([1, mailbox, hour, b""]), ["Schema"]),
        ("a payload that is a str, not a bin", "bob", pack([1, mailbox, hour, "\x01"]), ["Schema"]),
        (
            "hour as uint64",
            "bob",
            good.raw.replace(pack(hour), b"\xcf" + hour.to_bytes(8, "big"), 1),
            ["NonCanonical"],
        ),
        ("one byte after the outer array", "bob", good.raw + b"\xc0", ["TrailingBytes"]),
        ("over 65,536 bytes", "bob", good.raw + bytes(65_537 - len(good.raw)), ["Oversize"]),
        ("a padding byte is not zero", "bob", raw_seal(bad_pad), ["BadPadding"]),
        ("length prefix longer than the plaintext", "bob", raw_seal(too_long), ["BadPadding"]),
        ("padded to 512 where 256 is the bucket", "bob", raw_seal(overpadded), ["BadPadding"]),
        ("inner signature with one bit flipped", "bob", raw_seal(sealing.pad(broken_sig)), ["BadSignature"]),
        (
            "inner signed under the envelope context",
            "bob",
            raw_seal(sealing.pad(listing_inner)),
            ["WrongContext"],
        ),
        ("inner message expired", "bob", raw_seal(sealing.pad(expired.raw)), ["Expired"]),
        ("a decline that carries text", "bob", raw_seal(sealing.pad(decline_with_text)), ["Schema"]),
        (
            "a reach-out carrying carol's key bundle, not its author's",
            "bob",
            raw_seal(sealing.pad(carols_bundle.raw)),
            ["WrongSender"],
        ),
        (
            "a reach-out whose key bundle had expired when it was written",
            "bob",
            raw_seal(sealing.pad(expired_bundle.raw)),
            ["Expired"],
        ),
        (
            "a reach-out body of the first draft, without the key bundle",
            "bob",
            raw_seal(sealing.pad(legacy_reach)),
            ["Schema"],
        ),
        ("terms that forget after 3,599 s, under an hour", "bob", raw_seal(agreement_with([*six, 3599])), ["Schema"]),
        (
            "terms that forget after 365 days + 1 s",
            "bob",
            raw_seal(agreement_with([*six, 365 * DAY + 1])),
            ["Schema"],
        ),
        ("terms whose seventh item is nil", "bob", raw_seal(agreement_with([*six, None])), ["Schema"]),
        ("terms of eight items", "bob", raw_seal(agreement_with([*six, DAY, None])), ["Schema"]),
    ]
    invalid = []
    for comment, recipient, data, flags in invalid_cases:
        invalid.append(
            {
                "comment": comment,
                "recipient": recipient,
                "input": data.hex(),
                "result": "invalid",
                "error": expect(
                    SEALED_CODES[flags[0]],
                    lambda d=data, r=recipient: open_sealed(d, recipient=IDS[r].peer_id, secrets=[XS[r]], now=NOW),
                    comment,
                ),
                "flags": flags,
            }
        )
    return document(
        "peerfed/v1 sealing scheme 1: X25519 + BLAKE2b + XChaCha20-Poly1305-IETF (spec §7, §8)",
        "Open 'input' as 'recipient' (their peer id and x25519 secret from 'keys') at 'now'. "
        "Valid: every listed intermediate and the inner object match. Invalid: fails with 'error'.",
        [
            {"type": "SealedMessage", "tests": valid},
            {"type": "RejectedSealedMessage", "tests": invalid},
        ],
        keys=keys_section(),
    )


def padding_vectors() -> dict[str, Any]:
    tests = [
        {"comment": f"{n} bytes", "length": n, "padded_length": sealing.padded_length(n), "result": "valid"}
        for n in (1, 4, 100, 256, 257, 320, 321, 512, 513, 1000, 1024, 1025, 3004, 4097, 20000, 32769, 57344)
    ]
    return document(
        "peerfed/v1 padding buckets (spec §7.2)",
        "length = 4 + the inner object's length; padded_length is what it is padded to. "
        "A padded length over 57,344 cannot be sealed.",
        [{"type": "PaddingBucket", "tests": tests}],
    )


# --- searching topics by words ---------------------------------------------------------------

# The cases spell Greek, Turkish and fullwidth letters as they are: that is what they test.
# ruff: noqa: RUF001
# Declared by hand from spec §6.4, never computed here: the generator only checks that the
# implementation agrees with every case before it writes the file.
TOPIC_WORDS: list[tuple[str, str, list[str]]] = [
    ("two words", "panic attacks", ["panic", "attacks"]),
    ("white space and punctuation at both ends", "  Panic-Attacks!! ", ["panic", "attacks"]),
    ("German sharp s folds to ss", "Straße", ["strasse"]),
    ("capital sharp s folds to ss", "GROẞE", ["grosse"]),
    ("Greek capitals and final sigma fold to σ", "ΣΊΣΥΦΟΣ", ["σίσυφοσ"]),
    ("Greek final sigma folds to σ", "σίσυφος", ["σίσυφοσ"]),
    ("dotted capital I folds to i and a combining dot", "İzmir", ["i\u0307zmir"]),
    ("capital I folds to i (no Turkic mapping)", "IZMIR", ["izmir"]),
    ("dotless i stays dotless", "Iı", ["iı"]),
    ("micro sign folds to Greek mu", "5µg", ["5μg"]),
    ("ligature fi folds to two letters", "ﬁre", ["fire"]),
    ("lowercase Cherokee folds to uppercase", "ꭰꭱ", ["\u13a0\u13a1"]),
    ("ampersand (Po) separates", "self-harm & recovery", ["self", "harm", "recovery"]),
    ("plus sign (Sm) and brackets (Ps, Pe) separate", "LGBTQ+ (queer)", ["lgbtq", "queer"]),
    ("right single quotation mark (Pf) separates", "don\u2019t", ["don", "t"]),
    ("guillemets (Pi, Pf) separate", "«Deuil»", ["deuil"]),
    ("low line (Pc) separates", "new_parent", ["new", "parent"]),
    ("dollar sign (Sc) separates, digits stay", "$100 debt", ["100", "debt"]),
    ("caret (Sk) separates", "up^down", ["up", "down"]),
    ("letters and digits together are one word", "2am thoughts", ["2am", "thoughts"]),
    ("tab and line feed (Cc) separate", "a\tb\nc", ["a", "b", "c"]),
    ("no-break space (Zs) separates", "nuit\u00a0blanche", ["nuit", "blanche"]),
    ("an emoji (So) is a word", "🌈 pride", ["🌈", "pride"]),
    ("a combining mark (Mn) stays in its word", "cafe\u0301", ["cafe\u0301"]),
    ("fullwidth letters fold to fullwidth letters, not ASCII", "ＰＡＮＩＣ", ["ｐａｎｉｃ"]),
    ("repeats are kept in order", "panic Panic", ["panic", "panic"]),
    ("only punctuation: no words", "...", []),
    ("empty: no words", "", []),
]

TOPIC_MATCH: list[tuple[str, str, str, bool]] = [
    ("one word of two", "panic attacks", "panic", True),
    ("case folded", "panic attacks", "PANIC", True),
    ("a prefix is not a word", "panic attacks", "pan", False),
    ("a longer word is not a word", "panic attacks", "panicking", False),
    ("a topic written as one word", "panicattacks", "panic", False),
    ("every word, in any order", "panic attacks", "attacks panic", True),
    ("every word must be there", "panic attacks", "panic sleep", False),
    ("punctuation in the topic", "Panic-Attacks", "panic attacks", True),
    ("punctuation in the query", "panic attacks", "panic-attacks!", True),
    ("a word repeated in the query", "panic attacks", "panic panic", True),
    ("sharp s in the topic", "Straße", "STRASSE", True),
    ("sharp s in the query", "strasse", "straße", True),
    ("final sigma against medial sigma", "ΣΊΣΥΦΟΣ", "σίσυφος", True),
    ("dotted capital I is not i", "İzmir", "izmir", False),
    ("dotted capital I against itself", "İzmir", "İZMIR", True),
    ("capital I is i", "Izmir", "izmir", True),
    ("dotless i is not i", "ızmir", "izmir", False),
    ("no normalisation: precomposed é is not e + U+0301", "café", "cafe\u0301", False),
    ("an emoji word", "🌈 pride", "🌈", True),
    ("one word of the query missing", "grief", "grief loss", False),
]

LISTING_MATCH: list[tuple[str, list[str], list[str], bool]] = [
    ("one query, one topic", ["panic attacks", "sleepless nights"], ["panic"], True),
    ("one query's words must be in one topic", ["panic attacks", "sleepless nights"], ["panic sleepless"], False),
    ("two queries, each met by its own topic", ["panic attacks", "sleepless nights"], ["panic", "sleepless"], True),
    ("two queries, one not met", ["panic attacks", "sleepless nights"], ["panic", "grief"], False),
    ("no query: every listing", ["grief"], [], True),
    ("eight words, the most a search may have", ["a b c d e f g h"], ["h g f e d c b a"], True),
    ("a word repeated counts once", ["a"], ["a a a a a a a a a a"], True),
]

REJECTED_QUERIES: list[tuple[str, list[str]]] = [
    ("empty", [""]),
    ("white space only", ["   "]),
    ("tab and line feed only", ["\t\n"]),
    ("punctuation only", ["...!?"]),
    ("one query of two has no word", ["panic", ""]),
    ("nine words in one query", ["a b c d e f g h i"]),
    ("nine words over two queries", ["a b c d", "e f g h i"]),
]


def search_vectors() -> dict[str, Any]:
    words_tests = []
    for comment, text, expected in TOPIC_WORDS:
        assert list(topics.words(text)) == expected, comment
        words_tests.append({"comment": comment, "text": text, "words": expected, "result": "valid"})
    match_tests = []
    for comment, topic, query, match in TOPIC_MATCH:
        assert topics.topic_matches(topic, topics.query_words([query])[0]) is match, comment
        match_tests.append({"comment": comment, "topic": topic, "query": query, "match": match, "result": "valid"})
    listing_tests = []
    for comment, held, queries, match in LISTING_MATCH:
        assert topics.listing_matches(held, topics.query_words(queries)) is match, comment
        listing_tests.append(
            {"comment": comment, "topics": held, "queries": queries, "match": match, "result": "valid"}
        )
    rejected = []
    for comment, queries in REJECTED_QUERIES:
        assert error_of(lambda q=queries: topics.query_words(q)) == "request.invalid", comment  # type: ignore[misc]
        rejected.append({"comment": comment, "queries": queries, "result": "invalid", "error": "request.invalid"})
    return document(
        "peerfed/v1 topic search by words (spec §6.4)",
        "TopicWords: the words of 'text', folded and split. TopicMatch: whether 'topic' matches the "
        "query 'query'. ListingMatch: whether a listing with 'topics' meets every query in 'queries' "
        "(the directory's topic parameters). RejectedTopicQuery: 'queries' is refused with 'error'.",
        [
            {"type": "TopicWords", "tests": words_tests},
            {"type": "TopicMatch", "tests": match_tests},
            {"type": "ListingMatch", "tests": listing_tests},
            {"type": "RejectedTopicQuery", "tests": rejected},
        ],
    )


# --- the connection state machine ---------------------------------------------------------


def connection_vectors() -> dict[str, Any]:
    a, b = IDS["alice"], IDS["bob"]
    a_id, b_id = a.peer_id, b.peer_id
    listing = bytes([0x11]) * 32
    clock = [NOW - 5000]

    def at(identity: Identity, body: Any, *, created: int | None = None, life: int = DAY) -> Envelope:
        clock[0] += 10
        when = clock[0] if created is None else created
        return sign(identity, body, created_at=when, expires_at=when + life)

    def to_b(body_cls: Any, *args: Any) -> Any:
        return body_cls(b_id, CONNECTION, *args)

    def to_a(body_cls: Any, *args: Any) -> Any:
        return body_cls(a_id, CONNECTION, *args)

    # The code of each step, declared by hand from spec §9.2 (None: applied).
    NOT_ALLOWED, CLOSED, DUPLICATE = "connection.not_allowed", "connection.closed", "connection.duplicate"
    other_terms = Terms(helps="Practical tips for sleeping after a loss.")
    bundle = _bundle("alice")
    reach = at(a, ReachOut(b_id, CONNECTION, listing, "Hello, can we talk?", bundle=bundle))
    # Still valid at NOW, but expires 200 s later: a response 1 s after that is too late.
    short_reach = at(
        a, ReachOut(b_id, CONNECTION, listing, "Hello, can we talk?", bundle=bundle), created=NOW - 400, life=600
    )
    msg1 = to_a(Message, 1, "Thank you for being here.")
    reach_with_terms = at(a, ReachOut(b_id, CONNECTION, listing, "Hello, could this help?", TERMS, bundle))
    lapsed = Terms(helps="Two weeks of evening check-ins.", until=NOW - 4000)
    scenarios: list[tuple[str, Envelope, list[tuple[str, Envelope, str | None]]]] = [
        (
            "accept, agree, talk both ways, the author ends",
            reach,
            [
                ("bob", at(b, to_a(Response, True, "Yes, gladly.")), None),
                ("alice", at(a, to_b(Agreement, 1, TERMS)), None),
                ("bob", at(b, to_a(Agreement, 1, TERMS)), None),
                ("alice", at(a, to_b(Message, 1, "Thank you.")), None),
                ("bob", at(b, msg1), None),
                ("alice", at(a, to_b(Message, 2, "Same time next week?")), None),
                ("bob", at(b, to_a(End, True)), None),
            ],
        ),
        (
            "decline; nothing after it",
            reach,
            [
                ("bob", at(b, to_a(Response, False)), None),
                ("alice", at(a, to_b(Message, 1, "Why not?")), CLOSED),
                ("bob", at(b, to_a(Response, True)), CLOSED),
            ],
        ),
        (
            "the reacher cannot talk before acceptance, but can end",
            reach,
            [
                ("alice", at(a, to_b(Message, 1, "Are you there?")), NOT_ALLOWED),
                ("alice", at(a, to_b(Agreement, 1, TERMS)), NOT_ALLOWED),
                ("alice", at(a, to_b(End, False)), None),
                ("bob", at(b, to_a(Response, True)), CLOSED),
            ],
        ),
        (
            "terms differ, then a new version both sign; a later proposal leaves it in force",
            reach,
            [
                ("bob", at(b, to_a(Response, True)), None),
                ("alice", at(a, to_b(Agreement, 1, TERMS)), None),
                ("bob", at(b, to_a(Agreement, 1, other_terms)), None),
                ("bob", at(b, to_a(Agreement, 2, TERMS)), None),
                ("alice", at(a, to_b(Agreement, 2, TERMS)), None),
                ("alice", at(a, to_b(Agreement, 3, other_terms)), None),
                ("alice", at(a, to_b(Agreement, 3, other_terms)), NOT_ALLOWED),
            ],
        ),
        (
            "out-of-turn agreement versions",
            reach,
            [
                ("bob", at(b, to_a(Response, True)), None),
                ("alice", at(a, to_b(Agreement, 2, TERMS)), NOT_ALLOWED),
                ("alice", at(a, to_b(Agreement, 1, TERMS)), None),
                ("bob", at(b, to_a(Agreement, 3, TERMS)), NOT_ALLOWED),
            ],
        ),
        (
            "duplicates: the same message twice, and a reused sequence number",
            reach,
            [
                ("bob", at(b, to_a(Response, True)), None),
                ("bob", (dup := at(b, msg1)), None),
                ("bob", dup, DUPLICATE),
                ("bob", at(b, to_a(Message, 1, "Said again with other words.")), DUPLICATE),
                ("bob", at(b, to_a(Message, 2, "A second message.")), None),
            ],
        ),
        (
            "the reacher ends after agreement; then nothing more, not even another end",
            reach,
            [
                ("bob", at(b, to_a(Response, True)), None),
                ("bob", at(b, to_a(Agreement, 1, TERMS)), None),
                ("alice", at(a, to_b(Agreement, 1, TERMS)), None),
                ("alice", at(a, to_b(End, False)), None),
                ("bob", at(b, to_a(End, False)), CLOSED),
                ("bob", at(b, to_a(Message, 1, "Goodbye.")), CLOSED),
            ],
        ),
        (
            "a response created after the reach-out expired",
            short_reach,
            [
                ("bob", at(b, to_a(Response, True), created=short_reach.expires_at + 1), NOT_ALLOWED),
                ("bob", at(b, to_a(Response, False), created=short_reach.expires_at), None),
            ],
        ),
        (
            "only the listing's author may answer, and only once",
            reach,
            [
                ("alice", at(a, to_b(Response, True)), NOT_ALLOWED),
                ("bob", at(b, to_a(Response, True)), None),
                ("bob", at(b, to_a(Response, True, "Again?")), NOT_ALLOWED),
            ],
        ),
        (
            "terms in a reach-out start no round: both must sign version 1",
            reach_with_terms,
            [
                ("bob", at(b, to_a(Response, True)), None),
                ("bob", at(b, to_a(Agreement, 1, TERMS)), None),
                ("alice", at(a, to_b(Agreement, 1, TERMS)), None),
            ],
        ),
        (
            "a message for another connection, or between other peers",
            reach,
            [
                ("bob", at(b, Response(a_id, bytes(16), True)), NOT_ALLOWED),
                ("carol", at(IDS["carol"], to_a(Response, True)), NOT_ALLOWED),
                ("bob", at(b, Response(IDS["carol"].peer_id, CONNECTION, True)), NOT_ALLOWED),
            ],
        ),
    ]
    scenarios += [
        (
            "a message that arrives before the acceptance it depends on is refused, and taken after it (§9.2)",
            reach,
            [
                ("bob", (early := at(b, to_a(Message, 1, "I am glad you wrote."))), NOT_ALLOWED),
                ("bob", at(b, to_a(Response, True)), None),
                ("bob", early, None),
            ],
        ),
        (
            "terms whose until has passed: later steps are applied and the terms stay in force (§9.2)",
            reach,
            [
                ("bob", at(b, to_a(Response, True)), None),
                ("alice", at(a, to_b(Agreement, 1, lapsed)), None),
                ("bob", at(b, to_a(Agreement, 1, lapsed)), None),
                ("alice", at(a, to_b(Message, 1, "Shall we keep going?"), created=NOW - 100), None),
                ("bob", at(b, to_a(Agreement, 2, lapsed), created=NOW - 90), None),
            ],
        ),
    ]
    tests = []
    for comment, start, steps in scenarios:
        conn = Connection.start(start)
        out_steps = []
        for who, env, code in steps:
            step: dict[str, Any] = {"by": who, "input": env.raw.hex()}
            try:
                conn = conn.receive(open_signed(env.raw, context=Context.SEALED, now=NOW))
            except ConnectionStateError as exc:
                got: str | None = exc.code
            else:
                got = None
            if got != code:
                raise AssertionError(f"{comment}: the spec says {code}, the implementation gives {got}")
            if code is not None:
                step["error"] = code
            step["state"] = _describe(conn)
            out_steps.append(step)
        tests.append(
            {
                "comment": comment,
                "reach_out": start.raw.hex(),
                "result": "valid",
                "steps": out_steps,
            }
        )
    return document(
        "peerfed/v1 support connection state machine (spec §9)",
        "Start a connection from 'reach_out', then open each step's 'input' under the sealed-inner "
        "context at 'now' and apply it. A step with 'error' is refused with that code and leaves the "
        "state as it was; 'state' is the state after the step either way. RejectedStart: opening "
        "'reach_out' succeeds, starting a connection from it fails with 'error'.",
        [
            {"type": "ConnectionScenario", "tests": tests},
            {"type": "RejectedStart", "tests": _rejected_starts(at, bundle)},
        ],
        keys=keys_section(),
    )


def _rejected_starts(at: Callable[..., Envelope], bundle: bytes) -> list[dict[str, Any]]:
    """Reach-outs that start no connection (spec §9.1), each with the code declared by hand."""
    a = IDS["alice"]
    cases = [
        (
            "a reach-out whose recipient is its own author",
            at(a, ReachOut(a.peer_id, CONNECTION, bytes([0x11]) * 32, "Hello, me.", bundle=bundle)),
            "connection.not_allowed",
        ),
        (
            "a message in place of a reach-out",
            at(a, Message(IDS["bob"].peer_id, CONNECTION, 1, "Hello?")),
            "connection.not_allowed",
        ),
    ]
    return [
        {
            "comment": comment,
            "reach_out": env.raw.hex(),
            "result": "invalid",
            "error": expect(code, lambda e=env: Connection.start(e), comment),
        }
        for comment, env, code in cases
    ]


def _describe(conn: Connection) -> dict[str, Any]:
    return {
        "state": conn.state.value,
        "in_force": None if conn.in_force is None else conn.in_force[0],
        "ended_by": None if conn.ended_by is None else conn.ended_by.value,
        "erase_requested": conn.erase_requested,
    }


# --- node-protocol bodies -----------------------------------------------------------------

NODE_SEED = bytes([0x4E]) * 32


def node_vectors() -> dict[str, Any]:
    node = Identity(NODE_SEED)
    url = "https://hearing-voices.example"
    doc = NodeDocument(
        url=url,
        name="Hearing Voices Circle",
        description="A peer-run node for people who hear voices, and those close to them.",
        contact="moderators@hearing-voices.example",
        registration="invite",
        code_of_conduct="No diagnosis, no advice unless asked. Each of us is the expert on our own experience.",
        resources=(
            Resource(
                name="Peer warmline",
                contact="+34 900 000 000",
                emergency="never",
                hours="every evening 18:00-23:00",
                languages=("es", "en"),
                note="Peer-run; they will never call anyone without you asking.",
            ),
            Resource(name="Emergency number", contact="112", emergency="may"),
        ),
        mailbox_ttl=14 * DAY,
        max_listing_lifetime=30 * DAY,
        limits=(("max-bytes", 65_536), ("clock-skew", 300), ("join-per-hour", 20)),
        protocols=("peerfed/1",),
        software="peerfed-py/0.1.0",
        federation="allow-list",
        keys=(NodeKey(bytes(node.peer_id), NOW - DAY, NOW + 8 * DAY),),
        vocabulary=("voices", "visions", "family"),
        web_client=web_client_hash(WEB_CLIENT_FILES),
    )
    body = b'{"status": "example"}'
    request = NodeRequest(
        "POST", "/federation/v1/batch", "https://grief-circle.example", url, bytes(range(16)), body_hash(body)
    )
    alice = IDS["alice"]
    valid_objects: list[tuple[str, Envelope]] = [
        ("a node document", sign(node, doc, created_at=NOW - 3600, expires_at=NOW - 3600 + 7 * DAY)),
        ("a node request for a batch", sign(node, request, created_at=NOW - 10, expires_at=NOW + 590)),
        (
            "a client-auth proof",
            sign(alice, ClientAuth(url, bytes([0x5A]) * 32), created_at=NOW - 5, expires_at=NOW + 295),
        ),
        ("an erasure", sign(alice, Erasure(), created_at=NOW - 60, expires_at=NOW + 30 * DAY)),
        (
            "a move statement",
            sign(alice, Move(url, "https://grief-circle.example"), created_at=NOW - 5, expires_at=NOW + 295),
        ),
    ]
    valid = []
    for comment, env in valid_objects:
        assert open_signed(env.raw, context=env.context, now=NOW) == env
        valid.append(
            {
                "comment": comment,
                "context": env.context.value,
                "input": env.raw.hex(),
                "result": "valid",
                "id": env.id.hex(),
                "author": env.author.hex,
                "payload": typed(unpack(env.raw[97:])),
            }
        )
    doc_wire = doc.to_wire()
    slash = list(doc_wire)
    slash[0] = url + "/"
    no_keys = list(doc_wire)
    no_keys[12] = []
    small_key = list(doc_wire)
    small_key[12] = [*doc_wire[12], [IDENTITY_POINT, NOW - DAY, NOW + DAY]]  # type: ignore[misc]
    move = ["https://grief-circle.example", url]
    bad_emergency = list(doc_wire)
    bad_emergency[6] = [["Line", "123", None, [], "sometimes", None]]
    invalid_cases: list[tuple[str, Context, bytes, list[str]]] = [
        (
            "a node document checked under the envelope context",
            Context.ENVELOPE,
            valid_objects[0][1].raw,
            ["WrongContext"],
        ),
        (
            "a node request checked as a node document",
            Context.NODE_DOCUMENT,
            valid_objects[1][1].raw,
            ["WrongContext"],
        ),
        (
            "a node document whose url ends with a slash",
            Context.NODE_DOCUMENT,
            _frame(node, Context.NODE_DOCUMENT, pack(["node-document", NOW, NOW + DAY, slash])),
            ["Schema"],
        ),
        (
            "a node document listing no keys",
            Context.NODE_DOCUMENT,
            _frame(node, Context.NODE_DOCUMENT, pack(["node-document", NOW, NOW + DAY, no_keys])),
            ["Schema"],
        ),
        (
            "a resource with an unknown emergency value",
            Context.NODE_DOCUMENT,
            _frame(node, Context.NODE_DOCUMENT, pack(["node-document", NOW, NOW + DAY, bad_emergency])),
            ["Schema"],
        ),
        (
            "a node document living 7 days + 1 s",
            Context.NODE_DOCUMENT,
            _frame(node, Context.NODE_DOCUMENT, pack(["node-document", NOW - 1, NOW + 7 * DAY, doc_wire])),
            ["Lifetime"],
        ),
        (
            "a node request living 601 s",
            Context.NODE_REQUEST,
            _frame(node, Context.NODE_REQUEST, pack(["node-request", NOW, NOW + 601, request.to_wire()])),
            ["Lifetime"],
        ),
        (
            "a node request with method PATCH",
            Context.NODE_REQUEST,
            _frame(
                node,
                Context.NODE_REQUEST,
                pack(["node-request", NOW, NOW + 60, ["PATCH", *request.to_wire()[1:]]]),
            ),
            ["Schema"],
        ),
        *(
            (
                f"a node request whose origin {what} (spec §13.1: scheme://host[:port] only)",
                Context.NODE_REQUEST,
                _frame(
                    node,
                    Context.NODE_REQUEST,
                    pack(["node-request", NOW, NOW + 60, [*request.to_wire()[:2], origin, *request.to_wire()[3:]]]),
                ),
                ["Schema"],
            )
            for what, origin in (
                ("has a path", "https://hearing-voices.example/node2"),
                ("ends with /", "https://hearing-voices.example/"),
                ("has a user part", "https://someone@hearing-voices.example"),
                ("has port 0", "https://hearing-voices.example:0"),
            )
        ),
        (
            "a client-auth with a 31-byte challenge",
            Context.CLIENT_AUTH,
            _frame(alice, Context.CLIENT_AUTH, pack(["client-auth", NOW, NOW + 60, [url, bytes(31)]])),
            ["Schema"],
        ),
        (
            "a node document listing a small-order key",
            Context.NODE_DOCUMENT,
            _frame(node, Context.NODE_DOCUMENT, pack(["node-document", NOW, NOW + DAY, small_key])),
            ["Schema", "SmallOrderKey"],
        ),
        (
            "a move from a node to itself",
            Context.CLIENT_AUTH,
            _frame(alice, Context.CLIENT_AUTH, pack(["move", NOW, NOW + 60, [url, url]])),
            ["Schema"],
        ),
        (
            "a move living 601 s",
            Context.CLIENT_AUTH,
            _frame(alice, Context.CLIENT_AUTH, pack(["move", NOW, NOW + 601, move])),
            ["Lifetime"],
        ),
        (
            "a move signed under the envelope context",
            Context.ENVELOPE,
            _frame(alice, Context.ENVELOPE, pack(["move", NOW, NOW + 60, move])),
            ["UnknownType"],
        ),
        *(
            (
                comment,
                Context.NODE_DOCUMENT,
                _frame(node, Context.NODE_DOCUMENT, pack(["node-document", NOW, NOW + DAY, _changed(doc_wire, i, v)])),
                ["Schema"],
            )
            for comment, i, v in (
                ("a limit named twice", 8, [["max-bytes", 65_536], ["max-bytes", 1]]),
                ("a limit name in upper case", 8, [["Max-Bytes", 65_536]]),
                ("a limit value of 2^32", 8, [["max-bytes", 2**32]]),
                ("a negative limit value", 8, [["max-bytes", -1]]),
                ("a key whose valid_from equals its valid_until", 12, [[bytes(node.peer_id), NOW, NOW]]),
                ("a key whose valid_from is after its valid_until", 12, [[bytes(node.peer_id), NOW + DAY, NOW]]),
                ("the same key entry twice", 12, [[bytes(node.peer_id), NOW - DAY, NOW + DAY]] * 2),
                ("a key of 31 bytes", 12, [[bytes(node.peer_id)[:31], NOW - DAY, NOW + DAY]]),
                ("a vocabulary term in upper case", 13, ["Voices"]),
                ("the same protocol twice", 9, ["peerfed/1", "peerfed/1"]),
                ("retention below 3,600 s", 7, [3599, 30 * DAY]),
                ("a web client hash of 31 bytes", 14, bytes(31)),
                ("a web client hash given as text", 14, "00" * 32),
            )
        ),
        (
            "an erasure with a non-empty body",
            Context.ENVELOPE,
            _frame(alice, Context.ENVELOPE, pack(["erasure", NOW, NOW + DAY, [True]])),
            ["Schema"],
        ),
    ]
    invalid = []
    for comment, context, data, flags in invalid_cases:
        invalid.append(
            {
                "comment": comment,
                "context": context.value,
                "input": data.hex(),
                "result": "invalid",
                "error": expect(
                    SIGNED_CODES[flags[0]], lambda d=data, c=context: open_signed(d, context=c, now=NOW), comment
                ),
                "flags": flags,
            }
        )
    challenges = _challenge_vectors(url)
    works = _work_vectors()
    hashes = [
        {"comment": comment, "body": data.hex(), "body_hash": body_hash(data).hex(), "result": "valid"}
        for comment, data in (("an empty body", b""), ("a JSON body", body))
    ]
    return document(
        "peerfed/v1 node protocol objects: node document, node request, client-auth, erasure (spec §13)",
        "Open 'input' under 'context' at 'now' as in envelopes.json. BodyHash: BLAKE2b-256 of 'body' "
        "with personalisation 'peerfed/body/v1'. The node key's seed is 'node_seed'. ChallengeBinding: "
        "a client meant to reach 'meant' and got 'answer' from POST /api/v1/challenge; valid: alice signs "
        "'proof' (created_at and expires_at given); invalid: the client refuses, signing nothing (spec §13.4). "
        "Work: 'zero_bits' is the count of leading zero bits of BLAKE2b-256(challenge || nonce) with "
        "personalisation 'peerfed/work/v1'; valid when the nonce is 1-32 bytes and zero_bits >= 'bits'. For a "
        "first contact the challenge is the sealed id (spec §13.5, Mailbox quotas); for joining, the sign-in "
        "challenge (§13.4). NodeRequestHeader: the receiver of 'method' 'path' with 'body' (hex) at 'destination' "
        "checks the Authorization 'header' (null: none) by steps 1-4 of §13.3 at 'now'; valid: they all pass. "
        "ErasureHash: BLAKE2b-256 of the 32-byte 'peer' with personalisation 'peerfed/erased' (§13.6). "
        "SignInProof: the node 'node' checks the proof 'input' at 'now' as the first steps of §13.4 do: it opens "
        "under 'peerfed/v1/client-auth' (§5.5) and is a client-auth naming 'node'; valid: its author and "
        "challenge. NodeDocumentRead: a document 'input' fetched from 'url' is opened at 'now' (§13.2): it "
        "opens, is signed by a key it lists with valid_from <= now < valid_until, and names 'url'; else "
        "'error'. WebClientHash: the served files 'files' ([path, hex content]) of a web client hash to "
        "'manifest' (hex) and 'hash': SHA-256 of the manifest, one sha256sum line 'HEX  PATH\\n' per file in path "
        "order (spec §13.10); invalid: refused with 'error'.",
        [
            {"type": "NodeObject", "tests": valid},
            {"type": "RejectedNodeObject", "tests": invalid},
            {"type": "BodyHash", "tests": hashes},
            {"type": "ChallengeBinding", "tests": challenges},
            {"type": "Work", "tests": works},
            {"type": "NodeRequestHeader", "tests": _node_request_headers(node, url)},
            {"type": "ErasureHash", "tests": _erasure_hashes()},
            {"type": "SignInProof", "tests": _sign_in_proofs(node, url)},
            {"type": "NodeDocumentRead", "tests": _document_reads(node, doc)},
            {"type": "WebClientHash", "tests": _web_client_hashes()},
        ],
        keys=keys_section(),
        node_seed=NODE_SEED.hex(),
    )


# A tiny web client: the page and two assets, given out of order to show the sort (spec §13.10).
WEB_CLIENT_FILES = {
    "index.html": b'<!doctype html><script type="module" src="/assets/app.js"></script>\n',
    "assets/app.js": b"console.log('peerfed');\n",
    "assets/app.css": b"",
}


def _web_client_hashes() -> list[dict[str, Any]]:
    def files(named: dict[str, bytes]) -> list[list[str]]:
        return [[path, data.hex()] for path, data in named.items()]

    tests: list[dict[str, Any]] = [
        {
            "comment": "a page and two assets",
            "files": files(WEB_CLIENT_FILES),
            "manifest": web_client_manifest(WEB_CLIENT_FILES).hex(),
            "hash": web_client_hash(WEB_CLIENT_FILES).hex(),
            "result": "valid",
        }
    ]
    for comment, named in (
        ("no index.html", {"assets/app.js": b"1"}),
        ("a file in a sub-folder of assets", {**WEB_CLIENT_FILES, "assets/img/a.png": b""}),
        ("a file beside index.html", {**WEB_CLIENT_FILES, "app.js": b""}),
    ):
        try:  # a local refusal (InvalidValue): the files are the checker's own copy
            web_client_hash(named)
        except InvalidValue as exc:
            tests.append({"comment": comment, "files": files(named), "result": "invalid", "error": exc.code})
        else:
            raise AssertionError(f"{comment}: the spec says schema.invalid; the implementation accepts")
    return tests


def _challenge_vectors(url: str) -> list[dict[str, Any]]:
    value = bytes([0x5A]) * 32
    tests: list[dict[str, Any]] = []
    cases: list[tuple[str, object, list[str]]] = [
        ("the challenge names the node the client meant", url, []),
        ("another node's challenge, relayed", "https://grief-circle.example", ["Relayed"]),
        ("the same URL with a trailing slash", url + "/", ["NotSameBytes"]),
        ("the same host over http", url.replace("https://", "http://"), ["NotSameBytes"]),
        ("the host in another case", url.replace("hearing", "Hearing"), ["NotSameBytes"]),
        ("no node named", None, ["Missing"]),
    ]
    for comment, named, flags in cases:
        test: dict[str, Any] = {
            "comment": comment,
            "meant": url,
            "answer": {"challenge": value.hex(), "node": named},
            "signer": "alice",
            "created_at": NOW - 5,
            "expires_at": NOW + 295,
            "flags": flags,
        }
        if flags:  # §13.4: the client refuses before signing, with the local error local.wrong_node
            test.update(
                result="invalid", error=expect_local("local.wrong_node", lambda n=named: client_auth_for(url, n, value))
            )
        else:
            body = client_auth_for(url, named, value)
            proof = sign(IDS["alice"], body, created_at=NOW - 5, expires_at=NOW + 295)
            test.update(result="valid", proof=proof.raw.hex())
        tests.append(test)
    return tests


def _node_request_headers(node: Identity, url: str) -> list[dict[str, Any]]:
    """Authorization headers checked by steps 1-4 of spec §13.3, each with its code declared by hand."""
    import asyncio

    from peerfed.node.federation.verify import verify_request

    origin, path, body = "https://grief-circle.example", "/federation/v1/batch?x=10", b"\x91\xc0"
    sender = Identity(bytes([0x4F]) * 32)

    def signed(created: int = NOW - 10, life: int = 300, **fields: Any) -> bytes:
        values: dict[str, Any] = {
            "method": "POST",
            "path": path,
            "origin": origin,
            "destination": url,
            "nonce": bytes(range(16)),
            "body_hash": body_hash(body),
        }
        values.update(fields)
        return sign(sender, NodeRequest(**values), created_at=created, expires_at=created + life).raw

    def b64(raw: bytes) -> str:
        import base64

        return base64.b64encode(raw).decode("ascii")

    good = signed()
    # So that the padding and URL-safe cases below change the text: it has padding, and + or /.
    assert b64(good).endswith("=") and ("+" in b64(good) or "/" in b64(good))
    flipped = good[:40] + bytes([good[40] ^ 1]) + good[41:]
    proof = sign(sender, ClientAuth(url, bytes(32)), created_at=NOW - 10, expires_at=NOW + 200).raw
    cases: list[tuple[str, str | None, str, str, bytes, str | None]] = [
        ("a valid header", "Peerfed-Node " + b64(good), "POST", path, body, None),
        ("white space around the base64 is ignored", "Peerfed-Node   " + b64(good) + "  ", "POST", path, body, None),
        ("no header", None, "POST", path, body, "auth.required"),
        ("the scheme in lower case", "peerfed-node " + b64(good), "POST", path, body, "auth.required"),
        ("another scheme", "Bearer " + b64(good), "POST", path, body, "auth.required"),
        ("base64 without its padding", "Peerfed-Node " + b64(good).rstrip("="), "POST", path, body, "auth.invalid"),
        (
            "URL-safe base64",
            "Peerfed-Node " + b64(good).replace("+", "-").replace("/", "_"),
            "POST",
            path,
            body,
            "auth.invalid",
        ),
        ("a signature with one bit flipped", "Peerfed-Node " + b64(flipped), "POST", path, body, "signature.invalid"),
        (
            "a client-auth proof in place of a node request",
            "Peerfed-Node " + b64(proof),
            "POST",
            path,
            body,
            "signature.invalid",
        ),
        (
            "created 301 s ago, not yet expired",
            "Peerfed-Node " + b64(signed(created=NOW - 301, life=600)),
            "POST",
            path,
            body,
            "time.expired",
        ),
        (
            "created 301 s ahead",
            "Peerfed-Node " + b64(signed(created=NOW + 301)),
            "POST",
            path,
            body,
            "time.future",
        ),
        ("sent with another method", "Peerfed-Node " + b64(good), "PUT", path, body, "auth.invalid"),
        (
            "sent to another path (the query differs)",
            "Peerfed-Node " + b64(good),
            "POST",
            path[:-1] + "2",
            body,
            "auth.invalid",
        ),
        (
            "signed for another destination",
            "Peerfed-Node " + b64(signed(destination="https://elsewhere.example")),
            "POST",
            path,
            body,
            "auth.invalid",
        ),
        (
            "a body that differs from the signed hash",
            "Peerfed-Node " + b64(good),
            "POST",
            path,
            b"\x91\xc2",
            "auth.invalid",
        ),
        ("an empty body where one was signed", "Peerfed-Node " + b64(good), "POST", path, b"", "auth.invalid"),
    ]

    async def no_key_check(origin: str, key: bytes, now: int, *, follow: bool) -> None:
        return None  # step 5 needs the origin's document: the conformance suite's to test

    async def fresh(nonce: bytes, until: int) -> bool:
        return True

    def check(header: str | None, method: str, target: str, data: bytes) -> None:
        asyncio.run(
            verify_request(
                header,
                method=method,
                path=target,
                destination=url,
                body=data,
                now=NOW,
                check_key=no_key_check,
                use_nonce=fresh,
            )
        )

    tests: list[dict[str, Any]] = []
    for comment, header, method, target, data, code in cases:
        test: dict[str, Any] = {
            "comment": comment,
            "header": header,
            "method": method,
            "path": target,
            "destination": url,
            "body": data.hex(),
        }
        if code is None:
            check(header, method, target, data)
            test["result"] = "valid"
        else:
            test.update(
                result="invalid",
                error=expect(code, lambda h=header, m=method, t=target, d=data: check(h, m, t, d), comment),
            )
        tests.append(test)
    return tests


def _sign_in_proofs(node: Identity, url: str) -> list[dict[str, Any]]:
    """Sign-in proofs a node checks before its state matters (spec §13.4), codes declared by hand."""
    alice = IDS["alice"]
    challenge = bytes([0x5A]) * 32

    def proof(body: Any, created: int = NOW - 5, life: int = 300, who: Identity = alice) -> bytes:
        return sign(who, body, created_at=created, expires_at=created + life).raw

    def framed(payload: list[Value], context: Context = Context.CLIENT_AUTH) -> bytes:
        return _frame(alice, context, pack(payload))

    request = NodeRequest("POST", "/api/v1/session", url, url, bytes(16), body_hash(b""))
    cases: list[tuple[str, bytes, str | None]] = [
        ("alice's proof for this node", proof(ClientAuth(url, challenge)), None),
        ("a proof for another node", proof(ClientAuth("https://grief-circle.example", challenge)), "auth.invalid"),
        (
            "a proof for this node's host in another case",
            proof(ClientAuth(url.replace("hearing", "Hearing"), challenge)),
            "auth.invalid",
        ),
        ("a move statement given as a proof", proof(Move(url, "https://grief-circle.example")), "auth.invalid"),
        ("a node request given as a proof", proof(request, who=node), "signature.invalid"),
        ("an erasure given as a proof", proof(Erasure(), life=DAY), "signature.invalid"),
        (
            "a proof whose node ends with /",
            framed(["client-auth", NOW - 5, NOW + 295, [url + "/", challenge]]),
            "schema.invalid",
        ),
        (
            "a proof living 601 s",
            framed(["client-auth", NOW - 5, NOW + 596, [url, challenge]]),
            "time.lifetime",
        ),
        ("a proof created 301 s ahead", proof(ClientAuth(url, challenge), created=NOW + 301), "time.future"),
        ("a proof that expired", proof(ClientAuth(url, challenge), created=NOW - 400), "time.expired"),
    ]
    tests: list[dict[str, Any]] = []
    for comment, raw, code in cases:
        test: dict[str, Any] = {"comment": comment, "node": url, "input": raw.hex()}
        if code is None:
            _, env = open_sign_in(raw, node=url, now=NOW)
            test.update(result="valid", author=env.author.hex, challenge=challenge.hex())
        else:
            test.update(result="invalid", error=expect(code, lambda r=raw: open_sign_in(r, node=url, now=NOW), comment))
        tests.append(test)
    return tests


def _document_reads(node: Identity, doc: NodeDocument) -> list[dict[str, Any]]:
    """A reader's checks on a fetched node document (spec §13.2), codes declared by hand."""
    key = bytes(node.peer_id)
    other = Identity(bytes([0x4D]) * 32)

    def with_keys(*keys: NodeKey) -> NodeDocument:
        return dataclasses.replace(doc, keys=keys)

    def signed(body: NodeDocument, who: Identity = node) -> bytes:
        return sign(who, body, created_at=NOW - 3600, expires_at=NOW + DAY).raw

    url = doc.url
    cases: list[tuple[str, bytes, str, str | None]] = [
        ("signed by a key it lists as valid now", signed(doc), url, None),
        (
            "the key became valid exactly now (valid_from <= now)",
            signed(with_keys(NodeKey(key, NOW, NOW + DAY))),
            url,
            None,
        ),
        (
            "signed by its previous key, still listed beside the new one",
            signed(
                with_keys(NodeKey(bytes(other.peer_id), NOW - DAY, NOW + DAY), NodeKey(key, NOW - 9 * DAY, NOW + 1))
            ),
            url,
            None,
        ),
        (
            "the key stops being valid exactly now (now < valid_until fails)",
            signed(with_keys(NodeKey(key, NOW - DAY, NOW))),
            url,
            "federation.refused",
        ),
        (
            "the key becomes valid one second after now",
            signed(with_keys(NodeKey(key, NOW + 1, NOW + DAY))),
            url,
            "federation.refused",
        ),
        (
            "signed by a key it does not list",
            signed(with_keys(NodeKey(bytes(other.peer_id), NOW - DAY, NOW + DAY))),
            url,
            "federation.refused",
        ),
        ("fetched from another URL", signed(doc), "https://grief-circle.example", "federation.refused"),
        (
            "fetched from the same host in another case",
            signed(doc),
            url.replace("hearing", "Hearing"),
            "federation.refused",
        ),
        ("fetched over http", signed(doc), url.replace("https://", "http://"), "federation.refused"),
    ]
    tests: list[dict[str, Any]] = []
    for comment, raw, fetched, code in cases:
        test: dict[str, Any] = {"comment": comment, "url": fetched, "input": raw.hex()}
        if code is None:
            _, env = open_document(raw, fetched, NOW)
            test.update(result="valid", author=env.author.hex)
        else:
            test.update(
                result="invalid", error=expect(code, lambda r=raw, u=fetched: open_document(r, u, NOW), comment)
            )
        tests.append(test)
    return tests


def _erasure_hashes() -> list[dict[str, Any]]:
    """The tombstone of an erased peer (spec §13.6): BLAKE2b-256(peer id, personalisation peerfed/erased)."""
    return [
        {
            "comment": f"{name}'s erasure hash",
            "peer": IDS[name].peer_id.hex,
            "erased_hash": erased_hash(bytes(IDS[name].peer_id)).hex(),
            "result": "valid",
        }
        for name in NAMES
    ]


def _work_vectors() -> list[dict[str, Any]]:
    sealed_id = bytes.fromhex("5e" * 32)
    good = solve_work(sealed_id, 16)
    nonces = (n.to_bytes(1, "big") for n in range(256))
    weak = next(n for n in nonces if work_bits(sealed_id, n) < 16)
    # The last column is the code §13.4 declares (None: valid).
    cases: list[tuple[str, str, int, str | None]] = [
        ("the first nonce, counting from zero as 8 big-endian bytes, with 16 zero bits", good.hex(), 16, None),
        ("the same nonce in upper-case hex", good.hex().upper(), 16, None),
        ("the same nonce asked for one bit more than it has", good.hex(), work_bits(sealed_id, good) + 1, "auth.work"),
        ("a one-byte nonce with too few zero bits", weak.hex(), 16, "auth.work"),
        ("no nonce at all", "", 16, "auth.work"),
        ("a 33-byte nonce", "00" * 33, 1, "auth.work"),
        ("not hex", "zz", 1, "auth.work"),
        ("an odd number of hex digits", good.hex() + "0", 1, "auth.work"),
        (
            "hex with a space inside (a parser that skips white space would accept it)",
            good.hex()[:2] + " " + good.hex()[2:],
            1,
            "auth.work",
        ),
    ]
    tests: list[dict[str, Any]] = []
    for comment, nonce, bits, code in cases:
        test: dict[str, Any] = {"comment": comment, "challenge": sealed_id.hex(), "nonce": nonce, "bits": bits}
        raw = bytes.fromhex(nonce) if re.fullmatch(r"(?:[0-9a-fA-F]{2})*", nonce) else None
        if raw is not None and 1 <= len(raw) <= 32:
            test["zero_bits"] = work_bits(sealed_id, raw)
        if code is None:
            check_work(sealed_id, nonce, bits)
            test["result"] = "valid"
        else:
            test.update(
                result="invalid", error=expect(code, lambda n=nonce, b=bits: check_work(sealed_id, n, b), comment)
            )
        tests.append(test)
    return tests


# --- sealing scheme 2 (§14) ---------------------------------------------------------------

SPK = EncryptionSecret(bytes([0xB4]) * 32)  # bob's signed pre-key
OTKS = [EncryptionSecret(bytes([0xB5 + i]) * 32) for i in range(2)]  # bob's one-time pre-keys
RATCHET_CONN = bytes([0x5C]) * 16
RATCHET_CODES = {  # §14.5 and §14.3, declared by hand
    "Replay": "ratchet.key_used",
    "TooFarAhead": "ratchet.too_far_ahead",
    "NoSession": "ratchet.no_session",
    "OtherAgreement": "ratchet.no_session",
    "PrekeyUsed": "ratchet.prekey_used",
    "UnknownPrekey": "seal.wrong_recipient",
    "Tampered": "seal.decrypt_failed",
    "WrongSender": "seal.wrong_sender",
    "BadAgreementSignature": "signature.invalid",
    "OldKey": "seal.decrypt_failed",
    "Schema": "schema.invalid",
}


def _bob_bundle() -> Envelope:
    """Bob's newest unexpired key bundle, with his signed pre-key (spec §4.3, §14.1)."""
    return sign(
        IDS["bob"], KeyBundle(XS["bob"].public, prekey=SPK.public), created_at=NOW - DAY, expires_at=NOW + 30 * DAY
    )


def _first(n: int) -> bytes:
    """The n-th fixed first ratchet secret of an initiator (a real one draws it at random)."""
    return bytes([0xD9, n]) * 16


def _fresh(n: int) -> bytes:
    """The n-th fixed ratchet secret of the run (a real sender draws each at random)."""
    return bytes([0xD0, n]) * 16


def _inner_nonce(n: int) -> bytes:
    """The n-th fixed message nonce of the run (spec §14.4; a real sender draws each at random)."""
    return bytes([0xA0, n]) * 12


def _frame_of(raw: bytes, secret: EncryptionSecret) -> bytes:
    """The frame inside a scheme-2 message's outer seal (spec §14.4)."""
    sealed = parse_sealed(raw)
    p = sealed.payload
    key = sealing._derive(secret.shared(EncryptionKey(p[33:65])), p[33:65], p[1:33], sealing.SCHEME_V2)
    aad = sealing._aad(bytes(sealed.mailbox), sealed.hour, p[:65])
    return sealing.unpad(crypto.aead_decrypt(key, p[65:89], p[89:], aad))


def _next_message_key(state: ratchet.RatchetState, fresh: bytes) -> bytes:
    assert state.remote is not None
    chain = state.send
    if chain is None:
        _, chain = ratchet.kdf_root(state.root, crypto.x25519(fresh, state.remote))
    return ratchet.kdf_chain(chain)[0]


def _agreement_vectors() -> list[dict[str, Any]]:
    tests = []
    mailbox = IDS["bob"].peer_id
    for n, (comment, otk) in enumerate((("with a one-time pre-key", OTKS[0]), ("signed pre-key only", None))):
        e, first = _ephemeral(8 + n), _first(n)
        first_key = crypto.x25519_public(first)
        one_time = None if otk is None else otk.public
        secret, agreement = prekeys.initiate(
            bytes(mailbox), RATCHET_CONN, XS["bob"].public, SPK.public, one_time,
            identity=IDS["alice"], first_key=first_key, ephemeral=e,
        )  # fmt: skip
        tests.append(
            {
                "comment": comment,
                "result": "valid",
                "initiator": IDS["alice"].peer_id.hex,
                "mailbox": mailbox.hex,
                "connection": RATCHET_CONN.hex(),
                "first_ratchet_secret": first.hex(),
                "first_ratchet_key": first_key.hex(),
                "bundle_key": XS["bob"].public.hex,
                "signed_prekey_secret": SPK.secret.hex(),
                "signed_prekey": SPK.public.hex,
                "one_time_secret": None if otk is None else otk.secret.hex(),
                "one_time": None if otk is None else otk.public.hex,
                "ephemeral_secret": e.hex(),
                "ephemeral_public": agreement.ephemeral.hex(),
                "dh1": crypto.x25519(e, bytes(SPK.public)).hex(),
                "dh2": crypto.x25519(e, bytes(XS["bob"].public)).hex(),
                "dh3": None if otk is None else crypto.x25519(e, bytes(otk.public)).hex(),
                "secret": secret.hex(),
                "signed": agreement.signed(bytes(mailbox), RATCHET_CONN, first_key).hex(),
                "agreement": typed(agreement.to_wire()),
            }
        )
    return tests


class _Run:
    """Alice and Bob's sessions through the run, each step recorded for the vectors."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict[bytes, sealing2.Session]] = {"alice": {}, "bob": {}}
        self.one_times: dict[str, list[EncryptionSecret]] = {"alice": [], "bob": list(OTKS)}
        self.prekeys = {"alice": [], "bob": [SPK]}
        self.sent: dict[str, bytes] = {}
        self.steps: list[dict[str, Any]] = []
        self.count = 0
        # After each step (index 0: before any), what each side holds: sessions and one-time pre-keys.
        self.snapshots: list[tuple[dict[str, dict[bytes, sealing2.Session]], dict[str, list[EncryptionSecret]]]] = []

    def snapshot(self) -> None:
        sessions = {k: dict(v) for k, v in self.sessions.items()}
        self.snapshots.append((sessions, {k: list(v) for k, v in self.one_times.items()}))

    def start(self) -> None:
        self.sessions["alice"][RATCHET_CONN] = sealing2.initiate_session(
            _bob_bundle(), RATCHET_CONN, OTKS[0].public,
            identity=IDS["alice"], now=NOW, ephemeral=_ephemeral(8), first=_first(0),
        )  # fmt: skip
        self.snapshot()

    def inner(self, who: str, to: str, seq: int, text: str, conn: bytes = RATCHET_CONN) -> Envelope:
        body = Message(IDS[to].peer_id, conn, seq, text)
        return sign(IDS[who], body, created_at=NOW - 600 + seq, expires_at=NOW + DAY)

    def seal(self, who: str, to: str, inner: Envelope, session: sealing2.Session) -> tuple[bytes, sealing2.Session]:
        self.count += 1
        n = self.count
        sealed, after = sealing2.seal2(
            inner,
            session,
            XS[to].public,
            fresh=_fresh(n),
            ephemeral=_ephemeral(16 + n % 16),
            nonce=_nonce(n),
            inner_nonce=_inner_nonce(n),
        )
        return sealed.raw, after

    def send(self, label: str, who: str, seq: int, text: str) -> None:
        to = "bob" if who == "alice" else "alice"
        inner = self.inner(who, to, seq, text)
        before = self.sessions[who][RATCHET_CONN]
        fresh = _fresh(self.count + 1)
        mk = _next_message_key(before.state, fresh)
        raw, self.sessions[who][RATCHET_CONN] = self.seal(who, to, inner, before)
        self.sent[label] = raw
        frame = _frame_of(raw, XS[to])
        self.steps.append(
            {
                "action": "send",
                "message": label,
                "from": who,
                "to": to,
                "inner": inner.raw.hex(),
                "ratchet_secret": fresh.hex(),
                "outer_ephemeral": _ephemeral(16 + self.count % 16).hex(),
                "nonce": _nonce(self.count).hex(),
                "inner_nonce": _inner_nonce(self.count).hex(),
                "frame": frame.hex(),
                "header": typed(unpack(frame)[1]),  # type: ignore[index]
                "message_key": mk.hex(),
                "sealed": raw.hex(),
            }
        )
        self.snapshot()

    def open(self, label: str, who: str, raw: bytes | None = None) -> sealing2.Opened2:
        opened = sealing2.open_sealed2(
            self.sent[label] if raw is None else raw,
            recipient=IDS[who].peer_id,
            secrets=[XS[who]],
            signed_prekeys=self.prekeys[who],
            one_time_prekeys=self.one_times[who],
            sessions=self.sessions[who],
            now=NOW,
        )
        return opened

    def deliver(self, label: str, who: str, comment: str) -> None:
        opened = self.open(label, who)
        self.sessions[who][opened.pending.connection] = opened.pending
        self.one_times[who] = [k for k in self.one_times[who] if k.public != opened.one_time_used]
        self.steps.append(
            {
                "action": "open",
                "message": label,
                "by": who,
                "comment": comment,
                "inner": opened.inner.raw.hex(),
                "one_time_used": None if opened.one_time_used is None else opened.one_time_used.hex,
            }
        )
        self.snapshot()


def ratchet_vectors() -> dict[str, Any]:
    run = _Run()
    run.start()
    run.send("a1", "alice", 1, "first, carrying the agreement")
    run.send("a2", "alice", 2, "this one is lost")
    run.send("a3", "alice", 3, "third, arrives first")
    run.deliver("a3", "bob", "starts bob's session; keys for n=0 and n=1 are kept as skipped")
    run.deliver("a1", "bob", "late: opens from a skipped key")
    run.send("b1", "bob", 1, "bob's first, a fresh ratchet key")
    run.send("b2", "bob", 2, "bob's second")
    run.deliver("b2", "alice", "alice's first from bob: she stops repeating the agreement")
    run.send("a4", "alice", 4, "a new chain of alice's, pn = 3")
    run.send("a5", "alice", 5, "lost in that chain for now")
    run.deliver("a4", "bob", "a DH step; nothing left to skip of the closing chain")
    run.deliver("b1", "alice", "late, from a skipped key")
    run.send("b3", "bob", 3, "bob's new chain")
    run.deliver("b3", "alice", "a DH step for alice")
    run.send("a6", "alice", 6, "alice's third chain, pn = 2")
    run.deliver("a6", "bob", "a DH step that keeps a5's key as skipped (pn = 2)")
    run.deliver("a5", "bob", "a5 arrives at last and opens")
    # Seventeen more round trips: every ratchet key of the run's start leaves bob's 16 retired ones.
    for k in range(ratchet.MAX_RETIRED + 1):
        run.send(f"b{4 + k}", "bob", 4 + k, "a round trip")
        run.deliver(f"b{4 + k}", "alice", "a DH step for alice")
        run.send(f"a{7 + k}", "alice", 7 + k, "and back")
        run.deliver(f"a{7 + k}", "bob", "a DH step for bob")
    steps = run.steps
    for i, step in enumerate(steps):
        step["step"] = i + 1
    invalid = _ratchet_invalid(run)
    return document(
        "peerfed/v1 sealing scheme 2: pre-key agreement and double ratchet (spec §14)",
        "Agreement: dh1..dh3 and secret from the listed keys (§14.2). RatchetRun: replay 'steps' in order; "
        "alice starts her session with bob's bundle key, 'signed_prekey' and the first one-time pre-key, "
        "ephemeral secret of the first Agreement test; a send with its 'ratchet_secret', 'outer_ephemeral', "
        "'nonce' (the outer seal's) and 'inner_nonce' (the message key's) reproduces 'sealed'; "
        "an open gives 'inner'. RejectedRatchetMessage: after the first "
        "'after' steps of the run, opening 'input' as 'by' fails with 'error', changing nothing.",
        [
            {"type": "Agreement", "tests": _agreement_vectors()},
            {
                "type": "RatchetRun",
                "tests": [
                    {
                        "comment": "a run with loss and reordering",
                        "result": "valid",
                        "signed_prekey_secret": SPK.secret.hex(),
                        "bundle": _bob_bundle().raw.hex(),
                        "one_time_secrets": [k.secret.hex() for k in OTKS],
                        "connection": RATCHET_CONN.hex(),
                        "steps": steps,
                    }
                ],
            },
            {"type": "RejectedRatchetMessage", "tests": invalid},
        ],
        keys=keys_section(),
    )


def _rewrapped(run: _Run) -> list[tuple[str, int, str, bytes, list[str]]]:
    """A holder of bob's bundle-key and signed pre-key secrets re-wraps alice's signed a1 (spec §14.2).

    It can open a1 (no one-time pre-key in its own agreement is needed for that), so it tries to
    start bob's session under an agreement or a ratchet key of its own: both are refused, since
    only alice can sign the agreement and the first ratchet key it covers.
    """
    inner = open_signed(bytes.fromhex(run.steps[0]["inner"]), context=Context.SEALED, now=NOW)
    bob_id = IDS["bob"].peer_id
    genuine = run.snapshots[1][0]["alice"][RATCHET_CONN].state.agreement
    assert genuine is not None
    # Its own agreement naming alice as the initiator, with a signature it cannot make.
    own = sealing2.initiate_session(
        _bob_bundle(), RATCHET_CONN, None, identity=IDS["carol"], now=NOW, ephemeral=_ephemeral(10), first=_first(10)
    )
    assert own.state.agreement is not None
    forged = dataclasses.replace(own.state.agreement, initiator=bytes(IDS["alice"].peer_id))
    forging = sealing2.Session(RATCHET_CONN, bob_id, forged.ephemeral, dataclasses.replace(own.state, agreement=forged))
    raw, _ = run.seal("alice", "bob", inner, forging)
    cases = [("a1 re-wrapped under an agreement alice did not sign", 0, "bob", raw, ["BadAgreementSignature"])]
    # Alice's own agreement (its SK computed with bob's secrets), but a first ratchet key of its own.
    secret = prekeys.respond(bytes(bob_id), RATCHET_CONN, genuine, key=XS["bob"], prekey=SPK, one_time=OTKS[0])
    state = ratchet.start_initiator(secret, bytes(SPK.public), genuine, first=_first(11))
    session = sealing2.Session(RATCHET_CONN, bob_id, genuine.ephemeral, state)
    raw, _ = run.seal("alice", "bob", inner, session)
    cases.append(
        ("a1 re-wrapped under alice's agreement with another ratchet key", 0, "bob", raw, ["BadAgreementSignature"])
    )
    return cases


def _ratchet_invalid(run: _Run) -> list[dict[str, Any]]:
    """Each case replays the run's first ``after`` steps, then opens its input (spec §14.5)."""
    full = len(run.steps)
    bob_id = IDS["bob"].peer_id
    end_alice = run.sessions["alice"][RATCHET_CONN]
    cases: list[tuple[str, int, str, bytes, list[str]]] = []
    cases.append(("a1 again, after it opened", 5, "bob", run.sent["a1"], ["Replay"]))
    cases.append(("a1 again, its ratchet key older than the 16 retired", full, "bob", run.sent["a1"], ["OldKey"]))
    cases.append(("a4 before bob holds a session: no agreement", 0, "bob", run.sent["a4"], ["NoSession"]))
    # 102 more of alice's messages in her last chain: the last is 101 past bob's position.
    session = end_alice
    far = b""
    for k in range(ratchet.MAX_SKIP + 2):
        far, session = run.seal("alice", "bob", run.inner("alice", "bob", 7 + k, "far"), session)
    cases.append(("more than 100 keys ahead in one chain", full, "bob", far, ["TooFarAhead"]))
    # Carol names the one-time pre-key alice's agreement used up.
    other = bytes([0x6C]) * 16
    carol = sealing2.initiate_session(
        _bob_bundle(), other, OTKS[0].public, identity=IDS["carol"], now=NOW, ephemeral=_ephemeral(12), first=_first(12)
    )
    raw, _ = run.seal("carol", "bob", run.inner("carol", "bob", 1, "hi", other), carol)
    cases.append(("a one-time pre-key used already", 4, "bob", raw, ["PrekeyUsed"]))
    stranger = EncryptionSecret(bytes([0x77]) * 32).public
    # No bundle of bob's signs this pre-key, so carol's session is built from the keys directly.
    carol = sealing2._start(bob_id, other, XS["bob"].public, stranger, None, IDS["carol"], _ephemeral(13), _first(13))
    raw, _ = run.seal("carol", "bob", run.inner("carol", "bob", 1, "hi", other), carol)
    cases.append(("a signed pre-key bob never had", 4, "bob", raw, ["UnknownPrekey"]))
    carol = sealing2.initiate_session(
        _bob_bundle(),
        RATCHET_CONN,
        OTKS[1].public,
        identity=IDS["carol"],
        now=NOW,
        ephemeral=_ephemeral(14),
        first=_first(14),
    )
    raw, _ = run.seal("carol", "bob", run.inner("carol", "bob", 1, "hi"), carol)
    cases.append(("another agreement for a connection with a session", 4, "bob", raw, ["OtherAgreement"]))
    cases += _rewrapped(run)
    # Carol writes in alice's session (as if she had copied it): the session is bound to alice.
    raw, _ = run.seal("carol", "bob", run.inner("carol", "bob", 9, "as carol"), end_alice)
    cases.append(("another author in alice's session", full, "bob", raw, ["WrongSender"]))
    # Alice's next message with one ciphertext byte flipped inside the frame, sealed again outside.
    raw, _ = run.seal("alice", "bob", run.inner("alice", "bob", 7, "tampered"), end_alice)
    frame = bytearray(_frame_of(raw, XS["bob"]))
    frame[-1] ^= 1
    sealed = parse_sealed(raw)
    p = sealed.payload
    raw = sealing._encrypt(
        sealing.pad(bytes(frame)), bytes(bob_id), sealed.hour, p[1:33], _ephemeral(15), _nonce(60), sealing.SCHEME_V2
    ).raw
    cases.append(("a ciphertext that does not verify under its message key", full, "bob", raw, ["Tampered"]))
    # a1 with its agreement's O replaced by S: one DH term twice (spec §14.2).
    a1: Any = unpack(_frame_of(run.sent["a1"], XS["bob"]))
    a1[1][3][3] = a1[1][3][2]
    sealed = parse_sealed(run.sent["a1"])
    raw = sealing._encrypt(
        sealing.pad(pack(a1)), bytes(bob_id), sealed.hour, p[1:33], _ephemeral(15), _nonce(61), sealing.SCHEME_V2
    ).raw
    cases.append(("an agreement whose one-time pre-key is its signed pre-key", 0, "bob", raw, ["Schema"]))
    tests = []
    for comment, after, by, data, flags in cases:
        replay = _Run()
        sessions, one_times = run.snapshots[after]
        replay.sessions = {k: dict(v) for k, v in sessions.items()}
        replay.one_times = {k: list(v) for k, v in one_times.items()}
        error = expect(RATCHET_CODES[flags[0]], functools.partial(replay.open, "", by, data), comment)
        tests.append(
            {
                "comment": comment,
                "result": "invalid",
                "after": after,
                "by": by,
                "input": data.hex(),
                "error": error,
                "flags": flags,
            }
        )
    return tests


BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "encoding.json": encoding_vectors,
    "identity.json": identity_vectors,
    "envelopes.json": envelope_vectors,
    "sealing.json": sealing_vectors,
    "padding.json": padding_vectors,
    "connection.json": connection_vectors,
    "node.json": node_vectors,
    "search.json": search_vectors,
    "ratchet.json": ratchet_vectors,
}


def render(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


# The rules of the spec (its numbered MUSTs, spec/coverage.md) each vector exercises, declared by hand:
# by file and group, then by the case's first flag, then by its comment for the cases that pin one
# rule more. Each test's "rules" is the union, in this order, without repeats.
_OPEN = "R-5.5-1"
_ENCODING = ["R-2-1", "R-2.3-1"]
_KEY = ["R-3-2", "R-4.1-1"]
GROUP_RULES: dict[tuple[str, str], list[str]] = {
    ("encoding.json", "CanonicalEncoding"): ["R-2-1"],
    ("encoding.json", "RejectedEncoding"): _ENCODING,
    ("identity.json", "Identity"): ["R-4.2-3"],
    ("identity.json", "PeerIdText"): ["R-4.2-2"],
    ("envelopes.json", "SignedObject"): [_OPEN],
    ("envelopes.json", "RejectedSignedObject"): [_OPEN],
    ("node.json", "NodeObject"): [_OPEN],
    ("node.json", "RejectedNodeObject"): [_OPEN],
    ("node.json", "BodyHash"): ["R-13.3-1"],
    ("node.json", "ChallengeBinding"): ["R-13.4-1", "R-13.4-2"],
    ("node.json", "Work"): ["R-13.4-3", "R-13.5-13"],
    ("node.json", "NodeRequestHeader"): ["R-13.3-1"],
    ("node.json", "ErasureHash"): ["R-13.6-2"],
    ("node.json", "SignInProof"): ["R-13.4-3"],
    ("node.json", "NodeDocumentRead"): ["R-13.2-2"],
    ("sealing.json", "SealedMessage"): ["R-7.1-1", "R-7.3-1"],
    ("sealing.json", "RejectedSealedMessage"): ["R-7.3-1"],
    ("connection.json", "ConnectionScenario"): ["R-9.1-1", "R-9.2-1"],
    ("connection.json", "RejectedStart"): ["R-9.1-1"],
    ("search.json", "RejectedTopicQuery"): ["R-6.4-1"],
}
FLAG_RULES: dict[str, list[str]] = {
    "InvalidUtf8": ["R-2.1-1"],
    "NonCanonical": ["R-2-1"],
    "TrailingBytes": ["R-2-1"],
    "ForbiddenType": ["R-2-1"],
    "SmallOrderKey": _KEY,
    "NonCanonicalKey": _KEY,
    "MixedOrderKey": _KEY,
    "SmallOrderR": ["R-3-2"],
    "NonCanonicalR": ["R-3-2"],
    "MixedOrderR": ["R-3-2"],
    "NonCanonicalS": ["R-3-1"],
    "Lifetime": ["R-5.3-1"],
    "Future": ["R-5.3-2"],
    "Expired": ["R-5.3-3"],
    "LowOrder": ["R-3-3"],
    "WrongSender": ["R-8.1-2"],
    "NotSameBytes": ["R-13.1-2"],
}
IDENTITY_FLAG_RULES: dict[str, list[str]] = {  # peer id texts (§4.2): their own defects, not msgpack's
    "BadPrefix": ["R-4.2-1"],
    "SmallOrderKey": ["R-4.1-1"],
    "NonCanonicalKey": ["R-4.1-1"],
    "MixedOrderKey": ["R-4.1-1"],
}
COMMENT_RULES: dict[str, list[str]] = {
    "a key bundle with a signed pre-key living 60 days + 1 s": ["R-14.1-1"],
    "an agreement whose one-time pre-key is its signed pre-key": ["R-14.2-1"],
    "a1 re-wrapped under an agreement alice did not sign": ["R-14.2-4"],
    "a1 re-wrapped under alice's agreement with another ratchet key": ["R-14.2-4"],
    "another author in alice's session": ["R-14.2-4"],
    "a listing at the longest lifetime, 90 days": ["R-5.3-1"],
    "created exactly at the clock-skew limit, now + 300 s": ["R-5.3-2"],
    "expires one second after now": ["R-5.3-3"],
    "a time zone no database knows: only the pattern is checked (§6.2)": ["R-6.2-1"],
    "a node document whose url ends with a slash": ["R-13.1-1"],
    "a move from a node to itself": ["R-13.5-22"],
    "a move living 601 s": ["R-13.5-22"],
    "a proof whose node ends with /": ["R-13.1-1"],
    "fetched from another URL": ["R-13.2-1"],
    "fetched from the same host in another case": ["R-13.2-1"],
    "fetched over http": ["R-13.2-1"],
    "the signed inner message names carol": ["R-7.1-1", "R-8.1-1"],
    "a decline that carries text": ["R-8.2-1"],
    "a payload that is a str, not a bin": ["R-2.2-1"],
    "a reach-out whose key bundle had expired when it was written": ["R-8.1-2"],
    "a reach-out body of the first draft, without the key bundle": ["R-8.1-2"],
    "upper case is accepted; the canonical form is lower case": ["R-4.2-3"],
    "57344 bytes": ["R-7.2-1"],
    "agreement whose terms forget each message 30 days after it was sent": ["R-8.3-1"],
    "terms that forget after 3,599 s, under an hour": ["R-8.3-1"],
    "terms that forget after 365 days + 1 s": ["R-8.3-1"],
    "terms whose seventh item is nil": ["R-8.3-1"],
    "terms of eight items": ["R-8.3-1"],
}


def with_rules(name: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Give each test of ``doc`` its "rules" (GROUP_RULES, FLAG_RULES, COMMENT_RULES above)."""
    for group in doc["testGroups"]:
        for test in group["tests"]:
            rules = list(GROUP_RULES.get((name, group["type"]), []))
            flags = IDENTITY_FLAG_RULES if name == "identity.json" else FLAG_RULES
            rules += flags.get(test["flags"][0], []) if test["flags"] else []
            rules += COMMENT_RULES.get(test["comment"], [])
            if "origin" in test["comment"] and "(spec §13.1" in test["comment"]:
                rules.append("R-13.1-1")
            test["rules"] = list(dict.fromkeys(rules))
    return doc


def build_all() -> dict[str, bytes]:
    docs = {name: with_rules(name, build()) for name, build in BUILDERS.items()}
    comments = {test["comment"] for doc in docs.values() for group in doc["testGroups"] for test in group["tests"]}
    stale = sorted(set(COMMENT_RULES) - comments)
    if stale:  # a renamed case would silently lose its rules
        raise AssertionError(f"COMMENT_RULES names cases that do not exist: {stale}")
    return {name: render(doc) for name, doc in docs.items()}


def main(argv: list[str]) -> int:
    files = build_all()
    if "--check" in argv:
        stale = [n for n, data in files.items() if (HERE / n).read_bytes() != data]
        for name in stale:
            print(f"{name} differs from what generate.py makes", file=sys.stderr)
        return 1 if stale else 0
    spec = HERE.parent / "peerfed-v1.md"
    text = spec.read_text(encoding="utf-8")
    for name, data in files.items():
        (HERE / name).write_bytes(data)
        count = json.loads(data)["numberOfTests"]
        digest = hashlib.sha256(data).hexdigest()
        print(f"{name}: {count} tests, sha256 {digest}")
        # Keep the spec's pinning table (§11) in step with the files.
        text = re.sub(
            rf"\| `{re.escape(name)}` \| \d+ \| `[0-9a-f]{{64}}` \|",
            f"| `{name}` | {count} | `{digest}` |",
            text,
        )
    spec.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
