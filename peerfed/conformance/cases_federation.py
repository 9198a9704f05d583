"""Conformance cases for the federation API, the suite playing a second node (spec §13.3, §13.7, §13.6).

The suite's own node (``second.SecondNode``) follows the node under test from a loopback port,
then signs requests to it: good ones, and ones spoiled in one part each. The node under test
must be able to fetch that node's document over plain http on loopback (README, "Checking
another implementation").
"""

from __future__ import annotations

import base64
import os
from typing import Any

from peerfed.protocol import Erasure, Identity, KeyBundle, Move, Withdrawal, pack
from peerfed.protocol.node_bodies import erased_hash
from peerfed.protocol.work import solve_work

from .cases_mailbox import held, sealed_to, send, work_bits
from .second import SecondNode
from .suite import Failed, case
from .target import DAY, Peer, Target

__all__: list[str] = []

PULL = "/federation/v1/listings?after=0&limit=100"
PAGES = 50  # catch-up pages read while looking for one listing: bounded


async def federated(target: Target) -> SecondNode:
    """The suite's second node, started and followed by the node under test (once per run)."""
    if target.second is None:
        target.second = await SecondNode(target).start()
        try:
            target.second.followed = await target.second.follow()
        except Failed as exc:
            target.second.followed = str(exc)
    second: SecondNode = target.second
    if second.followed != "active":
        raise Failed(f"the follow was answered {second.followed!r}; the node must federate with open policy")
    return second


class RemotePeer(Peer):
    """A peer whose home is the suite's second node."""

    def __init__(self, target: Target, home: str) -> None:
        super().__init__(target)
        self.home = home

    def remote_bundle(self) -> bytes:
        body = KeyBundle(self.secret.public, home=self.home, pseudonym="remote")
        return self.signed(body, life=30 * DAY).raw


async def batch(second: SecondNode, *items: list[Any]) -> list[dict[str, Any]]:
    data = (await second.call("POST", "/federation/v1/batch", pack(list(items)))).ok()
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list) or len(results) != len(items):
        raise Failed(f"a batch of {len(items)} items was answered {data}")
    return results


def statuses(results: list[dict[str, Any]]) -> list[str]:
    return [str(r.get("code") if r.get("status") == "error" else r.get("status")) for r in results]


@case("federation.follow", ["R-13.3-2", "R-13.7-1"])
async def follow(target: Target) -> None:
    await federated(target)


@case("federation.unsigned", ["R-13.3-1"])
async def unsigned(target: Target) -> None:
    await federated(target)
    (await target.call("GET", PULL)).refused("auth.required")
    (await target.call("GET", PULL, headers={"Authorization": "peerfed-node abc"})).refused("auth.required")
    (await target.call("GET", PULL, headers={"Authorization": "Peerfed-Node !!not-base64"})).refused("auth.invalid")


@case("federation.pull_signed", ["R-13.3-1", "R-13.7-7"])
async def pull_signed(target: Target) -> None:
    second = await federated(target)
    data = (await second.call("GET", PULL)).ok()
    if not isinstance(data, dict) or not isinstance(data.get("items"), list) or "next" not in data:
        raise Failed('a catch-up page is {"items": [...], "next": ...}')


@case("federation.bad_signature", ["R-13.3-1", "R-5.5-1"])
async def bad_signature(target: Target) -> None:
    second = await federated(target)
    header = second.header("GET", PULL)
    raw = bytearray(base64.b64decode(header.split(" ", 1)[1]))
    raw[40] ^= 0x01
    spoiled = "Peerfed-Node " + base64.b64encode(bytes(raw)).decode("ascii")
    (await second.call("GET", PULL, header=spoiled)).refused("signature.invalid")


@case("federation.replay", ["R-13.3-1"])
async def replay(target: Target) -> None:
    second = await federated(target)
    header = second.header("GET", PULL)
    (await second.call("GET", PULL, header=header)).ok()
    (await second.call("GET", PULL, header=header)).refused("auth.replayed")


@case("federation.time_window", ["R-13.3-1"])
async def time_window(target: Target) -> None:
    second = await federated(target)
    now = target.now()
    (await second.call("GET", PULL, created_at=now - 400, life=600)).refused("time.expired")
    (await second.call("GET", PULL, created_at=now + 400)).refused("time.future")
    (await second.call("GET", PULL, created_at=now - 700, life=600)).refused("time.expired")


@case("federation.request_binding", ["R-13.3-1"])
async def request_binding(target: Target) -> None:
    second = await federated(target)
    (await second.call("GET", PULL, destination="https://another-node.example")).refused("auth.invalid")
    header = second.header("GET", "/federation/v1/listings?after=5&limit=100")
    (await second.call("GET", PULL, header=header)).refused("auth.invalid")
    (await second.call("POST", "/federation/v1/batch", pack([]), hashed=b"other")).refused("auth.invalid")


@case("federation.stranger", ["R-13.3-2", "R-13.7-1", "R-13.7-5"])
async def stranger(target: Target) -> None:
    second = await federated(target)
    # a node the target never federated with: refused before anything is fetched
    stranger_url = "http://127.0.0.1:9"
    (await second.call("GET", PULL, origin=stranger_url)).refused("federation.refused")
    items = pack([["listing", RemotePeer(target, stranger_url).listing().raw]])
    (await second.call("POST", "/federation/v1/batch", items, origin=stranger_url)).refused("federation.refused")


@case("federation.foreign_key", ["R-13.3-2", "R-13.3-3"])
async def foreign_key(target: Target) -> None:
    second = await federated(target)
    answer = await second.call("GET", PULL, identity=Identity(os.urandom(32)))
    if answer.code not in ("auth.invalid", "node.unavailable"):  # unavailable: a re-fetch was throttled
        raise Failed(f"a key the origin's document does not list was answered {answer.status} {answer.short()}")


@case("federation.batch_idempotent", ["R-13.7-4"])
async def batch_idempotent(target: Target) -> None:
    second = await federated(target)
    remote = RemotePeer(target, second.url)
    listing = remote.listing(topics=("conformance " + os.urandom(4).hex(),))
    items = [["key-bundle", remote.remote_bundle()], ["listing", listing.raw]]
    if statuses(await batch(second, *items)) != ["ok", "ok"]:
        raise Failed("a fresh bundle and listing from their home node were not both ok")
    again = statuses(await batch(second, *items))
    if again[1] != "duplicate" or again[0] not in ("ok", "duplicate"):
        raise Failed(f"the same batch again was answered {again}, not duplicate")
    reader = await target.member(0)
    data = (await reader.call("GET", f"/api/v1/listings/{listing.id.hex()}")).ok()
    if data.get("origin") != second.url:
        raise Failed(f"the pushed listing's origin is {data.get('origin')!r}, not the pushing node")


@case("federation.not_home", ["R-13.7-6"])
async def not_home(target: Target) -> None:
    second = await federated(target)
    remote = RemotePeer(target, "https://another-node.example")
    if statuses(await batch(second, ["key-bundle", remote.remote_bundle()])) != ["federation.not_home"]:
        raise Failed("a key bundle naming another home was not refused federation.not_home")


@case("federation.sealed_delivery", ["R-13.7-4", "R-13.5-9"])
async def sealed_delivery(target: Target) -> None:
    second = await federated(target)
    remote, reader = RemotePeer(target, second.url), await target.member(0)
    sealed = sealed_to(remote, reader, "from afar")
    bits = await work_bits(target)
    item: list[Any] = ["sealed", sealed.raw] + ([solve_work(sealed.id, bits)] if bits else [])
    if statuses(await batch(second, item)) != ["ok"]:
        raise Failed("a sealed item for a member was not ok")
    if statuses(await batch(second, item)) != ["duplicate"]:
        raise Failed("the same sealed item again was not duplicate")
    if (await held(reader)).count(sealed.id.hex()) != 1:
        raise Failed("the pushed sealed item is not in the member's mailbox exactly once")
    await reader.call("POST", "/api/v1/mailbox/ack", json={"ids": [sealed.id.hex()]})


@case("federation.withdrawal", ["R-13.6-1", "R-13.7-6"])
async def pushed_withdrawal(target: Target) -> None:
    second = await federated(target)
    remote, reader = RemotePeer(target, second.url), await target.member(0)
    listing = remote.listing()
    await batch(second, ["key-bundle", remote.remote_bundle()], ["listing", listing.raw])
    withdrawal = remote.signed(Withdrawal(listing.id))
    if statuses(await batch(second, ["withdrawal", withdrawal.raw])) != ["ok"]:
        raise Failed("a withdrawal from the listing's home was not ok")
    (await reader.call("GET", f"/api/v1/listings/{listing.id.hex()}")).refused("gone")


@case("federation.keys_on_demand", ["R-13.7-9"])
async def keys_on_demand(target: Target) -> None:
    second = await federated(target)
    member = await target.member(0)
    data = (await second.call("GET", f"/federation/v1/keys/{member.text}")).ok()
    if not isinstance(data, dict) or not isinstance(data.get("key_bundle"), str):
        raise Failed(f"a member's bundle was answered {data}")
    (await second.call("GET", f"/federation/v1/keys/{Peer(target).text}")).refused("not_found")


@case("federation.batch_item_errors", ["R-13.7-3"])
async def batch_item_errors(target: Target) -> None:
    second = await federated(target)
    remote = RemotePeer(target, second.url)
    bundle = remote.remote_bundle()
    results = statuses(await batch(second, ["key-bundle", bundle, b"work"], ["no-such-kind", b"x"]))
    if results != ["request.invalid", "request.invalid"]:
        raise Failed(f"a bundle with a work element and an unknown kind were answered {results}")


@case("federation.erasure", ["R-13.6-2"])
async def pushed_erasure(target: Target) -> None:
    second = await federated(target)
    remote, reader = RemotePeer(target, second.url), await target.member(0)
    listing = remote.listing()
    await batch(second, ["key-bundle", remote.remote_bundle()], ["listing", listing.raw])
    if statuses(await batch(second, ["erasure", remote.signed(Erasure()).raw])) != ["ok"]:
        raise Failed("an erasure from a federated node was not ok")
    answer = await reader.call("GET", f"/api/v1/listings/{listing.id.hex()}")
    if answer.code not in ("gone", "not_found"):
        raise Failed(f"the erased author's listing was answered {answer.status} {answer.short()}")
    if statuses(await batch(second, ["listing", listing.raw])) != ["gone"]:
        raise Failed("the erased author's listing was taken again")


@case("move.to_federated_node", ["R-13.5-22"])
async def move_away(target: Target) -> None:
    second = await federated(target)
    peer = await target.peer()
    statement = peer.signed(Move(target.url, second.url), life=300).raw
    body = {"to": second.url, "statement": base64.b64encode(statement).decode("ascii")}
    answer = (await peer.call("POST", "/api/v1/move", json=body)).ok()
    if answer.get("status") != "moved":
        raise Failed(f"a move to a federated node was answered {answer}")
    (await peer.call("GET", "/api/v1/mailbox")).refused("auth.required")  # its sessions ended


@case("move.undo", ["R-13.5-23"])
async def move_undo(target: Target) -> None:
    second = await federated(target)
    peer, sender = await target.peer(), await target.member(0)
    statement = peer.signed(Move(target.url, second.url), life=300).raw
    body = {"to": second.url, "statement": base64.b64encode(statement).decode("ascii")}
    (await peer.call("POST", "/api/v1/move", json=body)).ok()
    peer.token = None
    await peer.join()  # a fresh proof at the old node undoes the move
    sealed = sealed_to(sender, peer, "after the move was undone")
    answer = (await send(sender, sealed, await work_bits(target))).ok(202)
    if answer.get("status") != "delivered":
        raise Failed(f"mail for a peer who signed in again was answered {answer.get('status')!r}, not delivered")
    if sealed.id.hex() not in await held(peer):
        raise Failed("mail for a peer who signed in again is not in its mailbox here")


async def _pull_until(second: SecondNode, want: str, field: str) -> dict[str, Any]:
    """Catch-up pages until one lists ``want`` in ``field``; raises Failed if none does."""
    after = withdrawn = erased = 0
    for _ in range(PAGES):
        path = f"/federation/v1/listings?after={after}&limit=100&withdrawn_after={withdrawn}&erased_after={erased}"
        page = (await second.call("GET", path)).ok()
        if want in str(page.get(field)):
            return page  # type: ignore[no-any-return]
        if not page.get("items") and not page.get("withdrawn") and not page.get("erased"):
            break
        after, withdrawn, erased = page["next"], page.get("withdrawn_next", 0), page.get("erased_next", 0)
    raise Failed(f"no catch-up page lists it in {field!r}")


@case("federation.catch_up", ["R-13.7-7"])
async def catch_up(target: Target) -> None:
    second = await federated(target)
    peer = await target.member(0)
    listing = peer.listing()
    (await peer.publish(listing.raw)).ok(201)
    await _pull_until(second, base64.b64encode(listing.raw).decode("ascii"), "items")
    (await peer.publish(peer.signed(Withdrawal(listing.id)).raw)).ok(201)
    await _pull_until(second, listing.id.hex(), "withdrawn")


@case("erasure.local", ["R-13.6-2"])
async def erasure(target: Target) -> None:
    second = await federated(target)
    peer = await target.peer()
    listing = peer.listing()
    (await peer.publish(listing.raw)).ok(201)
    answer = (await peer.call("POST", "/api/v1/erase", data=peer.signed(Erasure()).raw)).ok()
    if answer.get("status") != "erased" or answer.get("listings") != 1:
        raise Failed(f"erase answered {answer}")
    reader = await target.member(1)
    answer2 = await reader.call("GET", f"/api/v1/listings/{listing.id.hex()}")
    if answer2.code not in ("gone", "not_found"):
        raise Failed(f"the erased author's listing was answered {answer2.status} {answer2.short()}")
    (await reader.call("GET", f"/api/v1/keys/{peer.text}")).refused("not_found")
    hashed = base64.b64encode(erased_hash(bytes(peer.identity.peer_id))).decode("ascii")
    await _pull_until(second, hashed, "erased")


@case("erasure.final", ["R-13.6-3"])
async def erasure_final(target: Target) -> None:
    peer = await target.peer()
    (await peer.call("POST", "/api/v1/erase", data=peer.signed(Erasure()).raw)).ok()
    peer.token = None
    try:
        await peer.join()
    except Failed as exc:
        if "gone" not in str(exc):
            raise Failed(f"signing in again after erasure was refused, but not gone: {exc}") from exc
        return
    raise Failed("an erased key signed in again")
