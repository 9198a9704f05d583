"""`peerfed admin federation list` tells the truth about each node (spec §13.7, issue 16 item 5).

Before: a success erased the last error, a failure had no time and no code apart from its text,
and a pull that worked was not a success at all. Now the list shows the last exchange that
worked (a push taken, a pull page had, a follow answered) and the last error with its code and
time, each kept when the other happens; as readable times in text, as numbers under --json.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.backends import query
from tests.processes import NodeProcesses

from .harness import Peer
from .test_admin_tools import admin
from .test_process import Home
from .test_refollow import until_listed


def listed(data: Path, url: str) -> dict[str, Any]:
    out = admin(data, "federation", "list")
    assert out.returncode == 0, out.stderr
    return next(n for n in json.loads(out.stdout) if n["url"] == url)


async def until_failed(data: Path, url: str, polls: int = 1200) -> None:
    """Wait (bounded: 50 ms apart, 60 s in all) until the node has recorded a failed delivery to ``url``."""
    for _ in range(polls):
        rows = query(data, "SELECT failures FROM nodes WHERE url=?", (url,))
        if rows and int(rows[0][0]) > 0:  # type: ignore[call-overload]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no error was recorded for {url}")


def test_federation_list_keeps_the_last_success_and_shows_the_last_error_with_its_code_and_time(
    tmp_path: Path, node_processes: NodeProcesses
) -> None:
    started = int(time.time())

    async def scenario() -> None:
        b = node_processes(tmp_path / "b", name="b")
        await b.start()
        a = node_processes(tmp_path / "a", "--federate", b.url, name="a")
        await a.start()
        async with aiohttp.ClientSession() as http:
            ana = await Peer("ana", Home(a.url), http, 1).join()  # type: ignore[arg-type]
            ben = await Peer("ben", Home(b.url), http, 2).join()  # type: ignore[arg-type]
            await until_listed(ben, (await ana.offer("Delivered while both run.")).id.hex())
            healthy = listed(a.data, b.url)
            assert healthy["status"] == "active"
            assert isinstance(healthy["last_ok_at"], int) and healthy["last_ok_at"] >= started
            assert healthy["last_error_at"] is None and healthy["last_error_code"] is None

            assert b.stop() == 0
            b.sock.close()  # nothing listens at B's address now: A's next delivery is refused
            success = listed(a.data, b.url)["last_ok_at"]
            await ana.offer("Published while the other node is down.")  # A's outbox tries B at once
            await until_failed(a.data, b.url)
        failed = listed(a.data, b.url)
        assert failed["last_ok_at"] == success  # the last success is kept
        assert failed["last_error_code"] == "node.unavailable"
        assert "unreachable" in failed["last_error"]
        assert failed["last_error_at"] >= success
        assert failed["failures_in_a_row"] >= 1
        text = admin(a.data, "federation", "list", json_out=False).stdout
        assert re.search(r"last_ok_at=\d{4}-\d\d-\d\d \d\d:\d\d UTC", text), text
        assert re.search(r"last_error_at=\d{4}-\d\d-\d\d \d\d:\d\d UTC", text), text
        assert "last_error_code=node.unavailable" in text
        assert a.stop() == 0

    asyncio.run(scenario())
