"""`peerfed demo`: two nodes, two peers, the whole story, narrated; then it cleans up (spec §1, §7.4).

Everything runs on 127.0.0.1 in a temporary folder. Beside what the peers see, it shows what
each node actually holds: public cards, and sealed bytes it cannot read.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import sys
import tempfile
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from peerfed.node.api import NODE
from peerfed.node.app import create_app
from peerfed.node.config import Config
from peerfed.node.runner import NodeRunner
from peerfed.node.service import Node
from peerfed.protocol import Format, Kind, Listing, Terms, Timing, Window
from peerfed.protocol.node_bodies import Emergency, Resource

from .peer import DAY, Peer

__all__ = ["run_demo"]

HELLO = "Hola Ana. Nights are the worst for me lately. Could we talk sometimes?"
WORDS = [
    ("ben", "Thank you for saying yes. Last night I was awake until four."),
    ("ana", "I know those nights. Tell me what they are like for you; I'm listening."),
]


def say(text: str = "", indent: int = 0) -> None:
    stripped = text.lstrip(" ")
    prefix = " " * (indent + len(text) - len(stripped))
    print(textwrap.fill(stripped, 100, initial_indent=prefix, subsequent_indent=prefix) if text else "", flush=True)


def node_says(name: str, text: str) -> None:
    say(f"[node {name} holds] {text}", 6)


class DemoNode:
    def __init__(self, root: Path, name: str, **settings: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.name = name
        self.config = Config(
            data=root / name,
            port=port,
            public_url=self.url,
            name=name,
            synchronous="NORMAL",
            retry_base=0.2,
            **settings,
        )
        self.runner: web.AppRunner | None = None

    async def start(self) -> Node:
        app = create_app(self.config)
        self.runner = NodeRunner(app, handle_signals=False, keepalive_timeout=self.config.idle_timeout)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()
        self.node: Node = app[NODE]
        return self.node

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def mailbox_view(self, peer: Peer) -> list[tuple[int, bytes]]:
        rows = await self.node.store.mailbox_items(bytes(peer.id), 0, 100, self.node.now())
        return [(len(item.raw), item.raw) for item in rows]


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(300):  # at most about 15 s
        if await check():
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the demo stalled waiting for {what}")


async def story(root: Path) -> None:
    a = DemoNode(
        root,
        "Hearing Voices Circle",
        resources=(
            Resource(
                name="Peer warmline",
                contact="0800 000 000 (example)",
                emergency=Emergency.NEVER,
                hours="evenings 18:00-23:00",
            ),
        ),
    )
    b = DemoNode(root, "Night Owls")
    a.config = Config(**{**a.config.__dict__, "federate": (b.url,)})
    say("peerfed demo: two communities, two peers, one conversation no node can read.")
    say()
    say(f"1. Two community nodes start: '{a.name}' at {a.url} and '{b.name}' at {b.url}.")
    await b.start()
    node_a = await a.start()
    await node_a.maintain()
    await until(lambda: _active(node_a, b.url), "federation")
    say("   They federate: A asked, B's open policy accepted. Each signs its requests with its own key.", 0)
    async with aiohttp.ClientSession() as http:
        say()
        say("2. Ana joins A and Ben joins B. Each device makes a key pair; the node learns only the public key.")
        # New keys are encrypted by default (spec §12): each demo device locks them under a passphrase.
        ana = await Peer.create(root / "ana", http, node=a.url, name="Ana", passphrase="ana's demo passphrase")
        ben = await Peer.create(root / "ben", http, node=b.url, name="Ben", passphrase="ben's demo passphrase")
        say("   Each device locks its keys under its person's passphrase (Argon2id).", 0)
        say(f"   Ana is {ana.id.text}", 0)
        say(f"   Ben is {ben.id.text}", 0)
        try:
            await _conversation(a, b, ana, ben)
        finally:
            await ana.close()
            await ben.close()
    await a.stop()
    await b.stop()


async def _active(node: Node, url: str) -> bool:
    status = await node.store.node(url)
    return status is not None and status.status == "active"


async def _conversation(a: DemoNode, b: DemoNode, ana: Peer, ben: Peer) -> None:
    say()
    say("3. Ana offers support, in her own words:")
    listing = Listing(
        kind=Kind.OFFER,
        topics=("panic attacks", "sleepless nights"),
        languages=("es", "en"),
        formats=(Format.TEXT,),
        tz="Europe/Madrid",
        availability=(Window(0b0011111, 18 * 60, 22 * 60),),
        timing=Timing.SOON,
        summary="I have lived with panic attacks for years. I can listen on weekday "
        "evenings, in Spanish or English, by text.",
    )
    offer = await ana.post_listing(listing, 14 * DAY)
    say(f'   offer {offer["id"][:12]}: "{listing.summary}"', 0)
    node_says("A", "the public card Ana chose to publish (topics, languages, times, summary) and its expiry.")

    say()
    say("4. Ben browses from his own node, B, and finds Ana's offer: A pushed it to B.")

    async def found() -> bool:
        return bool(await ben.browse(topic="panic attacks"))

    await until(found, "replication")
    result = (await ben.browse(topic="panic attacks"))[0]
    say(f"   found {result['id'][:12]} by {result['name']} at {result['origin']}", 0)

    say()
    say("5. Ben reaches out. His hello is signed by him, then sealed to Ana's key:")
    say(f'   "{HELLO}"', 0)
    reach = await ben.reach(result["id"], HELLO)
    connection = reach["connection"]

    async def waiting() -> bool:
        return bool(await a.mailbox_view(ana))

    await until(waiting, "delivery to A")
    size, raw = (await a.mailbox_view(ana))[0]
    node_says(
        "A",
        f"one sealed item for Ana's mailbox: {size} bytes, padded; it begins "
        f"{raw[:24].hex()}... It does not know it comes from Ben, that it is a reach-out, or what it says.",
    )
    node_says("B", "that Ben sent something to a mailbox on A, when, and its padded size. Nothing more.")

    say()
    say("6. Ana's client fetches her mailbox, opens the seal and sees the reach-out. She accepts.")
    await ana.sync()
    conns = await ana.connections()
    say(f'   Ana sees: "{conns[0]["hello"]}" (state: {conns[0]["state"]})', 0)
    await ana.respond(connection, True, "Of course, Ben. I'm glad you wrote.")

    async def accepted() -> bool:
        await ben.sync()
        return bool((await ben.connections())[0]["state"] == "accepted")

    await until(accepted, "the acceptance")
    say("   Ben's client shows: accepted.", 0)

    say()
    say("7. They agree on what would help. Ana proposes; the terms hold only once Ben signs the same.")
    terms = Terms(
        helps="Listening without advice, by text, on weekday evenings",
        boundaries=("no phone calls", "either of us can pause for a week"),
        ending="either of us says so; no reason needed",
    )
    await ana.agree(connection, terms)

    async def proposed() -> bool:
        await ben.sync()
        return (await ben.agreement(connection))["pending"] is not None

    await until(proposed, "the proposal")
    signed = await ben.agree(connection, None)
    say(
        f'   Ben countersigns. In force: "{signed["in_force"]["helps"]}"; boundaries: '
        f"{'; '.join(signed['in_force']['boundaries'])}.",
        0,
    )

    say()
    say("8. They talk. Each message is signed, sealed, delivered, opened, and acknowledged (so deleted).")
    for who, text in WORDS:
        sender, reader = (ben, ana) if who == "ben" else (ana, ben)
        await (ana.sync() if who == "ana" else ben.sync())
        await sender.send(connection, text)

        async def arrived(reader: Peer = reader, text: str = text) -> bool:
            await reader.sync()
            return any(m["text"] == text for m in (await reader.messages(connection))["messages"])

        await until(arrived, "a message")
        say(f"   {who.capitalize()}: {text}", 0)

    say()
    say("9. Ben ends the connection, alone and without a reason, and asks Ana's client to erase it.")
    await ben.end(connection, erase=True)

    async def ended() -> bool:
        await ana.sync()
        return bool((await ana.connections())[0]["state"] == "ended")

    await until(ended, "the end")
    say(f"   Ana's client: ended; messages kept: {len((await ana.messages(connection))['messages'])}.", 0)

    say()
    say("10. What the nodes hold now:")
    secrets = [HELLO, terms.helps, *[t for _, t in WORDS]]
    for node in (a, b):
        counts = await node.node.store.counts()
        stored = b"".join(p.read_bytes() for p in node.config.data.rglob("*") if p.is_file())
        leaked = [s for s in secrets if s.encode() in stored]
        node_says(
            node.name,
            f"{counts['listings']} public listing(s), {counts['mailbox']} mailbox item(s) "
            f"waiting; searched its database files for the hello, the terms and the messages: "
            f"{'FOUND ' + str(leaked) if leaked else 'none of them is there'}.",
        )
    say()
    say(
        "Try it by hand: start two nodes with `peerfed serve`, then in two terminals with different "
        "PEERFED_HOME folders: `peerfed id new --node URL`, `peerfed offer ...`, `peerfed browse`, "
        "`peerfed reach ...`, `peerfed accept ...`, `peerfed agree ...`, `peerfed send ...`, `peerfed end ...`."
    )


def run_demo() -> int:
    logging.getLogger("peerfed").setLevel(logging.ERROR)
    root = Path(tempfile.mkdtemp(prefix="peerfed-demo-"))
    try:
        asyncio.run(story(root))
        return 0
    except Exception as exc:
        print(f"the demo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
