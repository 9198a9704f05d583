"""The client API: joining under each policy, publishing, searching, and refusing bad input."""

from __future__ import annotations

import base64
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from peerfed.client.transport import NodeAPI
from peerfed.protocol import (
    ClientAuth,
    Format,
    KeyBundle,
    Kind,
    Listing,
    Message,
    RemoteError,
    Timing,
    Withdrawal,
    sign,
)

from .harness import DAY, Peer, TestNode, run_node, standing


async def refused(code: str, action: Awaitable[Any]) -> RemoteError:
    with pytest.raises(RemoteError) as info:
        await action
    assert info.value.code == code, str(info.value)
    return info.value


def test_open_registration_needs_only_a_key_and_a_challenge_is_single_use(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        peer = Peer("ana", node, http, 1)
        api = NodeAPI(node.url, http)
        challenge = await api.call("POST", "/api/v1/challenge")
        now = peer.now()
        proof = sign(
            peer.identity,
            ClientAuth(node.url, bytes.fromhex(challenge["challenge"])),
            created_at=now,
            expires_at=now + 300,
        )
        first = await api.call("POST", "/api/v1/session", data=proof.raw)
        assert first["peer"] == peer.id.text
        await refused("auth.invalid", api.call("POST", "/api/v1/session", data=proof.raw))
        other = sign(
            peer.identity, ClientAuth("https://elsewhere.example", bytes(32)), created_at=now, expires_at=now + 300
        )
        await refused("auth.invalid", api.call("POST", "/api/v1/session", data=other.raw))
        await refused("auth.required", NodeAPI(node.url, http).directory())
        await refused("auth.required", NodeAPI(node.url, http, token="made-up").directory())
        assert standing(await node.node.store.member(bytes(peer.id))) == ("member", None)

    run_node(tmp_path, body)


def test_invite_registration(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        from peerfed.node.sessions import token_hash

        now = int(node.clock())
        await node.node.store.create_invite(token_hash("welcome-code"), now, now + DAY, 1, None)
        await refused("auth.invite", Peer("ana", node, http, 1).join())
        await refused("auth.invite", Peer("ana", node, http, 1).join(invite="wrong-code"))
        await Peer("ana", node, http, 1).join(invite="WELCOME-code")
        await refused("auth.invite", Peer("ben", node, http, 2).join(invite="welcome-code"))  # used up
        await Peer("ana", node, http, 1).join()  # a member signs in again without one

    run_node(tmp_path, body, registration="invite")


def test_approval_registration(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = Peer("ana", node, http, 1)
        await refused("auth.pending", ana.join())
        assert (await node.node.store.member(bytes(ana.id))).status == "pending"  # type: ignore[union-attr]
        await refused("auth.pending", ana.join())
        await node.node.store.set_member(bytes(ana.id), "member", int(node.clock()))
        await ana.join()

    run_node(tmp_path, body, registration="approval")


def test_publish_search_page_and_withdraw(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()
        ben = await Peer("ben", node, http, 2).join()
        made = []
        for n in range(5):
            node.clock.advance(1)
            made.append(await ana.offer(f"offer {n}", languages=("es-MX",), formats=("text", "voice")))
        request = await ben.offer(
            "Looking for someone to talk grief with", kind="request", topics=("Grief",), languages=("en",)
        )
        found = await ben.api.directory(lang="es", kind=Kind.OFFER, limit=2)
        assert [x["id"] for x in found["listings"]] == [made[4].id.hex(), made[3].id.hex()]
        page2 = await ben.api.directory(lang="es", kind=Kind.OFFER, limit=2, before=found["next"])
        assert [x["id"] for x in page2["listings"]] == [made[2].id.hex(), made[1].id.hex()]
        assert [x["id"] for x in (await ana.api.directory(topic="GRIEF"))["listings"]] == [request.id.hex()]
        voice = await ana.api.directory(format="voice")
        assert voice["listings"][0]["id"] == made[4].id.hex()
        assert (await ana.api.directory(lang="fr"))["listings"] == []
        # Only the author withdraws.
        await refused("auth.forbidden", ben.api.publish(ben.signed(Withdrawal(made[0].id)).raw))
        await ana.api.publish(ana.signed(Withdrawal(made[0].id)).raw)
        assert made[0].id.hex() not in [x["id"] for x in (await ben.api.directory(limit=100))["listings"]]
        await refused("gone", ana.api.publish(made[0].raw))

    run_node(tmp_path, body)


def test_bad_input_gets_its_code_stores_nothing_and_the_node_keeps_serving(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()
        ben = Peer("ben", node, http, 2)
        good = ana.signed(
            Listing(
                kind=Kind.OFFER,
                topics=("sleep",),
                languages=("en",),
                formats=(Format.TEXT,),
                timing=Timing.NOW,
                summary="Night owl, happy to chat.",
            )
        )
        cases: list[tuple[str, bytes]] = [
            ("encoding.malformed", b""),
            ("encoding.malformed", b"\x01" + good.raw[1:50]),
            ("version.unsupported", b"\x02" + good.raw[1:]),
            ("signature.invalid", good.raw[:-1] + bytes([good.raw[-1] ^ 1])),
            (
                "auth.forbidden",
                ben.signed(
                    Listing(
                        kind=Kind.OFFER,
                        topics=("x",),
                        languages=("en",),
                        formats=(Format.TEXT,),
                        timing=Timing.NOW,
                        summary="not ana",
                    )
                ).raw,
            ),
            (
                "time.expired",
                sign(ana.identity, good.body, created_at=ana.now() - 10 * DAY, expires_at=ana.now() - DAY).raw,
            ),
            ("time.lifetime", sign(ana.identity, good.body, created_at=ana.now(), expires_at=ana.now() + 60 * DAY).raw),
            (
                "signature.invalid",
                sign(ana.identity, KeyBundle(ana.secret.public), created_at=ana.now(), expires_at=ana.now() + DAY).raw,
            ),
            ("size.too_large", good.raw + bytes(80_000)),
        ]
        for code, raw in cases:
            await refused(code, ana.api.publish(raw))
        await refused("request.invalid", ana.api.call("POST", "/api/v1/mailbox/ack", data=b"{not json"))
        await refused("request.invalid", ana.api.call("POST", "/api/v1/mailbox/ack", json={"ids": "x"}))
        await refused("request.invalid", ana.api.directory(kind="helper"))
        await refused("request.invalid", ana.api.directory(limit="ten"))
        # Page sizes outside the spec's ranges and repeated parameters are refused, not clamped (§13.5, §13.1).
        for bad in (0, 101, -1):
            await refused("request.invalid", ana.api.directory(limit=bad))
        for bad in (0, 501):
            await refused("request.invalid", ana.api.mailbox(limit=bad))
        assert (await ana.api.directory(limit=1))["listings"] == []
        assert (await ana.api.directory(limit=100))["listings"] == []
        assert (await ana.api.mailbox(limit=500))["items"] == []
        for repeated in ("limit=5&limit=6", "kind=offer&kind=request", "after=0&after=1"):
            path = "/api/v1/mailbox?" if repeated.startswith("after") else "/api/v1/directory?"
            await refused("request.invalid", ana.api.call("GET", path + repeated))
        await refused("not_found", ana.api.call("GET", "/api/v1/nothing-here"))
        await refused("request.invalid", ana.api.call("DELETE", "/api/v1/listings"))
        await refused("schema.invalid", ana.api.keys("pf1notapeerid"))
        assert (await node.node.store.counts())["listings"] == 0
        await ana.api.publish(good.raw)
        assert (await node.node.store.counts())["listings"] == 1

    run_node(tmp_path, body)


def test_keys_answers_the_signed_home_or_this_node_for_a_bundle_without_one(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()
        assert (await ana.api.keys(ana.id.text))["home"] == node.url  # signed into her bundle
        ben = Peer("ben", node, http, 2)
        await ben.api.sign_in(ben.identity, now=ben.now())
        await ben.api.put_keys(ben.signed(KeyBundle(ben.secret.public), life=DAY).raw)
        held = await ana.api.keys(ben.id.text)
        assert held["home"] == node.url  # published here with no home: it lives here (spec §13.5)
        assert base64.b64decode(held["key_bundle"]) == ben.signed(KeyBundle(ben.secret.public), life=DAY).raw

    run_node(tmp_path, body)


def test_sending_needs_a_known_mailbox_and_a_federated_destination(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()
        ben = await Peer("ben", node, http, 2).join()
        stranger = Peer("cy", node, http, 3)
        _, to_stranger = ana.seal_to(stranger, Message(stranger.id, bytes(16), 1, "hello?"))
        await refused("not_found", ana.api.send(to_stranger.raw))
        _, to_ben = ana.seal_to(ben, Message(ben.id, bytes(16), 1, "hello"))
        await refused("federation.refused", ana.api.send(to_ben.raw, destination="https://unknown.example"))
        await refused("encoding.malformed", ana.api.send(b"\x93"))
        assert (await ana.api.send(to_ben.raw))["status"] == "delivered"
        assert len((await ben.api.mailbox())["items"]) == 1
        assert (await ana.api.mailbox())["items"] == []  # nobody reads another's mailbox

    run_node(tmp_path, body)


def test_reports_reach_the_operator_and_the_outcome_returns(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()
        ben = await Peer("ben", node, http, 2).join()
        offer = await ana.offer("A listing someone finds troubling.")
        inner, _ = ana.seal_to(ben, Message(ben.id, bytes(16), 1, "a message ben chooses to disclose"))
        made = await ben.api.report(offer.id.hex(), "It asks for phone numbers.", [inner.raw])
        assert made["status"] == "open"
        await ben.api.report(ana.id.text, "Pressured me to move off peerfed.")
        await refused("not_found", ben.api.report("00" * 32, "no such listing"))
        await refused("request.invalid", ben.api.report(offer.id.hex(), ""))
        rows = await node.node.store.reports(status="open")
        assert [r.target_kind for r in rows] == ["listing", "peer"]
        assert await node.node.store.resolve_report(rows[0].id, "Listing removed; author contacted.", 0)
        mine = (await ben.api.reports())["reports"]
        assert mine[0]["status"] == "resolved" and mine[0]["outcome"] == "Listing removed; author contacted."
        assert mine[1]["status"] == "open"
        assert (await ana.api.reports())["reports"] == []

    run_node(tmp_path, body)


def test_rate_limits_answer_429_with_a_code(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()
        ben = await Peer("ben", node, http, 2).join()
        for n in range(3):
            _, sealed = ana.seal_to(ben, Message(ben.id, bytes(16), n + 1, f"m{n}"))
            await ana.api.send(sealed.raw)
        _, sealed = ana.seal_to(ben, Message(ben.id, bytes(16), 9, "one too many"))
        error = await refused("rate.limited", ana.api.send(sealed.raw))
        assert "try again" in str(error)
        node.clock.advance(61)
        await ana.api.send(sealed.raw)

    run_node(tmp_path, body, sends_per_minute=3, first_contact_work_bits=0)  # one call per send


def test_the_node_document_is_signed_and_lists_resources(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        from peerfed.node.federation import parse_document

        payload = await NodeAPI(node.url, http).document()
        doc, env = parse_document(payload, node.url, int(node.clock()))
        assert doc.name == "Warm Line Circle"
        assert doc.registration.value == "open"
        assert doc.resources[0].emergency.value == "never"
        assert dict(doc.limits)["max-bytes"] == 65_536
        assert doc.key_valid_at(bytes(env.author), int(node.clock()))
        assert payload["summary"]["resources"][0]["name"] == "Peer warmline"
        raw = base64.b64decode(payload["document"])
        tampered = raw[:-1] + bytes([raw[-1] ^ 1])
        with pytest.raises(RemoteError):
            parse_document({"document": base64.b64encode(tampered).decode()}, node.url, int(node.clock()))
        with pytest.raises(RemoteError):
            parse_document(payload, "https://impostor.example", int(node.clock()))

    from peerfed.protocol.node_bodies import Emergency, Resource

    run_node(
        tmp_path,
        body,
        name="Warm Line Circle",
        resources=(Resource(name="Peer warmline", contact="0800 000 000", emergency=Emergency.NEVER),),
    )
