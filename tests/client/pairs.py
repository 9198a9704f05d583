"""Two peers on one real node, already connected: the start of the device-side CLI tests.

Both peers use the same node process, so a message is in the other's mailbox as soon as the send
returns, and a test can stop and restart that one node to take everything offline.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

from tests.client.test_cli_story import Cli, eventually
from tests.processes import NodeProcess, NodeProcesses

__all__ = ["Cli", "bring_back", "connected", "eventually", "one_node", "take_offline"]


def one_node(node_processes: NodeProcesses, tmp_path: Path) -> NodeProcess:
    """A started node process; the ``node_processes`` fixture stops it however the test ends."""
    node = node_processes(tmp_path / "node", name="N")
    asyncio.run(node.start())
    return node


def connected(
    node: NodeProcess, tmp_path: Path, *, ana_name: str = "Ana", ben_name: str = "Ben"
) -> tuple[Cli, Cli, str]:
    """Ana offers, Ben reaches out, Ana accepts: the two peers and their connection's id."""
    ana, ben = Cli(tmp_path / "ana"), Cli(tmp_path / "ben")
    ana.json("id", "new", "--node", node.url, "--name", ana_name)
    ben.json("id", "new", "--node", node.url, "--name", ben_name)
    offer = ana.json("offer", "--topic", "night shifts", "--summary", "I listen after night shifts.")
    eventually(lambda: ben.json("browse")["listings"], "the offer")
    connection: str = ben.json("reach", offer["id"][:8], "--hello", "Hi")["connection"]
    eventually(lambda: ana.json("connections")["connections"], "the reach-out")
    ana.json("accept", connection[:8])
    eventually(lambda: ben.json("connections")["connections"][0]["state"] == "accepted", "the acceptance")
    return ana, ben, connection


def take_offline(node: NodeProcess, how: signal.Signals = signal.SIGTERM) -> None:
    """End the node's process and give up its port, so a client's connection is refused at once.

    (With the listening socket still held, the kernel would accept connections nobody answers,
    and every client call would wait for its timeout.)
    """
    node.stop(how)
    node.sock.close()


async def bring_back(node: NodeProcess) -> None:
    """Listen on the same port again and start the node's next life on it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", node.port))
    sock.listen(128)
    node.sock = sock
    node.args[node.args.index("--listen-fd") + 1] = str(sock.fileno())
    await node.start()
