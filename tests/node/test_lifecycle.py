"""Safe start and stop of `peerfed serve` (spec §13.1): one node per data folder, a taken port, SIGTERM drains.

The exit codes are the runner's EXIT_* constants: 3 when the data folder is another node's,
4 when the address cannot be bound, 5 when the key or database cannot be used, 0 after a drained stop.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from peerfed.node.runner import EXIT_CANNOT_LISTEN, EXIT_DATA_IN_USE, EXIT_DATA_UNUSABLE
from tests.processes import NodeProcess, NodeProcesses

from .harness import Peer
from .test_process import Home

POLLS = 400  # 50 ms apart: the bound on waiting for a line in a node's log


def serve(data: Path, *args: str, pass_fds: tuple[int, ...] = ()) -> subprocess.CompletedProcess[str]:
    """`peerfed serve` run to its end (it is expected to refuse to start)."""
    return subprocess.run(
        [sys.executable, "-m", "peerfed", "serve", "--data", str(data), *args],
        capture_output=True,
        text=True,
        timeout=60,
        pass_fds=pass_fds,
    )


async def logged(node: NodeProcess, text: str) -> str:
    """Wait (bounded) until the node's current life has written ``text``; its output so far."""
    for _ in range(POLLS):
        output = node.output()
        if text in output:
            return output
        await asyncio.sleep(0.05)
    raise AssertionError(f"{node.name} never logged {text!r}:\n{node.output()}")


def test_a_second_node_on_the_same_data_folder_is_refused_and_the_first_keeps_serving(
    tmp_path: Path, node_processes: NodeProcesses
) -> None:
    async def scenario() -> None:
        data = tmp_path / "node"
        node = node_processes(data)
        await node.start()
        second = serve(data, "--port", str(node.port))
        assert second.returncode == EXIT_DATA_IN_USE
        assert f"the data folder {data} is in use by another peerfed serve" in second.stderr
        assert "Traceback" not in second.stderr
        assert node.proc is not None and node.proc.poll() is None
        await node.answering()  # the first still serves
        assert node.stop() == 0
        # The lock dies with its holder: a SIGKILLed node leaves none behind.
        await node.start()
        node.kill()
        await node.start()
        assert node.stop() == 0

    asyncio.run(scenario())


def test_a_taken_port_is_a_clear_message_and_exit_code_before_anything_starts(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        out = serve(tmp_path / "node", "--port", str(port))
    assert out.returncode == EXIT_CANNOT_LISTEN
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in out.stderr
    assert "Traceback" not in out.stderr and " ready at " not in out.stderr
    assert not (tmp_path / "node" / "node.sqlite3").exists()  # it failed before opening the database


def test_ready_is_logged_only_once_the_store_is_migrated_and_the_socket_serves(
    tmp_path: Path, node_processes: NodeProcesses
) -> None:
    async def scenario() -> None:
        node = node_processes(tmp_path / "node")
        await node.start()
        output = await logged(node, " ready at ")
        assert output.index("store open and migrated") < output.index(" ready at ")
        assert node.stop() == 0

    asyncio.run(scenario())


def test_sigterm_finishes_the_request_in_flight_then_exits_zero(tmp_path: Path, node_processes: NodeProcesses) -> None:
    async def scenario() -> None:
        node = node_processes(tmp_path / "node")
        await node.start()
        async with aiohttp.ClientSession() as http:
            ana = await Peer("ana", Home(node.url), http, 1).join()  # type: ignore[arg-type]
        bundle = ana.bundle
        reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
        writer.write(
            (
                f"PUT /api/v1/keys HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ana.api.token}\r\n"
                f"Content-Length: {len(bundle)}\r\nExpect: 100-continue\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        # "100 Continue" comes from the node once it has routed the request: it is in flight.
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100")
        assert node.proc is not None
        node.proc.send_signal(signal.SIGTERM)
        await logged(node, "stopping: no new connections")
        writer.write(bundle)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        writer.close()
        assert node.proc.wait(timeout=30) == 0
        assert "node stopped cleanly" in node.output()
        await node.start()  # and what it accepted while stopping was stored
        async with aiohttp.ClientSession() as http:
            ben = await Peer("ben", Home(node.url), http, 2).join()  # type: ignore[arg-type]
            assert (await ben.api.keys(ana.id.text))["key_bundle"]
        assert node.stop() == 0

    asyncio.run(scenario())


def test_sigterm_closes_live_sockets_with_going_away_and_exits_without_waiting_them_out(
    tmp_path: Path, node_processes: NodeProcesses
) -> None:
    # A signed-in live reader never hangs up; the stopping node must close it (1001) rather than
    # let the drain wait on it, or a node with a browser tab open would never stop on SIGTERM.
    async def scenario() -> None:
        node = node_processes(tmp_path / "node")
        await node.start()
        async with aiohttp.ClientSession() as http:
            ana = await Peer("ana", Home(node.url), http, 1).join()  # type: ignore[arg-type]
            async with http.ws_connect(node.url + "/api/v1/live") as ws:
                await ws.send_json({"type": "auth", "token": ana.api.token, "after": 0})
                assert (await ws.receive_json(timeout=30))["type"] == "ready"
                assert node.proc is not None
                node.proc.send_signal(signal.SIGTERM)
                closing = await ws.receive(timeout=30)
                assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closing
                assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
        assert node.proc.wait(timeout=30) == 0
        assert "node stopped cleanly" in node.output()

    asyncio.run(scenario())


def test_an_unusable_key_or_database_is_one_line_and_exit_5(tmp_path: Path) -> None:
    for name, why in (("node.key", "does not hold a 32-byte hex seed"), ("node.sqlite3", "cannot open the database")):
        data = tmp_path / name.replace(".", "-")
        data.mkdir()
        (data / name).write_text("not what the node wrote\n")
        (data / name).chmod(0o600)
        with socket.create_server(("127.0.0.1", 0)) as held:
            out = serve(data, "--listen-fd", str(held.fileno()), pass_fds=(held.fileno(),))
        assert out.returncode == EXIT_DATA_UNUSABLE, out.stderr
        last = out.stderr.splitlines()[-1]  # after any log lines of the start so far
        assert last.startswith("error: ") and why in last and "Traceback" not in out.stderr, out.stderr
