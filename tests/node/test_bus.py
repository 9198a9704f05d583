"""What a node's processes tell each other over PostgreSQL (spec §13.9, Storage back-ends; bus.py).

A notice said by one is heard by the other; while the server is away the notices wait in
bounded memory, are dropped rather than piled up, and once it is back they are heard again.
"""

from __future__ import annotations

import asyncio

import pytest

from peerfed.node.bus import MAX_WAITING, PgBus
from tests.backends import postgres_server

pytestmark = pytest.mark.one_backend("it is about PostgreSQL's LISTEN/NOTIFY, started here")

WAIT = 20.0  # seconds: the bound on waiting for a notice, or for a bus to listen again


def test_a_notice_is_heard_by_the_other_process_before_and_after_the_server_is_away() -> None:
    server = postgres_server()
    address = server.fresh_database()

    async def scenario() -> None:
        heard: asyncio.Queue[tuple[str, list[str]]] = asyncio.Queue()
        said = await PgBus.open(address, lambda kind, words: None)
        hearing = await PgBus.open(address, lambda kind, words: heard.put_nowait((kind, words)))
        try:
            said.publish("mail", "ab" * 16, "1")
            assert await asyncio.wait_for(heard.get(), WAIT) == ("mail", ["ab" * 16, "1"])
            server.kill()
            for n in range(MAX_WAITING * 3):  # a burst of deliveries while nobody can be told
                said.publish("mail", "cd" * 16, str(n))
                if n % 1000 == 0:
                    await asyncio.sleep(0)  # the loop runs on between requests, as it would
            assert said._queue.qsize() <= MAX_WAITING
            assert said.dropped >= MAX_WAITING * 2
            server.start()
            # Both come back by themselves: the sayer on its next attempt, the listener after
            # listening again. Notices said until then may be lost, so say one each half second.
            back: list[str] = []
            for n in range(int(WAIT * 2)):
                said.publish("mail", "ef" * 16, str(n))
                await asyncio.sleep(0.5)
                while not heard.empty():  # what was said before the server died may come first
                    kind, words = heard.get_nowait()
                    if kind == "mail" and words[0] == "ef" * 16:
                        back.append(words[1])
                if back:
                    break
            assert back, "no notice was heard once the server was back"
        finally:
            await said.close()
            await hearing.close()

    asyncio.run(scenario())
