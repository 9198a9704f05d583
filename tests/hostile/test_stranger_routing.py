"""A stranger node against routing and the directory (spec §13.5 Routing, §13.7 Home, Catch-up, Keys on demand).

Each test builds the attack against real nodes on loopback: the stranger is a TestNode whose
federation answers are replaced where the attack needs it (a node running modified software),
and which pushes with its own signed requests. The honest outcome is asserted.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from peerfed.node.federation.inbound import IngestResult
from peerfed.protocol import Erasure, Identity, Message, PeerId, RemoteError, Withdrawal, pack, seal, unpack
from peerfed.protocol.encoding import Value
from peerfed.protocol.node_bodies import erased_hash
from peerfed.protocol.work import solve_work

from ..node.harness import DAY, Clock, Peer, TestNode, federate

Scenario = Callable[[list[TestNode], aiohttp.ClientSession], Awaitable[None]]


def run_nodes(tmp: Path, names: str, body: Scenario) -> None:
    """Nodes named by the letters of ``names``, sorted by URL (so the order a node asks its
    followers in is known), sharing one clock; not federated yet; all stopped after."""

    async def scenario() -> None:
        clock = Clock()
        nodes = [TestNode(tmp / name, clock) for name in names]
        nodes.sort(key=lambda n: n.url)
        for node in nodes:
            await node.start()
        try:
            async with aiohttp.ClientSession() as http:
                await body(nodes, http)
        finally:
            for node in nodes:
                if node.runner is not None:
                    await node.stop()

    asyncio.run(scenario())


async def drain(*nodes: TestNode) -> None:
    for _ in range(10):
        if sum([await n.deliver() for n in nodes]) == 0:
            return
    raise AssertionError("outboxes did not drain")


def received_batches(node: TestNode, monkeypatch: pytest.MonkeyPatch) -> list[list[Any]]:
    """Record every batch item ``node`` is pushed, as [kind, bytes]."""
    seen: list[list[Any]] = []
    inbound = node.node.inbound
    original = inbound.ingest_batch

    async def recording(origin: str, body: bytes) -> list[IngestResult]:
        items = unpack(body)
        if isinstance(items, list):
            seen.extend(i for i in items if isinstance(i, list))
        return await original(origin, body)

    monkeypatch.setattr(inbound, "ingest_batch", recording)
    return seen


async def push(stranger: TestNode, to: TestNode, items: list[list[Any]]) -> list[dict[str, Any]]:
    """The stranger pushes a batch under its own signature; the receiver's per-item answers."""
    client = stranger.node.client
    assert client is not None
    answer = await client.request("POST", to.url, "/federation/v1/batch", pack(tuple(items)))
    results: list[dict[str, Any]] = answer["results"]
    return results


def test_a_stranger_serving_the_victims_genuine_bundle_does_not_receive_her_mail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(nodes: list[TestNode], http: aiohttp.ClientSession) -> None:
        stranger, a, home = nodes  # in URL order: A asks the stranger before vic's home
        await federate(a, home, stranger)
        vic = await Peer("vic", home, http, 7).join()  # publishes her bundle, no listing
        ana = await Peer("ana", a, http, 1).join()
        await drain(*nodes)
        # The stranger gets vic's genuine bundle (anyone federated may ask her home), then serves it
        # as if she were its member, and records whatever it is pushed.
        genuine = (await stranger.node.catchup.key_bundle(vic.id)).raw

        async def serve_victim(peer: PeerId) -> bytes:
            return genuine

        monkeypatch.setattr(stranger.node.inbound, "member_key_bundle", serve_victim)
        got = received_batches(stranger, monkeypatch)
        # Pushing her bundle is refused, and nothing is kept.
        results = await push(stranger, a, [["key-bundle", genuine]])
        assert [r.get("code") for r in results] == ["federation.not_home"]
        assert await a.node.store.key_bundle(bytes(vic.id), ana.now()) is None
        # Ana's client asks A for vic's bundle; A asks the stranger first, which answers with it.
        held = await ana.api.keys(vic.id.text)
        assert held["home"] == home.url
        assert (await a.node.store.key_bundle(bytes(vic.id), ana.now())) is not None
        inner, sealed = ana.seal_to(vic, Message(vic.id, b"\x21" * 16, 1, "for vic only"))
        assert (await ana.api.send(sealed.raw))["status"] == "queued"
        await drain(*nodes)
        await drain(*nodes)
        assert await vic.inbox() == [inner]  # at her home, exactly once
        assert not [kind for kind, _ in got if kind == "sealed"]  # the stranger received nothing
        stats = await a.node.store.outbox_stats()
        assert stranger.url not in stats or not stats[stranger.url].get("pending")

    run_nodes(tmp_path, "sah", scenario)


def test_a_stranger_pushing_someone_elses_listing_and_bundle_is_refused(tmp_path: Path) -> None:
    async def scenario(nodes: list[TestNode], http: aiohttp.ClientSession) -> None:
        home, stranger, victim_node = nodes
        await federate(home, stranger)
        await federate(stranger, victim_node)  # the victim's node knows the stranger, not her home
        vic = await Peer("vic", home, http, 7).join()
        offer = await vic.offer("Evenings, grief, Spanish.")
        await drain(*nodes)
        bundle = await stranger.node.store.key_bundle(bytes(vic.id), vic.now())
        assert bundle is not None and bundle.origin == home.url  # the stranger holds her genuine copies
        withdrawal = vic.signed(Withdrawal(offer.id))
        results = await push(
            stranger,
            victim_node,
            [["key-bundle", bundle.raw], ["listing", offer.raw], ["withdrawal", withdrawal.raw]],
        )
        # Her bundle names another home; holding none of hers, the listing cannot be checked and is
        # refused for now (a stranger retries it in vain); the withdrawal names a listing not held.
        codes = [r.get("code") for r in results]
        assert codes == ["federation.not_home", "node.unavailable", "federation.not_home"]
        store = victim_node.node.store
        assert await store.key_bundle(bytes(vic.id), vic.now()) is None
        assert await store.listing(offer.id) is None
        assert not await store.was_withdrawn(offer.id)
        assert (await store.counts())["listings"] == 0

    run_nodes(tmp_path, "hsv", scenario)


def test_a_node_federating_after_a_withdrawal_and_an_erasure_never_shows_them(tmp_path: Path) -> None:
    async def scenario(nodes: list[TestNode], http: aiohttp.ClientSession) -> None:
        home, stranger, late = nodes
        await federate(home, stranger)
        ana = await Peer("ana", home, http, 1).join()
        ben = await Peer("ben", home, http, 2).join()
        withdrawn = await ana.offer("Withdrawn soon.")
        erased = await ben.offer("Ben's offer, before he leaves.")
        await drain(*nodes)
        kept = {p.name: await stranger.node.store.key_bundle(bytes(p.id), ana.now()) for p in (ana, ben)}
        await ana.api.publish(ana.signed(Withdrawal(withdrawn.id)).raw)
        await ben.api.erase(ben.signed(Erasure(), life=30 * DAY).raw)
        await drain(*nodes)
        # Later a node federates with both; the stranger pushes what it kept.
        await federate(home, stranger, late)
        for name, row in kept.items():
            assert row is not None, name
        pushed = [["key-bundle", r.raw] for r in kept.values() if r] + [
            ["listing", withdrawn.raw],
            ["listing", erased.raw],
        ]
        results = await push(stranger, late, pushed)
        assert {r.get("code") for r in results} <= {"federation.not_home", "gone", "node.unavailable"}
        assert all(r["status"] == "error" for r in results)
        await late.node.maintain()
        reader = await Peer("rae", late, http, 9).join()
        assert (await reader.api.directory())["listings"] == []
        assert await late.node.store.key_bundle(bytes(ben.id), ana.now()) is None
        assert (await late.node.store.counts())["listings"] == 0

    run_nodes(tmp_path, "hsl", scenario)


def test_a_follower_holding_a_withdrawn_and_an_erased_listing_drops_them_on_pull(tmp_path: Path) -> None:
    async def scenario(nodes: list[TestNode], http: aiohttp.ClientSession) -> None:
        home, follower = nodes
        await federate(home, follower)
        ana = await Peer("ana", home, http, 1).join()
        ben = await Peer("ben", home, http, 2).join()
        withdrawn = await ana.offer("Withdrawn while the follower was down.")
        erased = await ben.offer("Erased while the follower was down.")
        await drain(*nodes)
        assert (await follower.node.store.counts())["listings"] == 2
        await follower.stop()  # the pushes of the withdrawal and the erasure cannot reach it
        await ana.api.publish(ana.signed(Withdrawal(withdrawn.id)).raw)
        await ben.api.erase(ben.signed(Erasure(), life=30 * DAY).raw)
        await home.deliver()
        await follower.start()
        await follower.node.catchup.pull(home.url)  # before the home's retry comes due
        store = follower.node.store
        assert await store.listing(withdrawn.id) is None and await store.was_withdrawn(withdrawn.id)
        assert await store.listing(erased.id) is None
        assert await store.key_bundle(bytes(ben.id), ben.now()) is None
        assert await store.key_bundle(bytes(ana.id), ana.now()) is not None  # ana is still here
        # Her listing pushed again (a retry, or a replay) stays gone.
        with pytest.raises(RemoteError) as info:
            await follower.node.inbound.ingest(home.url, "listing", withdrawn.raw)
        assert info.value.code == "gone"

    run_nodes(tmp_path, "hf", scenario)


def test_tombstones_from_a_node_touch_only_what_came_from_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(nodes: list[TestNode], http: aiohttp.ClientSession) -> None:
        home, stranger, follower = nodes
        await federate(home, stranger, follower)
        vic = await Peer("vic", home, http, 7).join()
        offer = await vic.offer("Mornings, anxiety.")
        await drain(*nodes)
        page = {
            "items": [],
            "next": 0,
            "withdrawn": [{"listing": offer.id.hex(), "author": vic.id.text, "until": vic.now() + DAY}],
            "withdrawn_next": 1,
            "erased": [{"hash": base64.b64encode(erased_hash(bytes(vic.id))).decode(), "until": vic.now() + DAY}],
            "erased_next": 1,
        }

        async def lying(method: str, url: str, path: str, body: bytes = b"", content_type: str = "") -> Any:
            return page

        client = follower.node.client
        assert client is not None
        monkeypatch.setattr(client, "request", lying)
        await follower.node.catchup.pull(stranger.url)  # the stranger claims she withdrew and was erased
        store = follower.node.store
        assert await store.listing(offer.id) is not None
        assert not await store.was_withdrawn(offer.id)
        assert await store.key_bundle(bytes(vic.id), vic.now()) is not None

    run_nodes(tmp_path, "hsf", scenario)


def test_keys_and_sends_answer_alike_for_a_member_without_a_bundle_and_a_non_member(tmp_path: Path) -> None:
    async def scenario(nodes: list[TestNode], http: aiohttp.ClientSession) -> None:
        node, prober = nodes
        await federate(node, prober)
        quiet = Peer("quiet", node, http, 5)
        await quiet.api.sign_in(quiet.identity, now=quiet.now())  # a member who never published a bundle
        stranger_id = Identity(b"\x66" * 32).peer_id
        client = prober.node.client
        assert client is not None

        async def keys(peer: PeerId) -> tuple[str, str, int]:
            with pytest.raises(RemoteError) as info:
                await client.request("GET", node.url, f"/federation/v1/keys/{peer.text}")
            return info.value.code, str(info.value), info.value.http_status

        assert await keys(quiet.id) == await keys(stranger_id)
        assert (await keys(quiet.id))[0] == "not_found"

        async def sends(peer: PeerId, tag: int) -> list[list[str]]:
            sealed = seal(quiet.signed(Message(peer, bytes([tag]) * 16, 1, "probe"), life=DAY), quiet.secret.public)
            # The first item into either mailbox pays the first contact's proof of work (§13.5).
            work = solve_work(sealed.id, node.config.first_contact_work_bits)
            answers = []
            items: list[list[Value]] = [["sealed", sealed.raw, work], ["sealed", sealed.raw]]
            for item in items:
                results = (await client.request("POST", node.url, "/federation/v1/batch", pack([item])))["results"]
                answers.append([r["status"] for r in results])
            return answers

        # Sealed to the quiet member's mailbox and to a stranger's: the same answers, twice.
        assert await sends(quiet.id, 1) == await sends(stranger_id, 2) == [["ok"], ["duplicate"]]
        # A member asking her own node: named or not, the answers are alike too.
        for tag, peer in ((3, quiet.id), (4, stranger_id)):
            sealed = seal(quiet.signed(Message(peer, bytes([tag]) * 16, 1, "probe"), life=DAY), quiet.secret.public)
            assert (await quiet.api.send(sealed.raw, destination=node.url))["status"] == "delivered"
            with pytest.raises(RemoteError) as info:
                await quiet.api.send(sealed.raw)
            assert info.value.code == "not_found"  # no bundle held for either: name the home

    run_nodes(tmp_path, "np", scenario)


def test_members_who_never_publish_are_not_pushed_to_followers(tmp_path: Path) -> None:
    async def scenario(nodes: list[TestNode], http: aiohttp.ClientSession) -> None:
        node, follower = nodes
        await federate(node, follower)
        quiet = await Peer("quiet", node, http, 5).join()
        await drain(*nodes)
        assert await follower.node.store.key_bundle(bytes(quiet.id), quiet.now()) is None
        assert (await node.node.store.outbox_stats()) == {}
        # Once she publishes a listing, her bundle travels with it; a new bundle then follows too.
        await quiet.offer("Now I am public.")
        await drain(*nodes)
        assert await follower.node.store.key_bundle(bytes(quiet.id), quiet.now()) is not None
        node.clock.advance(60)
        await quiet.join()
        assert sum((await node.node.store.outbox_stats())[follower.url].values()) == 3

    run_nodes(tmp_path, "nf", scenario)


def test_a_listing_whose_bundle_was_refused_for_a_passing_reason_arrives_later(tmp_path: Path) -> None:
    """Before: the bundle refused past a quota made its listing's refusal `federation.not_home`,
    final, so the listing never showed there. Now the listing waits for its bundle."""

    async def scenario() -> None:
        clock = Clock()
        home = await TestNode(tmp_path / "home", clock).start()
        other = await TestNode(tmp_path / "other", clock, node_bundles_per_hour=1).start()
        await federate(home, other)
        async with aiohttp.ClientSession() as http:
            ana = await Peer("ana", home, http, 1).join()
            ben = await Peer("ben", home, http, 2).join()
            offers = [await ana.offer("Evenings, by text."), await ben.offer("Mornings, by voice.")]
            await drain(home, other)
            rae = await Peer("rae", other, http, 9).join()
            shown = {e["id"] for e in (await rae.api.directory())["listings"]}
            assert shown == {offers[0].id.hex()}  # ben's bundle was past the hour's quota
            stats = await home.node.store.outbox_stats()
            assert stats[other.url].get("rejected", 0) == 0 and stats[other.url].get("pending", 0) == 2
            clock.advance(3600)
            await drain(home, other)
            assert {e["id"] for e in (await rae.api.directory())["listings"]} == {o.id.hex() for o in offers}
        await home.stop()
        await other.stop()

    asyncio.run(scenario())
