"""Is the node alive, and can it do its work (spec §13.1, Health): what ``/healthz`` and ``/readyz`` report.

Operational, not protocol: a load balancer or supervisor asks, no peer or node does. Alive means
the process answers HTTP at all, and costs nothing. Ready means the two things a node cannot do
its work without: a database that takes a real write (group-committed, then read back), and a
federation outbox whose due items are being sent. A destination that is down does not make the
node unready (its items are rescheduled into the future with backoff); an item that has been due
for longer than ``outbox_stuck_after`` means the delivery loop itself is not running.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .store import StorageError, Store

__all__ = ["OK", "Health", "Readiness"]

OK = "ok"


@dataclass(frozen=True)
class Readiness:
    """Each check's verdict: ``OK`` or why not."""

    database: str
    outbox: str

    @property
    def ready(self) -> bool:
        return self.database == OK and self.outbox == OK


class Health:
    def __init__(self, store: Store, clock: Callable[[], float], stuck_after: float) -> None:
        self._store = store
        self._clock = clock
        self._stuck_after = stuck_after

    async def readiness(self) -> Readiness:
        """Run both checks (the database one writes); never raises for a failed check."""
        now = self._clock()
        try:
            await self._store.probe(now)
            database = OK
        except StorageError as exc:
            database = f"not writable: {exc}"
        try:
            due = await self._store.next_due()
        except StorageError as exc:
            outbox = f"cannot be read: {exc}"
        else:
            waited = 0.0 if due is None else now - due
            outbox = OK
            if waited > self._stuck_after:
                outbox = (
                    f"stuck: the oldest due item has waited {int(waited)} s to be sent"
                    f" (more than outbox_stuck_after, {int(self._stuck_after)} s)"
                )
        return Readiness(database=database, outbox=outbox)
