"""Garbling: bytes and msgpack trees mutated, and signed objects and sealed messages as sent.

A signed object may come back valid, garbled after signing, garbled and re-signed with ``_frame``
(so it passes the signature and reaches the decoding, schema and node layers), re-timed, signed
under another context or by someone else, truncated, or oversize. Each variant says whether it
must be refused and, where the spec fixes it, with which codes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import msgpack

from peerfed.protocol import Context, Envelope, Identity, pack, unpack
from peerfed.protocol.envelope import _frame
from peerfed.protocol.sealing import HOUR, MAX_SEALED_AGE, padded_length
from tests.node.harness import DAY
from tests.protocol.test_fuzz import ENCODINGS, MARKERS, SPECIAL

from .sources import BODY_LIMIT, INTS, STRINGS, Source, blob, one_in
from .world import World

__all__ = [
    "mutate_bytes", "msgpack_value", "mutate_value", "encode", "retime", "SIGNATURE_INVALID", "SHORT", "TOO_LARGE",
    "signed_variant", "sealed_variant"
]  # fmt: skip


def mutate_bytes(src: Source, base: bytes, donors: Sequence[bytes] = ENCODINGS) -> bytes:
    """``base`` with one to four flips, inserts, deletions, splices, msgpack markers or truncations."""
    data = bytearray(base)
    for _ in range(src.integer(1, 4)):
        op = src.pick(("flip", "insert", "delete", "splice", "marker", "duplicate", "truncate"))
        at = src.integer(0, len(data))
        if op == "flip" and data:
            at = min(at, len(data) - 1)
            data[at] ^= src.integer(1, 255)
        elif op == "insert":
            data[at:at] = src.raw(1, 8)
        elif op == "delete":
            del data[at : at + src.integer(1, 16)]
        elif op == "splice":
            donor = src.pick(donors)
            start = src.integer(0, len(donor) - 1)
            piece = donor[start : start + src.integer(1, 64)]
            if one_in(src, 2):
                data[at : at + len(piece)] = piece
            else:
                data[at:at] = piece
        elif op == "marker":
            marker = src.pick(MARKERS)
            if one_in(src, 2):
                data[at : at + len(marker)] = marker
            else:
                data[at:at] = marker
        elif op == "duplicate":
            end = src.integer(at, min(len(data), at + 32))
            data[end:end] = data[at:end]
        elif op == "truncate":
            del data[at:]
    return bytes(data)


def msgpack_value(src: Source, depth: int = 0) -> Any:
    k = src.integer(0, 9 if depth < 3 else 6)
    if k == 0:
        return None
    if k == 1:
        return one_in(src, 2)
    if k == 2:
        return src.integer(-40, 300)
    if k == 3:
        return src.pick([i for i in INTS if -(2**63) <= i < 2**64])
    if k == 4:
        return src.pick(STRINGS) if one_in(src, 2) else src.text(30)
    if k == 5:
        return src.raw(0, 40)
    if k == 6:
        return src.pick(SPECIAL)
    return [msgpack_value(src, depth + 1) for _ in range(src.integer(0, 4))]


def _paths(value: Any, prefix: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    found = [prefix]
    if isinstance(value, list):
        for i, item in enumerate(value):
            found.extend(_paths(item, (*prefix, i)))
    return found


def _copy(value: Any) -> Any:
    return [_copy(v) for v in value] if isinstance(value, list) else value


def mutate_value(src: Source, w: World, base: Any) -> Any:
    """``base`` (a decoded msgpack tree) with one to three nodes replaced, deleted, inserted or wrapped."""

    def replacement() -> Any:
        k = src.integer(0, 3)
        if k == 0:
            return _copy(src.pick(SPECIAL))
        if k == 1:
            return src.pick(w.values())
        return msgpack_value(src)

    tree = _copy(base)
    for _ in range(src.integer(1, 3)):
        path = src.pick(_paths(tree))
        if not path:
            tree = replacement() if one_in(src, 2) else [tree]
            continue
        parent: Any = tree
        for i in path[:-1]:
            parent = parent[i]
        i = path[-1]
        op = src.pick(("replace", "replace", "delete", "insert", "duplicate", "wrap"))
        if op == "replace":
            parent[i] = replacement()
        elif op == "delete":
            del parent[i]
        elif op == "insert":
            parent.insert(i, replacement())
        elif op == "duplicate":
            parent.insert(i, _copy(parent[i]))
        else:
            parent[i] = [parent[i]]
    return tree


def encode(value: Any, fallback: bytes) -> bytes:
    # msgpack itself, not pack(): non-canonical and too-deep trees must still reach the node.
    try:
        return bytes(msgpack.packb(value, use_bin_type=True))
    except (OverflowError, TypeError, ValueError):
        return fallback


def retime(src: Source, w: World, max_life: int) -> tuple[int, int, str, frozenset[str] | None]:
    now = w.now
    life = min(max_life, src.pick((60, 600, 3600, DAY)))
    k = src.pick(("expired", "just-expired", "future", "edge-future", "too-long", "zero", "backwards", "huge"))
    if k == "expired":
        return now - 10 * life, now - 9 * life, k, frozenset({"time.expired"})
    if k == "just-expired":
        return now - life, now, k, frozenset({"time.expired"})
    if k == "future":
        created = now + 301 + src.pick((0, 1, 3600, 400 * DAY))
        return created, created + life, k, frozenset({"time.future"})
    if k == "edge-future":
        return now + 300, now + 300 + life, k, None  # exactly at the allowed skew: valid
    if k == "too-long":
        return now, now + max_life + src.pick((1, DAY)), k, frozenset({"time.lifetime"})
    if k == "zero":
        return now, now, k, frozenset({"time.lifetime"})
    if k == "backwards":
        return now, now - 1, k, frozenset({"time.lifetime"})
    return src.pick((2**40, -1, 2**64 - 1)), now + life, k, frozenset({"schema.invalid"})


SIGNATURE_INVALID = frozenset({"signature.invalid"})
SHORT = frozenset({"encoding.malformed"})
TOO_LARGE = frozenset({"size.too_large"})


def signed_variant(
    src: Source, w: World, env: Envelope, signer: Identity, context: Context | None = None
) -> tuple[bytes, str, bool, frozenset[str] | None]:
    """A signed object as sent: valid, garbled, re-signed garbled, re-timed, mis-signed, or oversize.

    ``context`` is the one the receiver verifies under (default: the object's own). Returns the
    bytes, a note, whether it must be refused, and the codes it may get (None: any).
    """
    raw, note, must_fail, expect = _signed_variant(src, w, env, signer)
    wrong = context is not None and context is not env.context
    if (
        wrong
        and not note.startswith(("signed under", "truncated", "version", "random", "garbled"))
        and (expect is None or not expect <= {"size.too_large"})
    ):
        # Verified under the wrong context it cannot pass the signature, unless too short to try.
        assert context is not None  # ``wrong`` says it is given
        return raw, note + f" (a {env.type} where {context.value} belongs)", True, SIGNATURE_INVALID | SHORT
    if wrong and note.startswith(("signed under", "garbled", "random")):
        return raw, note, note.startswith("garbled") and must_fail, None
    return raw, note, must_fail, expect


def _signed_variant(
    src: Source, w: World, env: Envelope, signer: Identity
) -> tuple[bytes, str, bool, frozenset[str] | None]:
    raw, payload = env.raw, env.raw[97:]
    op = src.pick((
        "valid", "valid", "valid", "bytes", "resigned-bytes", "resigned-values", "resigned-values",
        "resigned-values", "retime", "retime", "context", "other-signer", "truncate", "version",
        "oversize", "too-big-body", "random", "signature",
    ))  # fmt: skip
    if op == "valid":
        return raw, "valid", False, None
    if op == "bytes":
        data = mutate_bytes(src, raw, [*ENCODINGS, raw])
        return data, "garbled after signing", data != raw, None
    if op == "resigned-bytes":
        return _frame(signer, env.context, mutate_bytes(src, payload, [*ENCODINGS, payload])), op, False, None
    if op == "resigned-values":
        tree = unpack(payload)
        return _frame(signer, env.context, encode(mutate_value(src, w, tree), payload)), op, False, None
    if op == "retime":
        created, expires, how, expect = retime(src, w, env.body.max_lifetime)
        tree = unpack(payload)
        assert isinstance(tree, list)
        tree[1:3] = [created, expires]
        return _frame(signer, env.context, encode(tree, payload)), f"retimed {how}", expect is not None, expect
    if op == "context":
        other = src.pick([c for c in Context if c is not env.context])
        return _frame(signer, other, payload), f"signed under {other.value}", True, SIGNATURE_INVALID
    if op == "other-signer":
        return _frame(w.someone_else(src, signer), env.context, payload), op, False, None
    if op == "truncate":
        size = src.pick((0, 1, 50, 97, 98, len(raw) - 1))
        expect = frozenset({"encoding.malformed"}) if size <= 97 else None
        return raw[:size], f"truncated to {size}", True, expect
    if op == "version":
        return bytes([src.pick((0, 2, 255))]) + raw[1:], "version", True, frozenset({"version.unsupported"})
    if op == "oversize":
        size = src.integer(65_537, BODY_LIMIT)
        return raw + blob(src, size - len(raw)), f"{size} bytes", True, TOO_LARGE
    if op == "too-big-body":
        size = src.integer(BODY_LIMIT + 1, 2 * BODY_LIMIT)
        return raw + blob(src, size - len(raw)), f"{size}-byte body", True, TOO_LARGE
    if op == "signature":
        at = src.integer(33, 96)
        return raw[:at] + bytes([raw[at] ^ src.integer(1, 255)]) + raw[at + 1 :], op, True, None
    return src.raw(0, 300), "random bytes", False, None


def sealed_variant(src: Source, w: World, raw: bytes) -> tuple[bytes, str, frozenset[str] | None]:
    """A sealed message as sent: valid, garbled, re-routed, re-timed, or a made-up payload."""
    outer = unpack(raw)
    assert isinstance(outer, list)
    _, _, hour, payload = outer  # [version, mailbox, hour, payload]: ``raw`` is a valid sealed message
    assert isinstance(hour, int) and isinstance(payload, bytes)
    now = w.now
    op = src.pick((
        "valid", "valid", "valid", "bytes", "values", "values", "hour-future", "hour-old", "hour-odd",
        "mailbox", "padding", "scheme", "version", "fake", "oversize", "too-big-body", "random", "replay",
    ))  # fmt: skip
    if op == "valid":
        return raw, op, None
    if op == "bytes":
        return mutate_bytes(src, raw, [*ENCODINGS, raw]), op, None
    if op == "values":
        return encode(mutate_value(src, w, outer), raw), op, None
    if op == "hour-future":
        outer[2] = now - now % HOUR + HOUR * src.pick((2, 24, 10_000))
        return pack(outer), op, frozenset({"time.future"})
    if op == "hour-old":
        outer[2] = (now - MAX_SEALED_AGE - src.pick((HOUR, DAY))) // HOUR * HOUR
        return pack(outer), op, frozenset({"time.expired"})
    if op == "hour-odd":
        outer[2] = hour + src.pick((1, 60, 1799))
        return pack(outer), op, frozenset({"schema.invalid"})
    if op == "mailbox":
        outer[1] = src.pick([bytes(m.id) for m in (*w.fuzz, w.honest, w.remote, w.stranger)] + [os.urandom(32)])
        return pack(outer), op, None
    if op == "padding":
        outer[3] = payload + bytes(src.pick((1, 16, 64)))
        return pack(outer), op, None
    if op == "scheme":
        outer[3] = bytes([src.pick((0, 3, 255))]) + payload[1:]  # scheme 2 is carried (spec §14.5)
        return pack(outer), op, frozenset({"version.unsupported"})
    if op == "version":
        outer[0] = src.pick((0, 2, 255))
        return pack(outer), op, frozenset({"version.unsupported"})
    if op == "fake":
        size = padded_length(src.integer(0, 3000))
        outer[3] = b"\x01" + blob(src, 32 + 32 + 24 + size + 16 - 1)
        return pack(outer), "made-up payload", None
    if op == "oversize":
        outer[3] = b"\x01" + blob(src, src.integer(65_540, 69_000))
        return pack(outer), op, frozenset({"size.too_large"})
    if op == "too-big-body":
        return raw + blob(src, src.integer(BODY_LIMIT, 2 * BODY_LIMIT)), op, frozenset({"size.too_large"})
    if op == "replay":
        return src.pick(w.sent or [raw]), "replayed", None
    return src.raw(0, 300), "random bytes", None
