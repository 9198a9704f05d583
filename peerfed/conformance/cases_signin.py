"""Conformance cases for signing in and for refusing bad signed objects (spec §13.4, §5.5, §2).

Each case plays a fresh peer. A proof with a bad signature, for another node, or over a spent
challenge must be refused with its code; so must truncated msgpack, an expired object and an
unknown framing version, wherever a signed object arrives.
"""

from __future__ import annotations

import os
from typing import Any

from peerfed.protocol import ClientAuth, Move

from .suite import Failed, case
from .target import Answer, Peer, Target, b64

__all__: list[str] = []


async def _challenge(target: Target) -> dict[str, Any]:
    data = (await target.call("POST", "/api/v1/challenge")).ok()
    if not isinstance(data, dict):
        raise Failed("the challenge answer is not a JSON object")
    return data


def _proof(peer: Peer, challenge: dict[str, Any], node: str | None = None, life: int = 300) -> bytes:
    body = ClientAuth(node or peer.target.url, bytes.fromhex(challenge["challenge"]))
    return peer.signed(body, life=life).raw


@case("signin.challenge", ["R-13.4-3"])
async def signin_challenge(target: Target) -> None:
    data = await _challenge(target)
    try:
        raw = bytes.fromhex(data["challenge"])
    except (KeyError, TypeError, ValueError) as exc:
        raise Failed("challenge is not hex") from exc
    if len(raw) != 32 or data["challenge"] != raw.hex():
        raise Failed("challenge is not 32 bytes of lowercase hex")
    if data.get("node") != target.url:
        raise Failed(f"challenge names node {data.get('node')!r}, not {target.url!r}")
    expires = data.get("expires_at")
    if not isinstance(expires, int) or not 0 < expires - target.now() <= 300 + 30:
        raise Failed(f"expires_at {expires!r} is not within 300 s from now")
    if not isinstance(data.get("work"), int) or data["work"] < 0:
        raise Failed("work is not a non-negative integer")


@case("signin.good", ["R-13.4-3"])
async def signin_good(target: Target) -> None:
    peer = Peer(target)
    challenge = await _challenge(target)
    answer = await target.post_signed("/api/v1/session", _proof(peer, challenge), target.work_header(challenge))
    data = answer.ok()
    if data.get("peer") != peer.text or not isinstance(data.get("token"), str):
        raise Failed(f"the session answer names {data.get('peer')!r}, not the peer that signed")
    peer.token = data["token"]
    (await peer.call("GET", "/api/v1/mailbox")).ok()


@case("signin.bad_signature", ["R-13.4-3", "R-5.5-1"])
async def signin_bad_signature(target: Target) -> None:
    peer = Peer(target)
    challenge = await _challenge(target)
    raw = bytearray(_proof(peer, challenge))
    raw[40] ^= 0x01  # inside the signature
    answer = await target.post_signed("/api/v1/session", bytes(raw), target.work_header(challenge))
    answer.refused("signature.invalid")


@case("signin.wrong_node", ["R-13.4-3"])
async def signin_wrong_node(target: Target) -> None:
    peer = Peer(target)
    challenge = await _challenge(target)
    proof = _proof(peer, challenge, node="https://another-node.example")
    (await target.post_signed("/api/v1/session", proof, target.work_header(challenge))).refused("auth.invalid")


@case("signin.replayed_challenge", ["R-13.4-3"])
async def signin_replayed(target: Target) -> None:
    peer = Peer(target)
    challenge = await _challenge(target)
    work = target.work_header(challenge)
    (await target.post_signed("/api/v1/session", _proof(peer, challenge), work)).ok()
    again = await target.post_signed("/api/v1/session", _proof(peer, challenge), work)  # a new proof, same challenge
    again.refused("auth.invalid")


@case("signin.unknown_challenge", ["R-13.4-3"])
async def signin_unknown(target: Target) -> None:
    peer = Peer(target)
    proof = _proof(peer, {"challenge": "00" * 32})
    answer = await target.post_signed("/api/v1/session", proof, {"X-Peerfed-Work": "00"})
    if answer.code not in ("auth.invalid", "auth.work"):
        raise Failed(f"expected auth.invalid (or auth.work first), got {answer.status} {answer.short()}")


@case("signin.token_required", ["R-13.4-5"])
async def signin_token_required(target: Target) -> None:
    headers = {"Authorization": "Bearer " + "ab" * 32}
    (await target.call("GET", "/api/v1/mailbox", headers=headers)).refused("auth.required")


@case("refusal.truncated_msgpack", ["R-2.3-1", "R-5.5-1"])
async def refusal_truncated(target: Target) -> None:
    peer = await target.member(0)
    payload = peer.listing().raw[97:]  # framing version, author and signature come first (§5.1)
    (await peer.publish(peer.frame(payload[:-3]))).refused("encoding.malformed")  # signed, then cut short


@case("refusal.non_canonical", ["R-2-1", "R-5.5-1"])
async def refusal_non_canonical(target: Target) -> None:
    peer = await target.member(0)
    payload = peer.listing().raw[97:]
    # the payload's array header 0x94 (fixarray of 4) written as array 16: the same value, not canonical
    assert payload[0] == 0x94
    (await peer.publish(peer.frame(b"\xdc\x00\x04" + payload[1:]))).refused("encoding.non_canonical")


@case("refusal.too_short", ["R-5.5-1"])
async def refusal_too_short(target: Target) -> None:
    peer = await target.member(0)
    (await peer.publish(b"\x01" + b"\x00" * 96)).refused("encoding.malformed")


@case("refusal.bad_signature", ["R-5.5-1"])
async def refusal_bad_signature(target: Target) -> None:
    peer = await target.member(0)
    raw = bytearray(peer.listing().raw)
    raw[-1] ^= 0x01  # the payload changes under the signature
    (await peer.publish(bytes(raw))).refused("signature.invalid")


@case("refusal.expired", ["R-5.3-3", "R-5.5-1"])
async def refusal_expired(target: Target) -> None:
    peer = await target.member(0)
    env = peer.listing(life=86_400, created_at=target.now() - 10 * 86_400)  # expired nine days ago
    (await peer.publish(env.raw)).refused("time.expired")


@case("refusal.unknown_version", ["R-5.5-1"])
async def refusal_unknown_version(target: Target) -> None:
    peer = await target.member(0)
    raw = bytearray(peer.listing().raw)
    raw[0] = 0x7F  # a framing version no one speaks
    answer = await peer.publish(bytes(raw))
    answer.refused("version.unsupported")


async def _move(peer: Peer, to: str, statement: bytes) -> Answer:
    return await peer.call("POST", "/api/v1/move", json={"to": to, "statement": b64(statement)})


@case("move.statement_checks", ["R-13.5-22"])
async def move_statement_checks(target: Target) -> None:
    peer = await target.member(2)
    elsewhere = "https://another-node.example"
    stranger = Peer(target)
    challenge = await _challenge(target)
    checks: list[tuple[str, bytes, str]] = [
        ("another peer's statement", stranger.signed(Move(target.url, elsewhere), life=300).raw, "auth.forbidden"),
        (
            "a statement from another node",
            peer.signed(Move("https://third.example", elsewhere), life=300).raw,
            "auth.invalid",
        ),
        ("a sign-in proof", _proof(peer, challenge), "auth.invalid"),
        (
            "a move to a node it does not federate with",
            peer.signed(Move(target.url, elsewhere), life=300).raw,
            "federation.refused",
        ),
    ]
    for what, statement, code in checks:
        answer = await _move(peer, elsewhere, statement)
        if answer.code != code:
            raise Failed(f"{what} was answered {answer.status} {answer.short()}, not {code}")
    (await peer.call("GET", "/api/v1/mailbox")).ok()  # still a member here


async def _session(target: Target, peer: Peer, device: str, *, take_over: bool = False) -> Answer:
    """A sign-in of ``peer`` from ``device`` (spec §13.4, One device at a time)."""
    challenge = await _challenge(target)
    headers = {**target.work_header(challenge), "X-Peerfed-Device": device}
    if take_over:
        headers["X-Peerfed-Take-Over"] = "1"
    return await target.post_signed("/api/v1/session", _proof(peer, challenge), headers)


@case("signin.other_device", ["R-13.4-8", "R-13.4-9"])
async def signin_other_device(target: Target) -> None:
    peer, first, other = Peer(target), os.urandom(16).hex(), os.urandom(16).hex()
    old = Peer(target)
    old.identity, old.token = peer.identity, (await _session(target, peer, first)).ok()["token"]
    refused = await _session(target, peer, other)
    refused.refused("auth.moved")
    (await old.call("GET", "/api/v1/mailbox")).ok()  # a refused device supersedes nothing
    peer.token = (await _session(target, peer, other, take_over=True)).ok()["token"]
    (await peer.call("GET", "/api/v1/mailbox")).ok()
    (await old.call("GET", "/api/v1/mailbox")).refused("auth.moved")  # the first device's session is superseded
