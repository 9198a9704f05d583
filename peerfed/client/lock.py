"""One writer per home: an exclusive lock on $PEERFED_HOME held while a command writes (spec §9.5).

Two commands on one home each read the connection, took the next sequence number from their own
view and delivered it; the recipient refused the second as a duplicate, yet both printed "sent".
Allocating the number in one transaction would fix the number but not the rest: the mailbox
cursor, the outbox and the order messages leave the device in are all read-then-written. So a
command holds an exclusive ``flock`` on ``<home>/lock`` from before it opens the database until it
closes it: every local write of one command happens as if no other command ran, and messages are
numbered and delivered in the order their commands got the lock. ``read --follow`` runs for hours,
so it takes the lock only around each unit of work (a sync, one received item, a redraw).

The lock is re-entrant within a process (one ``HomeLock`` per home, counted), so a unit of work
may run inside a command that already holds it. The kernel drops a ``flock`` when its process
dies, so a killed command never leaves a home locked.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import ClassVar

from .errors import ClientError

__all__ = ["LOCK_WAIT", "HomeLock"]

LOCK_WAIT = 600.0  # seconds a command waits for another on the same home before giving up
_POLL = 0.02  # the kernel has no async flock: poll a non-blocking one, never block the event loop


class HomeLock:
    """The exclusive lock on one home, shared by everything in this process that writes to it."""

    _held: ClassVar[dict[Path, HomeLock]] = {}

    def __init__(self, home: Path) -> None:
        self.home = home
        self._fd: int | None = None
        self._depth = 0

    @classmethod
    def of(cls, home: Path) -> HomeLock:
        """This process's lock object for ``home`` (the same object for the same folder)."""
        key = home.resolve()
        if key not in cls._held:
            cls._held[key] = cls(home)
        return cls._held[key]

    @property
    def held(self) -> bool:
        return self._depth > 0

    async def acquire(self, waiting: Callable[[], None] | None = None) -> None:
        """Take the lock, waiting (up to LOCK_WAIT) while another process holds it.

        ``waiting`` is called once if the lock is busy, so a person at a terminal knows why
        nothing happens. Raises ClientError (``local.busy``) after LOCK_WAIT, (``local.storage``)
        if the lock file cannot be made.
        """
        if self._depth:
            self._depth += 1
            return
        try:
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.home / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ClientError(f"cannot lock {self.home}: {exc}", "local.storage") from exc
        told = False
        for _ in range(int(LOCK_WAIT / _POLL)):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not told and waiting is not None:
                    waiting()
                told = True
                await asyncio.sleep(_POLL)
                continue
            self._fd, self._depth = fd, 1
            return
        os.close(fd)
        raise ClientError(f"another peerfed command has held {self.home} for too long", "local.busy")

    def release(self) -> None:
        """Give the lock back once every holder in this process has."""
        assert self._depth > 0, "released a home lock that was not held"
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    async def __aenter__(self) -> HomeLock:
        await self.acquire()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
