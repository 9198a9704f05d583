"""Conformance cases for publishing, searching and withdrawing listings (spec §13.5, §13.6, §6).

Each case publishes under a topic of its own, so what it finds is only what it published, on a
node that may hold any number of other listings.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from peerfed.protocol import KeyBundle, Withdrawal

from .suite import Failed, case
from .target import DAY, OCTETS, Peer, Target

__all__: list[str] = []


def _topic() -> str:
    return "conformance " + os.urandom(4).hex()


async def _search(peer: Peer, **params: Any) -> Any:
    data = (await peer.call("GET", "/api/v1/directory", params=params)).ok()
    if not isinstance(data, dict) or not isinstance(data.get("listings"), list) or "next" not in data:
        raise Failed('a directory answer is {"listings": [...], "next": ...}')
    return data


async def _publish_three(target: Target) -> tuple[Peer, str, list[str]]:
    """Three listings under one fresh topic, oldest first (one second apart in their signed time)."""
    peer = await target.member(0)
    topic = _topic()
    ids = []
    for step in range(3):
        env = peer.listing(f"listing {step}", topics=(topic,), created_at=target.now() - 30 + step)
        data = (await peer.publish(env.raw)).ok(201)
        if data.get("id") != env.id.hex() or data.get("type") != "listing":
            raise Failed(f"the publish answer is {data}, not the listing's id and type")
        ids.append(env.id.hex())
    return peer, topic, ids


@case("directory.publish_and_find", ["R-13.5-4"])
async def publish_and_find(target: Target) -> None:
    peer, topic, ids = await _publish_three(target)
    found = (await _search(peer, topic=topic))["listings"]
    if {item.get("id") for item in found} != set(ids):
        raise Failed(f"searching its topic found {len(found)} listings, not the 3 published")
    for item in found:
        if item.get("author") != peer.text or not isinstance(item.get("listing"), str):
            raise Failed("a result lacks its author or its signed listing")


@case("directory.topic_case_insensitive", ["R-13.5-4"])
async def topic_case(target: Target) -> None:
    peer, topic, _ = await _publish_three(target)
    found = (await _search(peer, topic=topic.upper()))["listings"]
    if len(found) != 3:
        raise Failed(f"the topic in capitals found {len(found)} of 3 listings")


@case("directory.newest_first", ["R-13.5-4"])
async def newest_first(target: Target) -> None:
    peer, topic, ids = await _publish_three(target)
    found = [item["id"] for item in (await _search(peer, topic=topic))["listings"]]
    if found != list(reversed(ids)):
        raise Failed("results are not newest first")


@case("directory.paging", ["R-13.5-4"])
async def paging(target: Target) -> None:
    peer, topic, ids = await _publish_three(target)
    seen: list[str] = []
    before: Any = None
    for _ in range(5):
        params: dict[str, Any] = {"topic": topic, "limit": 2}
        if before is not None:
            params["before"] = before
        page = await _search(peer, **params)
        if len(page["listings"]) > 2:
            raise Failed(f"limit=2 gave {len(page['listings'])} results")
        seen += [item["id"] for item in page["listings"]]
        before = page["next"]
        if before is None:
            break
    if seen != list(reversed(ids)):
        raise Failed(f"paging by 2 gave {len(seen)} listings in order {seen == sorted(seen)}, not the 3, newest first")


@case("directory.limit_range", ["R-13.1-7"])
async def limit_range(target: Target) -> None:
    peer = await target.member(0)
    for limit in (0, 101, -1):
        answer = await peer.call("GET", "/api/v1/directory", params={"limit": limit})
        answer.refused("request.invalid")
    (await peer.call("GET", "/api/v1/directory", params={"limit": 100})).ok()
    (await peer.call("GET", "/api/v1/directory", params={"limit": 1})).ok()


@case("directory.needs_session", ["R-13.4-5"])
async def needs_session(target: Target) -> None:
    (await target.call("GET", "/api/v1/directory")).refused("auth.required")


@case("listing.other_author", ["R-13.5-3"])
async def other_author(target: Target) -> None:
    peer = await target.member(0)
    stranger = Peer(target)
    (await peer.publish(stranger.listing().raw)).refused("auth.forbidden")


@case("listing.lifetime", ["R-13.5-2"])
async def lifetime(target: Target) -> None:
    longest = (await target.opened_document()).max_listing_lifetime
    if longest >= 90 * 86_400:
        return  # no listing can outlive it: nothing to refuse
    peer = await target.member(0)
    (await peer.publish(peer.listing(life=longest + 1).raw)).refused("time.lifetime")


@case("listing.fetch", ["R-13.1-5"])
async def listing_fetch(target: Target) -> None:
    peer = await target.member(0)
    env = peer.listing(topics=(_topic(),))
    (await peer.publish(env.raw)).ok(201)
    data = (await peer.call("GET", f"/api/v1/listings/{env.id.hex()}")).ok()
    if data.get("origin") != target.url:
        raise Failed(f"origin is {data.get('origin')!r}")
    (await peer.call("GET", f"/api/v1/listings/{'00' * 32}")).refused("not_found")


@case("withdrawal.removes", ["R-13.6-1"])
async def withdrawal_removes(target: Target) -> None:
    peer = await target.member(0)
    topic = _topic()
    env = peer.listing(topics=(topic,))
    (await peer.publish(env.raw)).ok(201)
    answer = (await peer.publish(peer.signed(Withdrawal(env.id)).raw)).ok(201)
    if answer.get("type") != "withdrawal":
        raise Failed(f"the withdrawal was answered {answer}")
    if (await _search(peer, topic=topic))["listings"]:
        raise Failed("the withdrawn listing is still found")
    (await peer.call("GET", f"/api/v1/listings/{env.id.hex()}")).refused("gone")
    (await peer.publish(env.raw)).refused("gone")  # the tombstone refuses it coming back


@case("withdrawal.other_author", ["R-6.3-1"])
async def withdrawal_other(target: Target) -> None:
    author = await target.member(0)
    other = await target.member(1)
    env = author.listing(topics=(_topic(),))
    (await author.publish(env.raw)).ok(201)
    (await other.publish(other.signed(Withdrawal(env.id)).raw)).refused("auth.forbidden")
    (await author.call("GET", f"/api/v1/listings/{env.id.hex()}")).ok()


@case("directory.filters", ["R-13.5-4"])
async def filters(target: Target) -> None:
    peer = await target.member(0)
    topic = _topic()
    offer = peer.listing(topics=(topic,), kind="offer", languages=("es-MX",))
    request = peer.listing(topics=(topic,), kind="request", languages=("en",))
    for env in (offer, request):
        (await peer.publish(env.raw)).ok(201)
    cases: list[tuple[dict[str, str], str]] = [
        ({"kind": "request"}, request.id.hex()),
        ({"lang": "es"}, offer.id.hex()),  # a primary subtag finds its regional tags
        ({"lang": "ES-mx"}, offer.id.hex()),
    ]
    for params, want in cases:
        found = [item["id"] for item in (await _search(peer, topic=topic, **params))["listings"]]
        if found != [want]:
            raise Failed(f"searching {params} found {len(found)} listings, not the one it names")


@case("query.repeated", ["R-13.1-6"])
async def repeated(target: Target) -> None:
    peer = await target.member(0)
    answer = await peer.call("GET", "/api/v1/directory?limit=5&limit=6")
    answer.refused("request.invalid")


@case("keys.lookup", ["R-13.5-10"])
async def keys_lookup(target: Target) -> None:
    peer, reader = await target.member(0), await target.member(1)
    data = (await reader.call("GET", f"/api/v1/keys/{peer.text}")).ok()
    if not isinstance(data, dict) or data.get("home") != target.url or not isinstance(data.get("key_bundle"), str):
        raise Failed(f'GET /keys answered {data}, not {{"key_bundle", "home": {target.url!r}}}')
    (await reader.call("GET", f"/api/v1/keys/{Peer(target).text}")).refused("not_found")


@case("keys.other_author", ["R-13.5-3"])
async def keys_other_author(target: Target) -> None:
    peer = await target.member(0)
    (await peer.call("PUT", "/api/v1/keys", data=Peer(target).bundle().raw, headers=OCTETS)).refused("auth.forbidden")


@case("listing.needs_bundle", ["R-13.5-1"])
async def needs_bundle(target: Target) -> None:
    peer = Peer(target)
    await peer.join(publish_bundle=False)
    (await peer.publish(peer.listing().raw)).refused("request.invalid")


@case("keys.newest", ["R-4.3-1", "R-13.5-10"])
async def keys_newest(target: Target) -> None:
    carol, reader = await target.member(2), await target.member(1)  # carol's key is never sealed to
    now = target.now() + 60  # later than the bundle carol published on joining, within the 300 s of §5.3

    def bundle(created: int, life: int, name: str) -> bytes:
        return carol.signed(
            KeyBundle(carol.secret.public, home=target.url, pseudonym=name), life, created_at=created
        ).raw

    async def served() -> bytes:
        data = (await reader.call("GET", f"/api/v1/keys/{carol.text}")).ok()
        return base64.b64decode(data.get("key_bundle") or "")

    newest = bundle(now + 20, 10 * DAY, "newest")
    (await carol.call("PUT", "/api/v1/keys", data=newest, headers=OCTETS)).ok()
    # Created earlier but living longer: not the newer of the two, whatever its expires_at (§4.3).
    await carol.call("PUT", "/api/v1/keys", data=bundle(now + 10, 300 * DAY, "older"), headers=OCTETS)
    if await served() != newest:
        raise Failed("a bundle created earlier replaced the newest one because it expires later")
    latest = bundle(now + 30, DAY, "latest")
    (await carol.call("PUT", "/api/v1/keys", data=latest, headers=OCTETS)).ok()
    if await served() != latest:
        raise Failed("the bundle created last is not the one served")
