"""Several node processes on one PostgreSQL database (spec §13.9, Storage back-ends; Workers).

Every process serving one database says what it changed that others keep in memory, and hears
what they changed, over PostgreSQL's LISTEN/NOTIFY on one channel:

    mail <mailbox> <seq>   an item was delivered: wake this process's live readers of it
    close <peer>           a peer's sessions ended: close its live readers here
    sessions <peer>        forget the peer's cached sessions
    outbox                 federation work was queued: wake the sender, if it runs here
    maintain               a node began federating: follow and pull now, if that runs here
    hello                  a process started serving this database: count rate limits together

and one of them at a time, the one holding a session-level advisory lock, runs the background
rounds (the outbox sender, federation upkeep, the purge), so each destination has one consumer;
when its process ends, its connection's lock goes with it and another process takes over. A
notice is at most a mailbox id and a number, which the database holds anyway. On SQLite (one
process) ``LocalBus`` does nothing and its process always leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

from .store import windows
from .store.pg import APPLICATION

__all__ = ["CHANNEL", "Bus", "LocalBus", "PgBus"]

log = logging.getLogger("peerfed.node")

CHANNEL = "peerfed"
_LEADER_LOCK = 0x7065657266656401  # "peerfe" + 1: the background rounds' lock
RETRY_LEADERSHIP = 5.0  # seconds between a follower's attempts to take the rounds over
# Notices waiting to be said. While the database is away they are dropped a batch at a time,
# one attempt a second, and past this many new ones are not queued at all: memory stays bounded
# whatever the request rate. A dropped notice costs a live reader elsewhere an item until its
# client's next sync, and a wake-up until the next round.
MAX_WAITING = 10_000
RETRY_SAYING = 1.0

Handler = Callable[[str, list[str]], None]


async def _connect(address: str) -> Any:
    # Made and named as the store's own (store/windows.py), so pg_stat_activity shows whose it is.
    return await windows.connect(address, APPLICATION)


class Bus:
    """What a node part calls to tell other processes; ``LocalBus`` when there are none."""

    worker = ""  # this process's id on the bus (empty: no other processes)

    def publish(self, kind: str, *words: str) -> None:
        """Tell every other process (best effort, after the change is committed)."""

    async def lead(self) -> None:
        """Return once this process runs the background rounds."""

    async def lost(self) -> None:
        """Return if this process stops leading (never, for one process alone)."""
        await asyncio.Event().wait()

    async def close(self) -> None:
        """Stop listening, and leading."""


class LocalBus(Bus):
    """One process: nobody to tell, and it always leads."""


class PgBus(Bus):
    """Three psycopg connections of its own: one LISTENs (a connection waiting for notices takes
    no other statement meanwhile), one holds the leader's advisory lock, one NOTIFYs."""

    def __init__(self, address: str, listening: Any, conn: Any, saying: Any, handle: Handler) -> None:
        self._address = address
        self._listening = listening
        self._conn = conn  # the leader's lock lives and dies with this one
        self._saying = saying  # NOTIFY: made again freely, it holds nothing
        self._handle = handle
        self.worker = secrets.token_hex(4)
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self.dropped = 0  # notices never said (the database was away), since start
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(cls, address: str, handle: Handler) -> PgBus:
        """Connect and LISTEN. Raises psycopg.Error (the caller's store has reached the server already)."""

        listening = await _connect(address)
        await listening.execute(f"LISTEN {CHANNEL}")
        conn = await _connect(address)
        bus = cls(address, listening, conn, await _connect(address), handle)
        bus._tasks = [
            asyncio.create_task(bus._hear(), name="bus-hear"),
            asyncio.create_task(bus._say(), name="bus-say"),
        ]
        bus.publish("hello")
        return bus

    def publish(self, kind: str, *words: str) -> None:
        if self._queue.qsize() >= MAX_WAITING:
            self.dropped += 1
            return
        self._queue.put_nowait(" ".join((self.worker, kind, *words)))

    async def _say(self) -> None:
        away = False
        while True:
            notices = [await self._queue.get()]
            while not self._queue.empty():
                notices.append(self._queue.get_nowait())
            unsaid = list(dict.fromkeys(notices))  # a burst of wake-ups goes as one of each
            try:
                if self._saying.closed or self._saying.broken:
                    self._saying = await _connect(self._address)
                while unsaid:
                    await self._saying.execute("SELECT pg_notify(%s, %s)", (CHANNEL, unsaid[0]))
                    unsaid.pop(0)
            except Exception:  # the server is away: the node's requests fail and say so too
                self.dropped += len(unsaid)
                if not away:
                    log.warning("cannot tell the other workers; their live readers catch up by themselves")
                away = True
                await asyncio.sleep(RETRY_SAYING)
            else:
                if away:
                    log.info("telling the other workers again (%d notices were dropped meanwhile)", self.dropped)
                away = False

    async def _hear(self) -> None:
        import psycopg

        while True:
            try:
                async for notice in self._listening.notifies():
                    self._heard(notice.payload)
            except psycopg.Error:
                log.warning("lost the other workers' notices; listening again")
                await asyncio.sleep(1.0)
                with contextlib.suppress(psycopg.Error):
                    self._listening = await _connect(self._address)
                    await self._listening.execute(f"LISTEN {CHANNEL}")
                    # What was said meanwhile is lost: every live reader catches up by itself.

    def _heard(self, payload: str) -> None:
        sender, kind, *words = payload.split(" ")
        if sender == self.worker:
            return
        try:
            self._handle(kind, words)
        except Exception:
            log.exception("a notice from another worker could not be handled")

    async def lead(self) -> None:
        import psycopg

        while True:
            with contextlib.suppress(psycopg.Error):
                cursor = await self._conn.execute("SELECT pg_try_advisory_lock(%s)", (_LEADER_LOCK,))
                row = await cursor.fetchone()
                if row is not None and row[0]:
                    log.info("this worker runs the background rounds (outbox, upkeep, purge)")
                    return
            await asyncio.sleep(RETRY_LEADERSHIP)
            await self._reconnect_if_closed()

    async def lost(self) -> None:
        """Poll the lock's connection; once it fails the lock is gone with it: reconnect and return."""
        import psycopg

        while True:
            await asyncio.sleep(RETRY_LEADERSHIP)
            try:
                await self._conn.execute("SELECT 1")
            except psycopg.Error:
                log.warning("lost the database connection that held the background rounds; electing again")
                await self._reconnect_if_closed()
                return

    async def _reconnect_if_closed(self) -> None:
        import psycopg

        if self._conn.closed or self._conn.broken:
            with contextlib.suppress(psycopg.Error):
                self._conn = await _connect(self._address)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for conn in (self._listening, self._conn, self._saying):
            with contextlib.suppress(Exception):
                await conn.close()  # the leader's advisory lock goes with its connection
