"""Live-connection caps are the node's across `peerfed serve --workers N` (spec §13.5, Live
mailbox, R-13.5-21; §13.9, Storage back-ends).

The kernel hands each new connection to either worker. A caller must not hold the cap once per
worker: each worker refuses at the node's cap, whichever worker holds the caller's sockets, and
sockets of a worker that dies stop counting.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import aiohttp
import pytest

from peerfed.node.config import Config
from tests.backends import postgres_server
from tests.conformance.test_suite import run_suite

from .harness import Peer
from .test_process import Home
from .test_workers import POLLS, Workers

pytestmark = pytest.mark.one_backend("workers above one are PostgreSQL's; on SQLite they are refused")

PER_ADDRESS = 4
TRIES = 100  # upgrades asked at most while waiting for both workers to refuse


async def _upgrade(http: aiohttp.ClientSession, url: str) -> tuple[aiohttp.ClientWebSocketResponse | None, str]:
    """A live socket on a new connection (either worker takes it), or None if refused 429; and the worker."""
    try:
        ws = await http.ws_connect(url + "/api/v1/live")
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status == 429, exc
        assert exc.headers is not None
        return None, exc.headers["X-Peerfed-Worker"]
    assert ws._response is not None
    return ws, ws._response.headers["X-Peerfed-Worker"]


Held = list[tuple[aiohttp.ClientWebSocketResponse, str]]  # live sockets and the worker each is on


async def _fill(http: aiohttp.ClientSession, url: str) -> tuple[Held, set[str]]:
    """Upgrade until both workers have refused: the sockets held, by worker, and who refused."""
    held: Held = []
    refused: set[str] = set()
    for _ in range(TRIES):
        ws, worker = await _upgrade(http, url)
        if ws is None:
            refused.add(worker)
            if refused == {"0", "1"}:
                break
        else:
            held.append((ws, worker))
    return held, refused


def test_one_address_holds_the_nodes_cap_of_live_sockets_in_all_not_one_per_worker(tmp_path: Path) -> None:
    workers = Workers(
        tmp_path / "n",
        postgres_server().fresh_database(),
        "--max-live-per-address",
        str(PER_ADDRESS),
        "--live-auth-grace",
        "120",
    )

    async def scenario() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            await workers.both_up(http)
            held, refused = await _fill(http, workers.url)
            # Both workers refused, and one of them held fewer than the cap itself: it refused
            # for the other's sockets.
            assert refused == {"0", "1"} and len(held) == PER_ADDRESS, (refused, [w for _, w in held])
            # One closed is one free, on whichever worker asks next.
            closed, _ = held.pop()
            await closed.close()
            for _ in range(POLLS):
                ws, worker = await _upgrade(http, workers.url)
                if ws is not None:
                    held.append((ws, worker))
                    break
                await asyncio.sleep(0.05)
            assert len(held) == PER_ADDRESS
            # A worker that dies takes its sockets' count with it: the parent starts another,
            # and the address may again hold the cap in all.
            by_worker = {w: [ws for ws, at in held if at == w] for w in ("0", "1")}
            dying = max(by_worker, key=lambda w: len(by_worker[w]))
            pid = _pid_of(workers, dying)
            os.kill(pid, signal.SIGKILL)
            for ws in by_worker[dying]:
                await asyncio.wait_for(ws.receive(), POLLS * 0.05)  # its end, as the process died
            await workers.both_up(http)
            kept = [(ws, w) for ws, w in held if w != dying]
            more, refused = await _fill(http, workers.url)
            assert refused == {"0", "1"} and len(kept) + len(more) == PER_ADDRESS, (len(kept), len(more))
            for ws, _ in kept + more:
                await ws.close()

    try:
        asyncio.run(scenario())
    finally:
        assert workers.stop() == 0, workers.log.read_text()


def test_a_member_holds_the_nodes_cap_of_live_readers_in_all_not_one_per_worker(tmp_path: Path) -> None:
    workers = Workers(tmp_path / "n", postgres_server().fresh_database(), "--max-live-per-peer", "2")

    async def scenario() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            await workers.both_up(http)
            ana = await Peer("ana", Home(workers.url), http, 1).join()  # type: ignore[arg-type]
            reading: list[aiohttp.ClientWebSocketResponse] = []
            refused: set[str] = set()
            for _ in range(TRIES):
                ws, worker = await _upgrade(http, workers.url)
                assert ws is not None
                await ws.send_json({"type": "auth", "token": ana.api.token})
                answer = await ws.receive_json(timeout=POLLS * 0.05)
                if answer["type"] == "ready":
                    reading.append(ws)
                    continue
                assert (answer["type"], answer["code"]) == ("error", "rate.limited"), answer
                refused.add(worker)
                await ws.close()
                if refused == {"0", "1"}:
                    break
            assert refused == {"0", "1"} and len(reading) == 2
            for ws in reading:
                await ws.close()

    try:
        asyncio.run(scenario())
    finally:
        assert workers.stop() == 0, workers.log.read_text()


def _pid_of(workers: Workers, worker: str) -> int:
    """The process id of worker ``worker`` (started with --worker-of and its number)."""
    for pid in workers.children():
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"--worker-of" in args and args[args.index(b"--worker-of") + 1].decode() == worker:
            return pid
    raise AssertionError(f"no worker {worker} among {workers.children()}")


def test_two_workers_pass_every_must_case_of_the_conformance_suite(tmp_path: Path) -> None:
    """`peerfed conformance` against `--workers 2`: the suite's requests land on either worker,
    and the node behaves as one (its limits, caps, single-use challenges, replay windows)."""
    bits = str(Config.first_contact_work_bits)  # the default the suite meets on any node
    workers = Workers(tmp_path / "n", postgres_server().fresh_database(), "--first-contact-work-bits", bits)

    async def scenario() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            await workers.both_up(http)
        status, out = await run_suite(workers.url, "--json")
        report = json.loads(out)
        failed = [r for r in report["results"] if r["outcome"] != "PASS"]
        assert (status, failed) == (0, []), out

    try:
        asyncio.run(scenario())
    finally:
        assert workers.stop() == 0, workers.log.read_text()
