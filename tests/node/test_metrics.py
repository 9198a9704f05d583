"""``/metrics`` (spec §13.1, Metrics): Prometheus text that moves with real traffic, names no peer, and is local-only.

The federated story runs between two real `peerfed serve` processes; the access rules are
checked in one process, where the forwarding headers and settings are easy to vary.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from peerfed.protocol import Message
from tests.processes import NodeProcesses

from .harness import Clock, Peer, TestNode, federate
from .test_process import Home
from .test_refollow import until_listed

FAMILIES = {
    "peerfed_http_requests",
    "peerfed_http_request_duration_seconds",
    "peerfed_refusals",
    "peerfed_federation_deliveries",
    "peerfed_federation_items",
    "peerfed_outbox_pending_items",
    "peerfed_outbox_oldest_item_age_seconds",
    "peerfed_stored_rows",
    "peerfed_database_bytes",
    "peerfed_live_sockets",
}
# Distinctive pseudonyms, so finding one in the page cannot be a coincidence of ordinary words.
ANA, BEN = "Anaxandra Quillfeather", "Benedikt Zorrowvane"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(http: aiohttp.ClientSession, url: str, headers: Mapping[str, str] | None = None) -> tuple[int, str]:
    async with http.get(url + "/metrics", headers=dict(headers or {})) as response:
        return response.status, await response.text()


def parse(text: str) -> tuple[set[str], Samples]:
    """The family names and every sample, keyed by (sample name, sorted labels)."""
    families = list(text_string_to_metric_families(text))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}
    return {f.name for f in families}, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def until_delivered(peer: Peer, polls: int = 1800) -> None:
    """Wait (bounded: 50 ms apart, 90 s in all) until ``peer``'s mailbox holds an item."""
    for _ in range(polls):
        if (await peer.api.mailbox())["items"]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing reached {peer.name}'s mailbox")


def test_metrics_move_with_federated_traffic_and_name_no_peer(tmp_path: Path, node_processes: NodeProcesses) -> None:
    async def scenario() -> None:
        b = node_processes(tmp_path / "b", name="b")
        await b.start()
        a = node_processes(tmp_path / "a", "--federate", b.url, name="a")
        await a.start()
        async with aiohttp.ClientSession() as http:
            status, text = await scrape(http, a.url)
            assert status == 200
            names, before = parse(text)
            assert names >= FAMILIES

            ana = await Peer(ANA, Home(a.url), http, 1).join()  # type: ignore[arg-type]
            ben = await Peer(BEN, Home(b.url), http, 2).join()  # type: ignore[arg-type]
            offer = await ana.offer("Someone to talk to after night shifts.")
            await until_listed(ben, offer.id.hex())  # pushed from A to B
            await ben.api.call("GET", f"/api/v1/listings/{offer.id.hex()}")
            await ben.api.keys(ana.id.text)
            _, sealed = ben.seal_to(ana, Message(ana.id, b"\x11" * 16, 1, "Hello from the other node."))
            await ben.api.send(sealed.raw)  # B delivers it to A
            await until_delivered(ana)
            async with http.get(a.url + "/api/v1/mailbox") as response:
                assert response.status == 401  # a refusal: no session
            async with http.get(f"{a.url}/nowhere/{offer.id.hex()}") as response:
                assert response.status == 404

            pages = {node.name: (await scrape(http, node.url))[1] for node in (a, b)}
        _, after_a = parse(pages["a"])
        _, after_b = parse(pages["b"])
        requests = "peerfed_http_requests_total"
        assert value(after_a, requests, method="POST", route="/api/v1/listings", status="201") == 1
        assert value(before, requests, method="POST", route="/api/v1/listings", status="201") == 0
        # Routes are templates: the listing's id is never a label.
        assert value(after_b, requests, method="GET", route="/api/v1/listings/{listing}", status="200") == 1
        assert value(after_a, "peerfed_http_request_duration_seconds_count", route="/api/v1/listings") == 1
        assert value(after_a, "peerfed_refusals_total", code="auth.required") == 1
        # A path no route matches is counted without its text, which a stranger chooses.
        assert value(after_a, requests, method="GET", route="(unmatched)", status="404") == 1
        # The listing went from A to B, the message from B to A: each counted by its sender.
        assert value(after_a, "peerfed_federation_deliveries_total", destination=b.url, result="ok") >= 1
        assert value(after_b, "peerfed_federation_deliveries_total", destination=a.url, result="ok") >= 1
        assert value(after_b, "peerfed_federation_items_total", destination=a.url, state="done") >= 1
        assert value(after_a, "peerfed_stored_rows", table="mailbox") == 1
        assert value(after_a, "peerfed_database_bytes") > 0
        for page in pages.values():
            for secret in (ana.id.text, ana.id.hex, ben.id.text, ben.id.hex, offer.id.hex(), ANA, BEN):
                assert secret.lower() not in page.lower()
            assert sealed.id.hex() not in page and bytes(sealed.mailbox).hex() not in page
        assert a.stop() == 0 and b.stop() == 0

    asyncio.run(scenario())


def test_outbox_depth_and_oldest_item_are_shown_per_destination_node(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        a = await TestNode(tmp_path / "a", clock).start()
        b = await TestNode(tmp_path / "b", clock).start()
        try:
            await federate(a, b)
            async with aiohttp.ClientSession() as http:
                ana = await Peer(ANA, a, http, 1).join()
                await ana.offer("Waiting to be sent.")
                clock.advance(42)
                _, samples = parse((await scrape(http, a.url))[1])
                assert value(samples, "peerfed_outbox_pending_items", destination=b.url) >= 2  # bundle, listing
                assert value(samples, "peerfed_outbox_oldest_item_age_seconds", destination=b.url) == 42
                await a.deliver()
                _, samples = parse((await scrape(http, a.url))[1])
                assert ("peerfed_outbox_pending_items", (("destination", b.url),)) not in samples
                assert value(samples, "peerfed_federation_deliveries_total", destination=b.url, result="ok") == 1
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(scenario())


def test_only_local_clients_or_the_token_holder_may_read_metrics(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        plain = await TestNode(tmp_path / "plain", clock).start()
        proxied = await TestNode(
            tmp_path / "proxied", clock, trusted_proxies=("127.0.0.1",), metrics_token="s3cret-scrape"
        ).start()
        try:
            async with aiohttp.ClientSession() as http:
                assert (await scrape(http, plain.url))[0] == 200  # loopback, directly
                # Forwarded by a proxy the node does not trust: not local, and no token is set.
                status, body = await scrape(http, plain.url, {"X-Forwarded-For": "127.0.0.1"})
                assert status == 403 and '"auth.forbidden"' in body
                assert (await scrape(http, plain.url, {"Authorization": "Bearer anything"}))[0] == 200  # local
                # Through the trusted proxy, the client it names is what counts.
                remote = {"X-Forwarded-For": "203.0.113.9"}
                assert (await scrape(http, proxied.url, remote))[0] == 403
                assert (await scrape(http, proxied.url, {**remote, "Authorization": "Bearer wrong"}))[0] == 403
                token = {**remote, "Authorization": "Bearer s3cret-scrape"}
                assert (await scrape(http, proxied.url, token))[0] == 200
                assert (await scrape(http, proxied.url, {"X-Forwarded-For": "127.0.0.1"}))[0] == 200
                # Another forwarding header than the one configured cannot pass as local.
                assert (await scrape(http, proxied.url, {"X-Real-IP": "203.0.113.9"}))[0] == 403
                _, samples = parse((await scrape(http, proxied.url))[1])
                assert value(samples, "peerfed_refusals_total", code="auth.forbidden") == 3
        finally:
            await plain.stop()
            await proxied.stop()

    asyncio.run(scenario())
