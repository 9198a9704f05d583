"""Federation over https through a real nginx (spec §13.1, §13.7 Discovery): two nodes, each behind TLS.

The test makes its own certificate authority, puts each node behind the system's nginx on a
loopback port with a certificate for 127.0.0.1, and tells the nodes (``--ca-file``) and the peers'
command line (PEERFED_CA_FILE) to trust that CA. Every URL either side uses is https through the
proxy: the nodes' public URLs, the follows, the peers' home nodes. The nginx config is the one
docs/operating.md shows. A missing nginx fails the test with how to install it (tests/tlsproxy.py).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from peerfed.node.config import ConfigError, load_config
from peerfed.node.federation.addresses import AddressPolicy, guarded_session
from peerfed.node.federation.transport import AddressRefused, NodeClient
from peerfed.protocol import Identity
from tests.client.test_cli_story import Cli, question_then_answer
from tests.processes import NodeProcess, NodeProcesses
from tests.tlsproxy import Authority, Nginx, Site

HELLO = "I saw your offer; evenings are the hardest for me"
WORDS = ["Thank you for answering so quickly", "I am glad you wrote; tell me about your evenings"]
POLLS = 300  # 100 ms apart: the bound on waiting for background federation work


@dataclass
class Proxied:
    """Nodes behind nginx: ``urls[i]`` is the https address of ``nodes[i]``."""

    authority: Authority
    nginx: Nginx
    nodes: list[NodeProcess]
    urls: list[str]

    def cli(self, home: Path) -> Cli:
        """A peer's terminal that trusts the test CA."""
        cli = Cli(home)
        cli.env["PEERFED_CA_FILE"] = str(self.authority.ca)
        return cli


def behind_nginx(tmp_path: Path, node_processes: NodeProcesses, count: int, *extra: str) -> Iterator[Proxied]:
    """``count`` nodes, each behind nginx with TLS, following each other; stops nginx however it ends.

    Each node runs with its public URL at its https site, trusts the test CA for other nodes, and
    trusts loopback (nginx) to name the real client in X-Forwarded-For.
    """
    authority = Authority.make(tmp_path / "ca")
    sites = [Site() for _ in range(count)]
    nginx: Nginx | None = None
    try:
        nodes = []
        for i, site in enumerate(sites):
            others = [f"--federate={s.url}" for s in sites if s is not site]
            node = node_processes(
                tmp_path / f"node-{i}",
                *("--public-url", site.url, "--trusted-proxies", "127.0.0.1", "--ca-file", str(authority.ca)),
                *others,
                *extra,
                name=f"N{i}",
            )
            site.upstream_port = node.port
            nodes.append(node)
        nginx = Nginx(tmp_path / "nginx", authority, sites)
        nginx.start()
        for node in nodes:
            node.spawn()
        asyncio.run(_answering(nodes))
        nginx.wait_answering()
        yield Proxied(authority, nginx, nodes, [s.url for s in sites])
    finally:
        if nginx is not None:
            nginx.stop()
        for site in sites:
            site.sock.close()


async def _answering(nodes: list[NodeProcess]) -> None:
    await asyncio.gather(*(n.answering() for n in nodes))


def eventually(check: Callable[[], Any], what: str) -> Any:
    """Poll (bounded) until the nodes' background work is done."""
    for _ in range(POLLS):
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def federation(node: NodeProcess) -> dict[str, str]:
    """The node's federation list, as its operator sees it: URL -> status."""
    out = subprocess.run(
        [sys.executable, "-m", "peerfed", "admin", "--data", str(node.data), "--json", "federation", "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return {n["url"]: n["status"] for n in json.loads(out.stdout)}


@pytest.fixture
def two(tmp_path: Path, node_processes: NodeProcesses) -> Iterator[Proxied]:
    yield from behind_nginx(tmp_path, node_processes, 2)


def test_two_nodes_behind_nginx_federate_and_two_peers_talk_over_https(two: Proxied, tmp_path: Path) -> None:
    a, b = two.nodes
    a_url, b_url = two.urls
    # The nodes follow each other at their https addresses, through the proxy, trusting the CA.
    eventually(lambda: federation(a).get(b_url) == "active", "A to federate with B over https")
    eventually(lambda: federation(b).get(a_url) == "active", "B to federate with A over https")
    assert set(federation(a)) == {b_url} and set(federation(b)) == {a_url}  # no http address anywhere

    ana, ben = two.cli(tmp_path / "ana"), two.cli(tmp_path / "ben")
    ana_id, ben_id = (
        cli.json("id", "new", "--node", url, "--name", name)
        for cli, url, name in ((ana, a_url, "Ana"), (ben, b_url, "Ben"))
    )
    assert (ana_id["node"], ben_id["node"]) == (a_url, b_url)
    offer = ana.json("offer", "--topic", "loneliness", "--summary", "I can listen in the evenings, by text.")

    found = eventually(lambda: ben.json("browse", "--topic", "loneliness")["listings"], "Ana's offer on B")
    assert [(f["id"], f["origin"], f["name"]) for f in found] == [(offer["id"], a_url, "Ana")]
    connection = ben.json("reach", offer["id"][:8], "--hello", HELLO)["connection"]

    listed = eventually(lambda: ana.json("connections")["connections"], "Ben's reach-out on A")
    assert (listed[0]["hello"], listed[0]["name"]) == (HELLO, "Ben")
    assert ana.json("accept", connection[:8], "--reply", "Of course.")["state"] == "accepted"
    eventually(lambda: ben.json("connections")["connections"][0]["state"] == "accepted", "the acceptance on B")

    ben.json("send", connection[:8], WORDS[0])
    eventually(lambda: ana.json("read", connection[:8])["messages"], "Ben's message on A")
    ana.json("send", connection[:8], WORDS[1])
    messages = eventually(
        lambda: m if len(m := ben.json("read", connection[:8])["messages"]) == 2 else None, "Ana's answer on B"
    )
    assert [(m["from"], m["text"]) for m in messages] == question_then_answer(messages, ben_id["peer"], ana_id["peer"])
    assert {(m["from"], m["text"]) for m in messages} == {("me", WORDS[0]), ("them", WORDS[1])}
    # Everything went through the proxy: nginx logged the federation and the client calls.
    access = (two.nginx.folder / "access.log").read_text()
    assert "/federation/v1/" in access and "/api/v1/send" in access


@pytest.fixture
def one(tmp_path: Path, node_processes: NodeProcesses) -> Iterator[Proxied]:
    yield from behind_nginx(tmp_path, node_processes, 1)


def test_behind_nginx_the_real_client_address_counts_and_live_sockets_upgrade(one: Proxied, tmp_path: Path) -> None:
    (url,) = one.urls

    async def scenario() -> None:
        connector = aiohttp.TCPConnector(ssl=one.authority.context())
        async with aiohttp.ClientSession(connector=connector) as http:
            # A challenge is limited per address (join_per_hour x 3 = 60 an hour, spec §13.8). nginx
            # appends the address it saw to X-Forwarded-For; the node, trusting nginx, counts the
            # one before it. One client's 60 use up its own allowance and nobody else's.
            stranger = {"X-Forwarded-For": "203.0.113.7"}
            for _ in range(60):
                async with http.post(url + "/api/v1/challenge", headers=stranger) as answer:
                    assert answer.status == 200
            async with http.post(url + "/api/v1/challenge", headers=stranger) as answer:
                assert (answer.status, (await answer.json())["error"]["code"]) == (429, "rate.limited")
            async with http.post(url + "/api/v1/challenge") as answer:
                assert answer.status == 200  # the next client, at another address, is not locked out
            # The live socket's WebSocket upgrade passes through the proxy: the node itself answers.
            async with http.ws_connect(url + "/api/v1/live") as ws:
                sock = ws.get_extra_info("socket")
                await ws.send_json({"type": "auth", "token": "not-a-token", "after": 0})
                answer = await ws.receive_json(timeout=10)
                assert answer["type"] == "error" and answer["code"].startswith("auth.")
            # A closed socket's TLS goodbye runs on after the session; the loop must not end first,
            # or the socket is left open and is collected, with a warning, in whatever test runs next.
            for _ in range(450):  # past asyncio's own 30 s bound on a TLS shutdown
                if sock.fileno() == -1:
                    break
                await asyncio.sleep(0.1)
            assert sock.fileno() == -1

    asyncio.run(scenario())

    # Certificates are checked: without the CA, the command line cannot reach the node.
    stranger_cli = Cli(tmp_path / "no-ca")
    stranger_cli.env.pop("PEERFED_CA_FILE", None)
    refused = stranger_cli.run("id", "new", "--node", url, "--json", ok=False)
    error = json.loads(refused.stderr)["error"]
    assert refused.returncode == 1 and error["code"] == "node.unavailable"
    assert "CERTIFICATE_VERIFY_FAILED" in error["message"]
    # And a CA file that is not one is a clear error of its own, before anything is sent.
    not_pem = tmp_path / "not-a-ca.pem"
    not_pem.write_text("not a certificate", encoding="utf-8")
    stranger_cli.env["PEERFED_CA_FILE"] = str(not_pem)
    assert stranger_cli.error("id", "new", "--node", url) == "local.ca_file"


def test_a_ca_file_the_node_cannot_use_stops_it_at_start(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigError, match=r"^PEERFED_CA_FILE: cannot use .*missing\.pem"):
        load_config(env={"PEERFED_CA_FILE": str(missing)})
    junk = tmp_path / "junk.pem"
    junk.write_text("hello", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^--ca-file: .*junk\.pem' is not a file of PEM certificates"):
        load_config(env={}, flags={"ca_file": str(junk)})
    served = subprocess.run(
        [sys.executable, "-m", "peerfed", "serve", "--data", str(tmp_path / "node"), "--ca-file", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert served.returncode == 2 and served.stderr.count("\n") == 1 and "--ca-file" in served.stderr
    assert not (tmp_path / "node").exists()  # refused before anything was made


def test_a_node_at_an_https_loopback_address_still_refuses_plain_http_to_other_hosts() -> None:
    config = load_config(env={}, flags={"public_url": "https://127.0.0.1:8443"})  # as the nodes above run
    policy = AddressPolicy.for_config(config)
    policy.check_url("https://127.0.0.1:9")  # its loopback neighbours, as in the test above

    async def refused() -> None:
        async with guarded_session(policy) as session:
            client = NodeClient(session, lambda: Identity(bytes(32)), config.url, time.time, policy=policy)
            for url in ("http://node.example", "http://93.184.216.34", "http://[2606:4700::1111]"):
                # Refused before any connection (nothing listens there), with the typed error.
                with pytest.raises(AddressRefused, match="plain http") as caught:
                    await client.fetch_document(url)
                assert caught.value.code == "node.unavailable"
                with pytest.raises(AddressRefused, match="plain http"):
                    await client.send(url, "/federation/v1/batch", b"\x90")

    asyncio.run(refused())
