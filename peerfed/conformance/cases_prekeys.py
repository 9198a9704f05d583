"""Conformance cases for one-time pre-keys on the home node: upload, claim once, limits (spec §13.5, §14.1).

Every case uses peers of its own, so the stocks and per-target limits it meets are its own; the
limits are read from the node's document (§13.2), with the spec's defaults when it names none.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from peerfed.protocol import EncryptionSecret, Move, PreKeys

from .suite import Failed, case
from .target import OCTETS, Answer, Peer, Target

__all__: list[str] = []

LIFE = 300  # an upload's lifetime, within the 600 s a prekeys object may live


def _keys(count: int) -> list[bytes]:
    return [bytes(EncryptionSecret(os.urandom(32)).public) for _ in range(count)]


async def _upload(peer: Peer, keys: list[bytes], node: str | None = None) -> Answer:
    signed = peer.signed(PreKeys(node or peer.target.url, tuple(keys)), life=LIFE)
    return await peer.call("POST", "/api/v1/prekeys", data=signed.raw, headers=OCTETS)


async def _claim(claimant: Peer, owner: Peer) -> bytes | None:
    data = (await claimant.call("POST", "/api/v1/prekeys/claim", json={"peer": owner.text})).ok()
    if not isinstance(data, dict) or "prekey" not in data:
        raise Failed(f'a claim answered {data}, not {{"prekey": ...}}')
    if data["prekey"] is None:
        return None
    try:
        return base64.b64decode(data["prekey"], validate=True)
    except (TypeError, ValueError) as exc:
        raise Failed(f"a claimed pre-key is not base64: {data['prekey']!r}") from exc


async def _stock(peer: Peer) -> Any:
    data = (await peer.call("GET", "/api/v1/prekeys")).ok()
    if not isinstance(data, dict) or not isinstance(data.get("stock"), int):
        raise Failed(f'GET /prekeys answered {data}, not {{"stock": N, ...}}')
    return data["stock"]


async def _limit(target: Target, name: str, default: int) -> int:
    return dict((await target.opened_document()).limits).get(name, default)


@case("prekeys.claimed_once", ["R-13.5-26", "R-13.5-27"])
async def claimed_once(target: Target) -> None:
    owner, claimant = await target.peer(), await target.peer()
    keys = _keys(3)
    (await _upload(owner, keys)).ok()
    handed = [await _claim(claimant, owner) for _ in range(4)]
    if sorted(k for k in handed[:3] if k is not None) != sorted(keys) or handed[3] is not None:
        raise Failed("three uploaded keys were not handed out once each, then null")
    if await _stock(owner) != 0:
        raise Failed("the stock is not empty once every key was claimed")
    if await _claim(claimant, Peer(target)) is not None:
        raise Failed("a claim for a peer that is not a member handed out a key")


@case("prekeys.upload_checks", ["R-13.5-24"])
async def upload_checks(target: Target) -> None:
    owner, other = await target.peer(), await target.peer()
    foreign = other.signed(PreKeys(target.url, tuple(_keys(1))), life=LIFE)
    (await owner.call("POST", "/api/v1/prekeys", data=foreign.raw, headers=OCTETS)).refused("auth.forbidden")
    (await _upload(owner, _keys(1), node="https://elsewhere.example")).refused("auth.invalid")
    move = owner.signed(Move(target.url, "https://elsewhere.example"), life=LIFE)
    (await owner.call("POST", "/api/v1/prekeys", data=move.raw, headers=OCTETS)).refused("auth.invalid")
    (await _upload(owner, [bytes(32)])).refused("schema.invalid")
    first = owner.signed(PreKeys(target.url, tuple(_keys(2))), life=LIFE)
    (await owner.call("POST", "/api/v1/prekeys", data=first.raw, headers=OCTETS)).ok()
    (await owner.call("POST", "/api/v1/prekeys", data=first.raw, headers=OCTETS)).refused("auth.replayed")


@case("prekeys.cap", ["R-13.5-25"])
async def cap(target: Target) -> None:
    owner = await target.peer()
    most = await _limit(target, "prekeys-per-peer", 100)
    (await _upload(owner, _keys(min(most, 100)))).ok()
    for _ in range(most // 100):  # a cap above one upload's 100 keys: fill it
        missing = most - await _stock(owner)
        if missing > 0:
            (await _upload(owner, _keys(min(missing, 100)))).ok()
    (await _upload(owner, _keys(1))).refused("prekeys.full")
    if await _stock(owner) != most:
        raise Failed("a refused upload changed the stock")


@case("prekeys.not_drained", ["R-13.5-27", "R-13.5-28"])
async def not_drained(target: Target) -> None:
    owner, stranger = await target.peer(), await target.peer()
    per_target = await _limit(target, "prekey-claims-per-peer", 20)
    (await _upload(owner, _keys(per_target + 5))).ok()
    handed = [await _claim(stranger, owner) for _ in range(per_target + 1)]
    if None in handed[:per_target] or handed[per_target] is not None:
        raise Failed(f"a stranger's claims past {per_target} in an hour were not answered null")
    if await _stock(owner) != 5:
        raise Failed("claims past the per-target limit took keys out of the stock")
