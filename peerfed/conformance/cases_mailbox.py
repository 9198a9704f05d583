"""Conformance cases for mailboxes: sending a sealed item, reading, acknowledging, live delivery (spec §13.5, §7).

The suite plays both peers: one seals a message to the other, hands it in with ``send``, and the
other reads it from its mailbox over HTTP or the live WebSocket and acknowledges it.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import aiohttp

from peerfed.protocol import Message, Sealed, seal
from peerfed.protocol.work import solve_work

from .suite import Failed, case
from .target import DAY, OCTETS, Answer, Peer, Target

__all__: list[str] = []

LIVE_FRAMES = 20  # frames read while waiting for one item: bounded, a silent node fails the case
LIVE_SOCKETS = 64  # live connections one case opens at most
QUOTA_SENDS = 1000  # items one case sends into one mailbox at most


def sealed_to(sender: Peer, recipient: Peer, text: str = "hello") -> Sealed:
    inner = sender.signed(Message(recipient.identity.peer_id, os.urandom(16), 1, text), life=3 * DAY)
    return seal(inner, recipient.secret.public)


async def work_bits(target: Target) -> int:
    return (await target.opened_document()).limit("first-contact-work-bits", 16) or 0


async def send(sender: Peer, sealed: Sealed, bits: int, *, prove: bool = True) -> Answer:
    headers = dict(OCTETS)
    if prove and bits > 0:
        headers["X-Peerfed-Work"] = solve_work(sealed.id, bits).hex()
    return await sender.call("POST", "/api/v1/send", data=sealed.raw, headers=headers)


async def mailbox(peer: Peer) -> list[dict[str, Any]]:
    data = (await peer.call("GET", "/api/v1/mailbox", params={"after": 0, "limit": 100})).ok()
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise Failed('a mailbox answer is {"items": [...], "next": ...}')
    items: list[dict[str, Any]] = data["items"]
    return items


async def held(peer: Peer) -> list[str]:
    """The ids of the items waiting in ``peer``'s mailbox."""
    return [str(item.get("id")) for item in await mailbox(peer)]


@case("mailbox.deliver_and_ack", ["R-13.5-9"])
async def deliver_and_ack(target: Target) -> None:
    alice, ben = await target.member(0), await target.member(1)
    sealed = sealed_to(alice, ben)
    answer = (await send(alice, sealed, await work_bits(target))).ok(202)
    if answer.get("id") != sealed.id.hex() or answer.get("status") != "delivered":
        raise Failed(f"send answered {answer}, not delivered with the sealed id")
    items = [item for item in await mailbox(ben) if item.get("id") == sealed.id.hex()]
    if len(items) != 1:
        raise Failed(f"the mailbox holds the item sent {len(items)} times, not once")
    if base64.b64decode(items[0].get("sealed", "")) != sealed.raw:
        raise Failed("the mailbox item's bytes are not the sealed bytes sent")
    deleted = (await ben.call("POST", "/api/v1/mailbox/ack", json={"ids": [sealed.id.hex()]})).ok()
    if deleted.get("deleted") != 1:
        raise Failed(f"ack answered {deleted}")
    if sealed.id.hex() in await held(ben):
        raise Failed("the acknowledged item is still in the mailbox")


@case("mailbox.duplicate", ["R-13.5-8"])
async def duplicate(target: Target) -> None:
    alice, ben = await target.member(0), await target.member(1)
    sealed = sealed_to(alice, ben)
    bits = await work_bits(target)
    (await send(alice, sealed, bits)).ok(202)
    again = (await send(alice, sealed, bits)).ok(202)
    if again.get("status") != "duplicate":
        raise Failed(f"the same sealed bytes again were answered {again}")
    if (await held(ben)).count(sealed.id.hex()) != 1:
        raise Failed("the same sealed bytes were stored twice")
    await ben.call("POST", "/api/v1/mailbox/ack", json={"ids": [sealed.id.hex()]})


@case("mailbox.first_contact_work", ["R-13.5-13"])
async def first_contact_work(target: Target) -> None:
    bits = await work_bits(target)
    if bits == 0:
        return  # the node asks no proof of work: nothing to refuse
    # members 1 and 2 have not written to each other yet: this is a first contact
    ben, carol = await target.member(1), await target.member(2)
    sealed = sealed_to(ben, carol)
    (await send(ben, sealed, bits, prove=False)).refused("auth.work")
    if sealed.id.hex() in await held(carol):
        raise Failed("an item refused for its missing proof of work was stored")


@case("mailbox.own_only", ["R-13.5-9"])
async def own_only(target: Target) -> None:
    alice, ben, carol = await target.member(0), await target.member(1), await target.member(2)
    sealed = sealed_to(alice, ben)
    (await send(alice, sealed, await work_bits(target))).ok(202)
    if sealed.id.hex() in await held(carol):
        raise Failed("another peer's mailbox shows the item")
    (await carol.call("POST", "/api/v1/mailbox/ack", json={"ids": [sealed.id.hex()]})).ok()
    if sealed.id.hex() not in await held(ben):
        raise Failed("another peer's ack deleted the item")
    await ben.call("POST", "/api/v1/mailbox/ack", json={"ids": [sealed.id.hex()]})


@case("mailbox.limit_range", ["R-13.1-7"])
async def limit_range(target: Target) -> None:
    peer = await target.member(0)
    for limit in (0, 501):  # the page is 1 … 500
        (await peer.call("GET", "/api/v1/mailbox", params={"limit": limit})).refused("request.invalid")


@case("send.bad_sealed", ["R-7.3-1"])
async def bad_sealed(target: Target) -> None:
    alice, ben = await target.member(0), await target.member(1)
    sealed = sealed_to(alice, ben)
    answer = await alice.call("POST", "/api/v1/send", data=sealed.raw[:-5], headers=OCTETS)
    if answer.status != 400 or not (answer.code or "").startswith(("encoding.", "schema.")):
        raise Failed(f"a truncated sealed message was answered {answer.status} {answer.short()}")


async def _next_frame(ws: aiohttp.ClientWebSocketResponse, kind: str, item: str | None = None) -> dict[str, Any]:
    """The next frame of ``kind`` (an item: the one with id ``item``); earlier items are passed over."""
    for _ in range(LIVE_FRAMES):
        frame = await ws.receive_json(timeout=10)
        if frame.get("type") == kind and (item is None or frame.get("id") == item):
            return frame  # type: ignore[no-any-return]
        if frame.get("type") == "error":
            raise Failed(f"the live socket sent an error: {frame}")
    raise Failed(f"no {kind} frame among {LIVE_FRAMES}")


@case("live.delivery", ["R-13.5-19"])
async def live_delivery(target: Target) -> None:
    alice, ben = await target.member(0), await target.member(1)
    ws_url = target.url.replace("http", "ws", 1) + "/api/v1/live"
    async with target.session.ws_connect(ws_url) as ws:
        await ws.send_json({"type": "auth", "token": ben.token, "after": 0})
        await _next_frame(ws, "ready")
        sealed = sealed_to(alice, ben, "live")
        (await send(alice, sealed, await work_bits(target))).ok(202)
        item = await _next_frame(ws, "item", sealed.id.hex())
        if base64.b64decode(item.get("sealed", "")) != sealed.raw:
            raise Failed("the live item is not the sealed message sent")
        await ws.send_json({"type": "ack", "ids": [sealed.id.hex()]})
        acked = await _next_frame(ws, "acked")
        if acked.get("deleted") != 1:
            raise Failed(f"a live ack was answered {acked}")
    if sealed.id.hex() in await held(ben):
        raise Failed("the item acknowledged live is still in the mailbox")


@case("live.bad_token", ["R-13.4-5", "R-13.5-19"])
async def live_bad_token(target: Target) -> None:
    ws_url = target.url.replace("http", "ws", 1) + "/api/v1/live"
    async with target.session.ws_connect(ws_url) as ws:
        await ws.send_json({"type": "auth", "token": "ab" * 32, "after": 0})
        for _ in range(LIVE_FRAMES):
            message = await ws.receive(timeout=10)
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                return
            if message.type is aiohttp.WSMsgType.TEXT:
                frame = message.json()
                if frame.get("type") == "ready":
                    raise Failed("an unknown token was answered ready")
                if frame.get("type") == "error" and frame.get("code") == "auth.required":
                    return
        raise Failed("an unknown token got neither auth.required nor a close")


@case("send.no_route", ["R-13.5-7"])
async def no_route(target: Target) -> None:
    alice = await target.member(0)
    nobody = Peer(target)  # a key no node has heard of, so no bundle says where it lives
    (await send(alice, sealed_to(alice, nobody), await work_bits(target))).refused("not_found")


@case("live.auth_grace", ["R-13.5-20"])
async def live_auth_grace(target: Target) -> None:
    grace = (await target.opened_document()).limit("live-auth-grace", 10) or 10
    if grace > 60:
        raise Failed(f"live-auth-grace is {grace} s; the suite waits at most 60")
    ws_url = target.url.replace("http", "ws", 1) + "/api/v1/live"
    async with target.session.ws_connect(ws_url) as ws:
        # never authenticates: the node must close it with 1008 once its grace is over
        message = await ws.receive(timeout=grace + 15)
        if message.type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            raise Failed(f"an unauthenticated socket got {message.type.name} instead of a close")
        if ws.close_code != 1008:
            raise Failed(f"an unauthenticated socket was closed with {ws.close_code}, not 1008")


@case("mailbox.sender_quota", ["R-13.5-12"])
async def sender_quota(target: Target) -> None:
    quota = (await target.opened_document()).limit("mailbox-items-per-sender", 120) or 0
    if not 0 < quota <= QUOTA_SENDS:
        raise Failed(f"mailbox-items-per-sender is {quota}: it MUST bound (the suite sends at most {QUOTA_SENDS})")
    carol, ben = await target.member(2), await target.member(1)  # no other case has carol write to ben
    bits, sent = await work_bits(target), list[str]()
    try:
        for n in range(quota):
            sealed = sealed_to(carol, ben, f"within the quota {n}")
            (await send(carol, sealed, bits, prove=n == 0)).ok(202)
            sent.append(sealed.id.hex())
        # one source, one mailbox, one hour: the item past the published count is refused
        (await send(carol, sealed_to(carol, ben, "one too many"), bits)).refused("rate.limited")
    finally:
        for start in range(0, len(sent), 1000):  # leave ben's mailbox as the other cases expect it
            await ben.call("POST", "/api/v1/mailbox/ack", json={"ids": sent[start : start + 1000]})


@case("live.per_address", ["R-13.5-21", "R-13.8-1"])
async def live_per_address(target: Target) -> None:
    cap = (await target.opened_document()).limit("live-per-address", 20) or 20
    if cap > LIVE_SOCKETS:
        raise Failed(f"live-per-address is {cap}; the suite opens at most {LIVE_SOCKETS}")
    ws_url = target.url.replace("http", "ws", 1) + "/api/v1/live"
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    try:
        for n in range(cap + 1):
            # Each socket claims another address in both forwarding headers: the suite is no trusted
            # proxy, so a node that believed them would count each socket apart and never refuse.
            fake = f"203.0.113.{n + 1}"
            headers = {"X-Forwarded-For": fake, "Forwarded": f"for={fake}"}
            try:
                sockets.append(await target.session.ws_connect(ws_url, headers=headers))
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status != 429:
                    raise Failed(f"an upgrade past live-per-address was answered {exc.status}, not 429") from exc
                return  # refused at or before the cap (sockets of earlier cases may still count)
        raise Failed(f"{cap + 1} live connections from one address were all taken (live-per-address is {cap})")
    finally:
        for ws in sockets:
            await ws.close()
