"""Issue 11, "Discovery is an unauthenticated request forgery": discovery is safe (spec §13.7 Discovery).

Before: any request signed with a throwaway key made the node fetch ``origin/.well-known/peerfed``
before any federation check, following redirects, reading the body with no cap, and its error
text told the caller which internal ports answered. Now: only a follow, or a node this one
federates with, causes a fetch; no redirect is followed; at most 65,536 bytes are read within a
deadline; fetches are throttled and bounded in number; private ranges are refused before any
connection; and every failure is the same generic ``node.unavailable``.

Nothing here connects to anything but 127.0.0.1: the refused addresses are literal IPs, checked
before any socket or resolver call, and the clients that would connect are tripwires.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from peerfed.node.config import Config
from peerfed.node.federation import NodeClient, TransportError, sign_request
from peerfed.node.federation.addresses import AddressPolicy, GuardedResolver
from peerfed.node.federation.discovery import CANNOT_CHECK, MAX_FETCHES, Discovery
from peerfed.node.federation.transport import MAX_DOCUMENT_BYTES, AddressRefused
from peerfed.protocol import Identity, UnavailableError

from ..node.harness import Clock, TestNode, run_node
from .stranger import HUGE, Stranger, node_document, post_signed

FOLLOW = "/federation/v1/follow"
BATCH = "/federation/v1/batch"
PRIVATE = [
    "http://10.1.2.3:9",
    "http://169.254.169.254",
    "https://169.254.169.254/latest",
    "https://192.168.1.1",
    "https://172.16.0.1:8443",
    "https://100.64.0.1",
    "https://[fd00::1]",
    "https://[fe80::1]",
    "https://[::ffff:10.0.0.1]",
    "https://0.0.0.0",
    "https://224.0.0.1",
    "https://240.0.0.1",
]


class Tripwire:
    """Stands in for an HTTP session or a resolver: any use at all fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a connection was attempted ({name})")


def tripwire_client(node: TestNode) -> NodeClient:
    """B's client with its real address rules and a session that fails the test if ever used."""
    session = cast(aiohttp.ClientSession, Tripwire())
    policy = AddressPolicy.for_config(node.node.config)
    return NodeClient(session, lambda: node.node.identity, node.url, node.clock, policy=policy)


def forged_follow(origin: str, destination: str, clock: Clock, seed: int = 99) -> str:
    """A follow claiming ``origin``, signed by a throwaway key."""
    return sign_request(
        Identity(bytes([seed]) * 32),
        method="POST",
        path=FOLLOW,
        origin=origin,
        destination=destination,
        body=b"{}",
        now=int(clock()),
    )


# --- no fetch without a follow or a relation -------------------------------------------------------------


def test_a_throwaway_key_from_an_unknown_origin_causes_no_fetch(tmp_path: Path) -> None:
    async def body(b: TestNode, http: aiohttp.ClientSession) -> None:
        async with Stranger(b.clock, 40) as stranger:
            throwaway = Identity(bytes([41]) * 32)
            for method, path, data in (
                ("POST", BATCH, b"\x91\x92\xa6sealed\xc4\x01x"),
                ("GET", "/federation/v1/listings?after=0&limit=10", b""),
                ("GET", "/federation/v1/keys/" + "a" * 52, b""),
            ):
                header = stranger.sign(method, path, b.url, data, identity=throwaway)
                status, answer = await post_signed(http, b.url, path, data, header, method=method)
                assert (status, answer["error"]["code"]) == (403, "federation.refused"), path
                assert "127.0.0.1" not in answer["error"]["message"]
            assert stranger.hits == []  # nothing was fetched from the claimed origin
            assert b.node.discovery.fetches == 0
            assert await b.node.store.node(stranger.url) is None  # and nothing stored

    run_node(tmp_path, body)


# --- private ranges, before any connection ----------------------------------------------------------------


@pytest.mark.parametrize("url", PRIVATE)
def test_private_ranges_are_refused_before_any_connection(url: str) -> None:
    loopback_node = AddressPolicy(allow_loopback=True)  # a development node on 127.0.0.1, as in tests
    with pytest.raises(AddressRefused):
        loopback_node.check_url(url)
    production = AddressPolicy.for_config(Config(public_url="https://node.example"))
    with pytest.raises(AddressRefused):
        production.check_url(url)

    async def fetch() -> None:
        client = NodeClient(
            cast(aiohttp.ClientSession, Tripwire()),
            lambda: Identity(bytes(32)),
            "https://node.example",
            Clock(),
            policy=production,
        )
        with pytest.raises(AddressRefused):
            await client.fetch_document(url)
        with pytest.raises(AddressRefused):
            await client.send(url, BATCH, b"\x90")

    asyncio.run(fetch())


def test_loopback_and_plain_http_only_where_the_operator_allows() -> None:
    production = AddressPolicy.for_config(Config(public_url="https://node.example"))
    for url in ("http://127.0.0.1:6379", "https://127.0.0.1:8443", "https://[::1]", "http://localhost:8080"):
        with pytest.raises(AddressRefused):
            production.check_url(url)
    with pytest.raises(AddressRefused):
        production.check_url("http://node.example")  # plain http to a name
    production.check_url("https://node.example")  # a name: checked when it resolves
    production.check_url("https://93.184.216.34")  # a public literal: allowed (nothing is connected here)
    development = AddressPolicy.for_config(Config())  # runs on http://127.0.0.1:8740
    development.check_url("http://127.0.0.1:9")
    development.check_url("http://localhost:9")
    with pytest.raises(AddressRefused):
        development.check_url("http://node.example")
    private = AddressPolicy.for_config(
        Config(public_url="https://node.example", allow_private_addresses=True, allow_plain_http=True)
    )
    private.check_url("http://10.1.2.3:9")
    private.check_url("http://node.example")
    with pytest.raises(AddressRefused):
        private.check_url("http://0.0.0.0")


class FakeResolver(AbstractResolver):
    """Answers names from a table: no DNS lookup is ever made."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0) for a in self.table[host]
        ]

    async def close(self) -> None:
        pass


def test_a_name_that_resolves_to_a_private_address_is_not_connected_to() -> None:
    async def scenario() -> None:
        policy = AddressPolicy()
        resolver = GuardedResolver(
            policy,
            FakeResolver(
                {
                    "metadata.example": ["169.254.169.254"],
                    "intranet.example": ["10.0.0.5", "fd00::5"],
                    "mixed.example": ["10.0.0.5", "93.184.216.34"],
                }
            ),
        )
        for name in ("metadata.example", "intranet.example"):
            with pytest.raises(OSError):
                await resolver.resolve(name, 443)
        kept = await resolver.resolve("mixed.example", 443)
        assert [ipaddress.ip_address(r["host"]) for r in kept] == [ipaddress.ip_address("93.184.216.34")]

    asyncio.run(scenario())


def test_a_follow_naming_a_private_origin_fetches_nothing_and_says_nothing(tmp_path: Path) -> None:
    async def body(b: TestNode, http: aiohttp.ClientSession) -> None:
        b.node.client = tripwire_client(b)  # B must not even try to connect
        for origin in ("http://10.1.2.3:9", "http://169.254.169.254", "https://192.168.0.1"):
            status, answer = await post_signed(http, b.url, FOLLOW, b"{}", forged_follow(origin, b.url, b.clock))
            assert (status, answer) == (503, {"error": {"code": "node.unavailable", "message": CANNOT_CHECK}})
            assert await b.node.store.node(origin) is None

    run_node(tmp_path, body)


# --- no redirects, a body cap, a deadline ------------------------------------------------------------------


def test_redirects_are_not_followed(tmp_path: Path) -> None:
    async def body(b: TestNode, http: aiohttp.ClientSession) -> None:
        async with Stranger(b.clock, 42, "redirect") as redirector, Stranger(b.clock, 43) as target:
            redirector.redirect_to = target.url
            header = redirector.sign("POST", FOLLOW, b.url, b"{}")
            status, answer = await post_signed(http, b.url, FOLLOW, b"{}", header)
            assert (status, answer["error"]) == (503, {"code": "node.unavailable", "message": CANNOT_CHECK})
            assert redirector.hits == ["/.well-known/peerfed"]
            assert target.hits == []  # the redirect was not followed
            assert await b.node.store.node(redirector.url) is None

    run_node(tmp_path, body)


def test_a_150_mb_document_is_read_only_up_to_the_cap(tmp_path: Path) -> None:
    """The client reads at most 65,536 + 1 bytes of an endless, unannounced body and closes the
    connection; what the server managed to write is that, plus what the small socket buffers
    and aiohttp's read-ahead hold. Then the same through a node: the follow is refused."""

    async def body(b: TestNode, http: aiohttp.ClientSession) -> None:
        def small_buffers(info: Any) -> socket.socket:
            sock = socket.socket(info[0], info[1], info[2])
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
            return sock

        connector = aiohttp.TCPConnector(socket_factory=small_buffers)
        async with Stranger(b.clock, 44, "huge") as huge, aiohttp.ClientSession(connector=connector) as session:
            client = NodeClient(
                session, lambda: b.node.identity, b.url, b.clock, policy=AddressPolicy(allow_loopback=True)
            )
            with pytest.raises(TransportError) as refused:
                await client.fetch_document(huge.url)
            assert "over 65536 bytes" in str(refused.value)
            await asyncio.wait_for(huge.finished.wait(), 30)  # a guard, not a measure
            assert huge.sent <= MAX_DOCUMENT_BYTES + 512 * 1024  # bounded by the cap, not by 150 MB
            assert huge.sent < HUGE // 100

        async with Stranger(b.clock, 45, "huge") as huge:
            header = huge.sign("POST", FOLLOW, b.url, b"{}")
            status, answer = await post_signed(http, b.url, FOLLOW, b"{}", header)
            assert (status, answer["error"]) == (503, {"code": "node.unavailable", "message": CANNOT_CHECK})
            await asyncio.wait_for(huge.finished.wait(), 30)
            assert huge.sent < HUGE // 10  # the node stopped reading long before 150 MB
            async with http.get(b.url + "/.well-known/peerfed") as response:
                assert response.status == 200  # and it is still up

    run_node(tmp_path, body)


def test_a_document_that_never_comes_is_given_up_at_the_deadline(tmp_path: Path) -> None:
    async def body(b: TestNode, http: aiohttp.ClientSession) -> None:
        async with Stranger(b.clock, 46, "hang") as hang:
            client = NodeClient(
                http,
                lambda: b.node.identity,
                b.url,
                b.clock,
                policy=AddressPolicy(allow_loopback=True),
                document_deadline=0.2,
            )
            with pytest.raises(TransportError):
                await client.fetch_document(hang.url)

    run_node(tmp_path, body)


# --- one generic answer ------------------------------------------------------------------------------------


def test_the_error_text_reveals_nothing(tmp_path: Path) -> None:
    """Whatever is at the claimed origin (nothing, a server error naming internal addresses,
    garbage, a redirect, an endless body, a private address), the caller hears the same words."""

    async def body(b: TestNode, http: aiohttp.ClientSession) -> None:
        with socket.socket() as dead:
            dead.bind(("127.0.0.1", 0))
            dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}"  # nothing listens there
            answers = [await post_signed(http, b.url, FOLLOW, b"{}", forged_follow(dead_url, b.url, b.clock))]
        strangers = [Stranger(b.clock, 50 + n, kind) for n, kind in enumerate(("error", "garbage", "redirect", "huge"))]
        strangers[2].redirect_to = strangers[0].url
        for stranger in strangers:
            async with stranger:
                header = stranger.sign("POST", FOLLOW, b.url, b"{}")
                answers.append(await post_signed(http, b.url, FOLLOW, b"{}", header))
        answers.append(
            await post_signed(http, b.url, FOLLOW, b"{}", forged_follow("http://10.9.8.7:5432", b.url, b.clock))
        )
        assert answers == [(503, {"error": {"code": "node.unavailable", "message": CANNOT_CHECK}})] * len(answers)
        for text in ("127.0.0.1", "10.", "5432", "500", "refused", "redirect"):
            assert text not in CANNOT_CHECK

    run_node(tmp_path, body)


# --- throttled and bounded ----------------------------------------------------------------------------------


class HeldClient:
    """A discovery client whose fetches wait until released; counts them. No network at all."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.fetched: list[str] = []
        self.release = asyncio.Event()

    async def request(self, method: str, url: str, path: str, body: bytes = b"", content_type: str = "") -> Any:
        raise AssertionError("not used")

    async def send(self, url: str, path: str, body: bytes) -> Any:
        raise AssertionError("not used")

    async def fetch_document(self, url: str) -> bytes:
        self.fetched.append(url)
        await self.release.wait()
        return node_document(Identity(bytes([7]) * 32), url, int(self.clock()))


def test_fetches_are_bounded_in_number_and_throttled_per_node(tmp_path: Path) -> None:
    async def body(b: TestNode, http: aiohttp.ClientSession) -> None:
        held = HeldClient(b.clock)
        discovery = Discovery(b.node.store, b.clock, held)
        key = bytes(Identity(bytes([7]) * 32).peer_id)
        now = int(b.clock())
        origins = [f"http://127.0.0.1:{9000 + n}" for n in range(MAX_FETCHES + 1)]
        waiting = [asyncio.create_task(discovery.check_key(o, key, now, follow=True)) for o in origins[:MAX_FETCHES]]
        while len(held.fetched) < MAX_FETCHES:  # bounded: each task reaches its fetch in one step
            await asyncio.sleep(0)
        with pytest.raises(UnavailableError) as busy:  # one more origin while 8 are in flight
            await discovery.check_key(origins[-1], key, now, follow=True)
        assert str(busy.value) == CANNOT_CHECK and len(held.fetched) == MAX_FETCHES
        same = asyncio.create_task(discovery.check_key(origins[0], key, now, follow=True))  # joins the one in flight
        held.release.set()
        await asyncio.gather(*waiting, same)
        assert len(held.fetched) == MAX_FETCHES

        # Throttled: a key the document does not list, asked again within 10 s, is not fetched again.
        other = bytes(Identity(bytes([8]) * 32).peer_id)
        with pytest.raises(UnavailableError):
            await discovery.check_key(origins[0], other, now, follow=True)
        assert len(held.fetched) == MAX_FETCHES
        b.clock.advance(10)
        with pytest.raises(Exception) as final:  # fetched again: and it does not list the key
            await discovery.check_key(origins[0], other, int(b.clock()), follow=True)
        assert getattr(final.value, "code", None) == "auth.invalid"
        assert len(held.fetched) == MAX_FETCHES + 1

    run_node(tmp_path, body)
