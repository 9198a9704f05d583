"""Signature checks off the event loop, in batches (spec §5.5 is applied unchanged).

Opening a signed object is mostly Ed25519 verification, and libsodium releases the GIL while it
verifies, so a small thread pool lets a node use a second core for it. A thread hop per object
would cost the event loop about as much as it saves, so objects that arrive together are
opened together: one hop per batch, the loop never waits on a signature.
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from peerfed.protocol import Context, Envelope, open_signed

__all__ = ["Opener"]

Job = tuple[bytes, Context, int, "asyncio.Future[Envelope]"]


class Opener:
    """``await opener.open(raw, context, now)`` is ``open_signed`` run on a worker thread.

    With ``threads=0`` it runs on the caller's thread (for a single-core machine).
    """

    MAX_BATCH = 256

    def __init__(self, threads: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="peerfed-verify")
        self._threads = threads
        self._pending: deque[Job] = deque()
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def open(self, raw: bytes, context: Context, now: int) -> Envelope:
        if not self._threads:
            return open_signed(raw, context=context, now=now)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Envelope] = loop.create_future()
        self._pending.append((raw, context, now, future))
        if self._running < self._threads:
            self._running += 1
            task = loop.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch = [self._pending.popleft() for _ in range(min(self.MAX_BATCH, len(self._pending)))]
                outcomes = await loop.run_in_executor(self._pool, _open_all, [(r, c, n) for r, c, n, _ in batch])
                for (_, _, _, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, Envelope):
                        future.set_result(outcome)
                    else:
                        future.set_exception(outcome)
        finally:
            self._running -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _open_all(items: list[tuple[bytes, Context, int]]) -> list[Envelope | BaseException]:
    out: list[Envelope | BaseException] = []
    for raw, context, now in items:
        try:
            out.append(open_signed(raw, context=context, now=now))
        except Exception as exc:  # handed to the caller, whose request it was
            out.append(exc)
    return out
