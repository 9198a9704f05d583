"""`peerfed serve --workers N` (spec §13.9, Storage back-ends; Workers): N processes, one port, one database.

Each answer of a worker names it (X-Peerfed-Worker), so a test sends until both have taken
requests: what one worker does, the other must see, whichever took the live socket.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from peerfed.protocol import Context, Listing, Message, open_signed
from peerfed.protocol.work import solve_work
from tests.backends import postgres_server
from tests.processes import children_of

from .harness import Peer
from .test_process import Home

pytestmark = pytest.mark.one_backend("workers above one are PostgreSQL's; on SQLite they are refused")

SERVE = [sys.executable, "-m", "peerfed", "serve", "--data"]
POLLS = 400  # 50 ms apart: 20 s in all, the bound on waiting for both workers or a notice


def test_workers_on_sqlite_are_refused_with_why(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "peerfed", "serve", "--data", str(tmp_path / "n"), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "needs a PostgreSQL database" in out.stderr.splitlines()[-1]
    assert not (tmp_path / "n" / "node.sqlite3").exists()


class Workers:
    """`peerfed serve --workers 2` on a held socket, its log in a file."""

    def __init__(self, data: Path, address: str, *more: str) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.log = data.parent / "workers.log"
        settings = ["--database", address, "--workers", "2", "--first-contact-work-bits", "0", *more, "--public-url"]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*SERVE, str(data), *settings, self.url, "--listen-fd", str(self.sock.fileno())],
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(self.sock.fileno(),),
            )

    async def both_up(self, http: aiohttp.ClientSession) -> None:
        seen: set[str] = set()
        for _ in range(POLLS):
            try:
                async with http.get(self.url + "/healthz") as response:
                    seen.add(response.headers["X-Peerfed-Worker"])
            except aiohttp.ClientConnectionError:
                pass
            if seen == {"0", "1"}:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"workers answering: {seen}\n{self.log.read_text()}")

    def leads(self) -> int:
        return self.log.read_text().count("runs the background rounds")

    def children(self) -> list[int]:
        return children_of(self.process.pid)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.sock.close()
        return code


def test_two_workers_share_mail_sessions_and_one_set_of_background_rounds(tmp_path: Path) -> None:
    workers = Workers(tmp_path / "n", postgres_server().fresh_database())

    async def scenario() -> None:
        # A new connection per request, so the kernel hands each to either worker.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            await workers.both_up(http)
            home = Home(workers.url)
            ana = await Peer("ana", home, http, 1).join()  # type: ignore[arg-type]
            ben = await Peer("ben", home, http, 2).join()  # type: ignore[arg-type]
            async with http.ws_connect(workers.url + "/api/v1/live") as live:
                await live.send_json({"type": "auth", "token": ana.api.token})
                assert (await live.receive_json())["type"] == "ready"
                # Ben sends until each worker has taken two of his messages: at least two were
                # taken by the worker that does not hold ana's live socket.
                sent: dict[str, str] = {}
                by_worker: dict[str, int] = {}
                for n in range(40):
                    _, sealed = ben.seal_to(ana, Message(ana.id, b"\x07" * 16, n + 1, f"note {n}"))
                    async with http.post(
                        workers.url + "/api/v1/send",
                        data=sealed.raw,
                        headers={"Authorization": f"Bearer {ben.api.token}"},
                    ) as response:
                        assert response.status in (200, 201, 202), await response.text()
                        worker = response.headers["X-Peerfed-Worker"]
                    by_worker[worker] = by_worker.get(worker, 0) + 1
                    sent[sealed.id.hex()] = worker
                    if min(by_worker.get("0", 0), by_worker.get("1", 0)) >= 2:
                        break
                assert min(by_worker.values()) >= 2 and len(by_worker) == 2, by_worker
                heard: set[str] = set()
                while heard != set(sent):
                    message = await asyncio.wait_for(live.receive_json(), POLLS * 0.05)
                    if message["type"] == "item":
                        heard.add(message["id"])
                        assert base64.b64decode(message["sealed"])  # the bytes, as delivered
            # Ana takes her identity over to another device: her old token is refused by both
            # workers at once, though each had it cached.
            old = ana.api.token
            answers: dict[str, int] = {}
            while len(answers) < 2:  # each worker has answered the old token once (and cached it)
                async with http.get(workers.url + "/api/v1/mailbox", headers={"Authorization": f"Bearer {old}"}) as r:
                    answers[r.headers["X-Peerfed-Worker"]] = r.status
            assert set(answers.values()) == {200}
            await ana.api.sign_in(ana.identity, now=ana.now(), device=b"\x02" * 16, take_over=True)
            refused: dict[str, str] = {}
            while len(refused) < 2:
                async with http.get(workers.url + "/api/v1/mailbox", headers={"Authorization": f"Bearer {old}"}) as r:
                    assert r.status == 403, (r.headers["X-Peerfed-Worker"], await r.text())
                    refused[r.headers["X-Peerfed-Worker"]] = (await r.json())["error"]["code"]
            assert set(refused.values()) == {"auth.moved"}
        assert workers.leads() == 1  # one worker runs the outbox, upkeep and purge rounds

        # Kill whichever child leads: the other takes the rounds over, and the parent starts a
        # new child in its place.
        leader = next(pid for pid in workers.children() if _leads(pid, workers))
        os.kill(leader, signal.SIGKILL)
        for _ in range(POLLS):
            if workers.leads() == 2 and len(workers.children()) == 2:
                break
            await asyncio.sleep(0.05)
        assert workers.leads() == 2 and len(workers.children()) == 2, workers.log.read_text()

    try:
        asyncio.run(scenario())
    finally:
        assert workers.stop() == 0, workers.log.read_text()


def test_a_limit_is_counted_once_across_workers_however_a_caller_spreads_its_requests(tmp_path: Path) -> None:
    """Ana may publish 6 listings an hour. Each request on a new connection lands on either worker;
    she keeps publishing until both have refused her, and 6 were accepted in all, not 6 each."""
    workers = Workers(tmp_path / "n", postgres_server().fresh_database(), "--listings-per-hour", "6")

    async def scenario() -> dict[str, list[int]]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            await workers.both_up(http)
            ana = await Peer("ana", Home(workers.url), http, 1).join()  # type: ignore[arg-type]

            def listing(n: int) -> bytes:
                fields: dict[str, Any] = {"kind": "offer", "topics": ("grief",), "languages": ("en",)}
                fields |= {"formats": ("text",), "timing": "soon", "summary": f"offer {n}"}
                return ana.signed(Listing(**fields)).raw

            return await _until_both_refuse(http, workers.url + "/api/v1/listings", ana.api.token, listing)

    try:
        answers = asyncio.run(scenario())
    finally:
        assert workers.stop() == 0, workers.log.read_text()
    taken = _taken(answers)
    assert len(taken) == 6 and set(taken) == {201}, answers


async def _until_both_refuse(
    http: aiohttp.ClientSession, url: str, token: str | None, body: Callable[[int], bytes]
) -> dict[str, list[int]]:
    """POST body(0), body(1), ... to ``url`` (a new connection each: either worker takes it) until
    both workers have answered rate.limited, at most 100 times; each worker's statuses."""
    answers: dict[str, list[int]] = {"0": [], "1": []}
    for n in range(100):
        async with http.post(url, data=body(n), headers={"Authorization": f"Bearer {token}"}) as r:
            answers[r.headers["X-Peerfed-Worker"]].append(r.status)
            if r.status == 429:
                assert (await r.json())["error"]["code"] == "rate.limited"
        if all(429 in statuses for statuses in answers.values()):
            break
    return answers


def _taken(answers: dict[str, list[int]]) -> list[int]:
    """The statuses of the requests taken, once both workers have refused some."""
    assert all(429 in statuses for statuses in answers.values()), answers
    return [status for statuses in answers.values() for status in statuses if status != 429]


class Machine:
    """`peerfed serve` as one of several machines behind a load balancer: a data folder of its
    own with a copy of the node key, the shared database, the balancer's public address."""

    def __init__(self, data: Path, address: str, public_url: str | None = None) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.log = data.parent / f"{data.name}.log"
        settings = ["--database", address, "--first-contact-work-bits", "0", "--public-url", public_url or self.url]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*SERVE, str(data), *settings, "--listen-fd", str(self.sock.fileno())],
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(self.sock.fileno(),),
            )

    async def up(self, http: aiohttp.ClientSession) -> None:
        for _ in range(POLLS):
            try:
                async with http.get(self.url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
        raise AssertionError(self.log.read_text())

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.sock.close()
        return code


def test_two_machines_with_one_node_key_and_one_database_serve_as_one_node(tmp_path: Path) -> None:
    """No --workers: two processes, each its own data folder (as on two machines), the second
    with a copy of the first's node key. Mail handed to one reaches a live reader on the other,
    a session opened on one is honoured by the other, one of them leads."""
    address = postgres_server().fresh_database()
    one = Machine(tmp_path / "one", address)
    machines = [one]

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            await one.up(http)
            (tmp_path / "two").mkdir(mode=0o700)
            shutil.copy2(tmp_path / "one" / "node.key", tmp_path / "two" / "node.key")
            two = Machine(tmp_path / "two", address, public_url=one.url)  # the balancer's address
            machines.append(two)
            await two.up(http)
            signers = []
            for machine in machines:  # both sign the node's document with the one node key
                async with http.get(machine.url + "/.well-known/peerfed") as r:
                    raw = base64.b64decode((await r.json())["document"])
                signers.append(open_signed(raw, context=Context.NODE_DOCUMENT, now=int(time.time())).author)
            assert signers[0] == signers[1]
            home = Home(one.url)
            ana = await Peer("ana", home, http, 1).join()  # type: ignore[arg-type]
            ben = await Peer("ben", home, http, 2).join()  # type: ignore[arg-type]
            async with http.ws_connect(one.url + "/api/v1/live") as live:
                await live.send_json({"type": "auth", "token": ana.api.token})
                assert (await live.receive_json())["type"] == "ready"
                # Ben's next request reaches the second machine: his session, opened on the
                # first, is honoured there, and the item reaches Ana's live socket on the first.
                _, sealed = ben.seal_to(ana, Message(ana.id, b"\x07" * 16, 1, "across machines"))
                headers = {"Authorization": f"Bearer {ben.api.token}"}
                async with http.post(two.url + "/api/v1/send", data=sealed.raw, headers=headers) as r:
                    assert r.status in (200, 201, 202), await r.text()
                message = await asyncio.wait_for(live.receive_json(), POLLS * 0.05)
                assert message["type"] == "item" and message["id"] == sealed.id.hex()
        leads = [m.log.read_text().count("runs the background rounds") for m in machines]
        assert sorted(leads) == [0, 1], leads

    try:
        asyncio.run(scenario())
    finally:
        codes = [m.stop() for m in machines]
    assert codes == [0] * len(machines), [m.log.read_text() for m in machines]


def test_a_senders_quota_for_one_mailbox_is_counted_once_across_workers(tmp_path: Path) -> None:
    """Ben may hand in 3 items an hour for Ana's mailbox. The workers name him under one secret
    their parent gave them, so they count his items together: 3 in all, not 3 each."""
    settings = ("--mailbox-items-per-sender", "3")
    workers = Workers(tmp_path / "n", postgres_server().fresh_database(), *settings)

    async def scenario() -> dict[str, list[int]]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            await workers.both_up(http)
            home = Home(workers.url)
            ana = await Peer("ana", home, http, 1).join()  # type: ignore[arg-type]
            ben = await Peer("ben", home, http, 2).join()  # type: ignore[arg-type]

            def note(n: int) -> bytes:
                return ben.seal_to(ana, Message(ana.id, b"\x07" * 16, n + 1, f"note {n}"))[1].raw

            return await _until_both_refuse(http, workers.url + "/api/v1/send", ben.api.token, note)

    try:
        answers = asyncio.run(scenario())
    finally:
        assert workers.stop() == 0, workers.log.read_text()
    assert len(_taken(answers)) == 3, answers


def test_a_first_contact_taken_by_one_worker_is_known_to_the_other(tmp_path: Path) -> None:
    """Ben proves work for his first message into Ana's mailbox once: the worker that took it
    tells the other, which then takes his next ones without asking again (auth.work)."""
    workers = Workers(tmp_path / "n", postgres_server().fresh_database(), "--first-contact-work-bits", "8")

    async def scenario() -> tuple[str, dict[str, list[int]]]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            await workers.both_up(http)
            home = Home(workers.url)
            ana = await Peer("ana", home, http, 1).join()  # type: ignore[arg-type]
            ben = await Peer("ben", home, http, 2).join()  # type: ignore[arg-type]

            async def send(n: int, work: bool) -> tuple[str, int]:
                sealed = ben.seal_to(ana, Message(ana.id, b"\x07" * 16, n + 1, f"note {n}"))[1]
                headers = {"Authorization": f"Bearer {ben.api.token}"}
                if work:
                    headers["X-Peerfed-Work"] = solve_work(sealed.id, 8).hex()
                async with http.post(workers.url + "/api/v1/send", data=sealed.raw, headers=headers) as answer:
                    return answer.headers["X-Peerfed-Worker"], answer.status

            first, status = await send(0, True)
            assert status == 202
            # Then without work, on new connections, until the other worker has taken one. A
            # notice takes a moment: a refusal there is allowed only until it has been heard.
            statuses: dict[str, list[int]] = {}
            for n in range(1, POLLS):
                worker, status = await send(n, False)
                statuses.setdefault(worker, []).append(status)
                if worker != first and status == 202:
                    break
                await asyncio.sleep(0.05)
            return first, statuses

    try:
        first, statuses = asyncio.run(scenario())
    finally:
        assert workers.stop() == 0, workers.log.read_text()
    other = next(w for w in statuses if w != first)
    assert statuses[other][-1] == 202, statuses  # taken without work by the worker that never saw it
    assert set(statuses.get(first, [])) <= {202}, statuses  # the first never asked again


def _leads(pid: int, workers: Workers) -> bool:
    """Whether ``pid`` holds the rounds' advisory lock (PostgreSQL's pg_locks names the backend's
    client port, not the worker: the worker is found by its connections' client pids instead)."""
    import psycopg

    lock = 0x7065657266656401
    with psycopg.connect(postgres_server().url("postgres")) as db:
        rows = db.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
            (lock,),
        ).fetchall()
    return [r[0] for r in rows] == [f"peerfed-{pid}"]


def test_a_parent_killed_outright_takes_its_workers_with_it(tmp_path: Path) -> None:
    """No orphan goes on serving the port once `peerfed serve --workers` is SIGKILLed."""
    workers = Workers(tmp_path / "n", postgres_server().fresh_database())

    async def scenario() -> list[int]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            await workers.both_up(http)
        return workers.children()

    children = asyncio.run(scenario())
    assert len(children) == 2
    workers.process.kill()
    workers.process.wait(timeout=30)
    workers.sock.close()
    for _ in range(POLLS):
        if not any(Path(f"/proc/{pid}").exists() and _alive(pid) for pid in children):
            break
        threading.Event().wait(0.05)
    assert not any(Path(f"/proc/{pid}").exists() and _alive(pid) for pid in children)


def _alive(pid: int) -> bool:
    """Not a zombie (a dead child not yet reaped is no longer serving anything)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
