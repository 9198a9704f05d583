"""Rate limits per key, per address and per origin node, in bounded memory (spec §13.8).

A fixed window counter per (scope, subject). The table holds at most ``max_entries``
subjects; the least recently used are forgotten first, so a flood of addresses cannot grow it.
Processes that serve one database together count in it instead (``share``; store/windows.py),
and in memory again only while it cannot be reached.
``OriginQuotas`` applies the per-node rates and byte quotas to what other nodes send, and
``LiveSockets`` counts open WebSockets per address.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from peerfed.protocol import RequestError, UnavailableError, parse_sealed

from .config import Config

__all__ = ["Gauges", "LiveSockets", "OriginQuotas", "RateLimiter", "Ticket", "Use", "Windows"]

log = logging.getLogger("peerfed.node")


class Use(NamedTuple):
    """One use counted against one window: ``cost`` of ``limit`` per ``window`` seconds."""

    scope: str
    subject: str
    limit: int
    window: float
    cost: int = 1


class Windows(Protocol):
    """Windows counted somewhere every process of the node sees (store/windows.py), used while
    ``together`` (another process serves the node too)."""

    together: bool

    async def count(self, uses: Sequence[Use], now: float) -> tuple[int, float] | None: ...


class RateLimiter:
    def __init__(self, max_entries: int = 50_000) -> None:
        self._windows: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()
        self._max = max_entries
        self._shared: Windows | None = None
        self._away = False  # the shared windows failed and memory counts meanwhile (logged once)
        self._fresh = 0  # fresh starts (clear) so far

    def share(self, windows: Windows | None) -> None:
        """Count in ``windows`` whenever other processes serve the node too (None: in memory only)."""
        self._shared = windows

    def joined(self) -> None:
        """Another process has started serving the node: count in the shared windows from now on."""
        if self._shared is not None:
            self._shared.together = True

    async def hit(self, scope: str, subject: str, *, limit: int, window: float, now: float, cost: int = 1) -> None:
        """Count ``cost`` uses (a request, or bytes); raise RequestError (rate.limited) if they would
        take the window past ``limit``. A refused use is not counted, so a smaller one may still fit."""
        await self.hit_all([Use(scope, subject, limit, window, cost)], now)

    async def hit_all(self, uses: Sequence[Use], now: float) -> None:
        """Count the uses of one request (on distinct windows) all or none: if one would take its
        window past its limit, none is counted and RequestError (rate.limited) names the first."""
        uses = [u for u in uses if u.limit > 0]
        if not uses:
            return
        if self._shared is not None and self._shared.together:
            named = [u._replace(subject=f"{u.subject} {self._fresh}") for u in uses] if self._fresh else uses
            try:
                refused = await self._shared.count(named, now)
            except UnavailableError as exc:  # the database is away: count here meanwhile, never refuse all
                if not self._away:
                    log.warning("rate limits are counted by this process alone meanwhile: %s", exc)
                self._away = True
            else:
                if self._away:
                    log.info("rate limits are shared again")
                self._away = False
                if refused is not None:
                    place, ends = refused
                    _refuse(uses[place].scope, ends - now)
                return
        self.hit_here(uses, now)

    def hit_here(self, uses: Sequence[Use], now: float) -> None:
        """``hit_all``, counted in this process's memory."""
        held = []
        refused: tuple[Use, float] | None = None
        for use in uses:
            key = (use.scope, use.subject)
            start, count = self._windows.pop(key, (now, 0))
            if now - start >= use.window:
                start, count = now, 0
            held.append((key, start, count))
            if refused is None and count + use.cost > use.limit:
                refused = (use, start)
        for (key, start, count), use in zip(held, uses, strict=True):
            self._windows[key] = (start, count if refused else count + use.cost)
        while len(self._windows) > self._max:
            self._windows.popitem(last=False)
        if refused is not None:
            use, start = refused
            _refuse(use.scope, start + use.window - now)

    def clear(self) -> None:
        """Forget every count (an operator's or a test's fresh start). Shared windows are left to
        end, unread: this process counts under new names from now on."""
        self._windows.clear()
        self._fresh += 1

    def __len__(self) -> int:
        return len(self._windows)


def _refuse(scope: str, left: float) -> None:
    retry = max(1, int(left))
    raise RequestError(f"too many {scope} requests; try again in {retry} s", "rate.limited")


class OriginQuotas:
    """What one origin node may send, pushed or pulled: listings and key bundles per hour, bytes per
    minute, and sealed bytes per mailbox per hour (spec §13.8, Limits on other nodes)."""

    def __init__(self, config: Config, limiter: RateLimiter) -> None:
        self._config = config
        self._limiter = limiter

    async def charge(self, origin: str, kind: str, raw: bytes, now: float) -> None:
        """Count one item from ``origin``; raises RequestError (rate.limited) past a quota, or the
        sealed item's own RemoteError if it cannot be parsed."""
        c = self._config
        uses = [Use("node-bytes", origin, c.node_bytes_per_minute, 60, len(raw))]
        if kind == "sealed":
            mailbox = bytes(parse_sealed(raw).mailbox).hex()
            uses.append(Use("node-mailbox-bytes", f"{origin} {mailbox}", c.mailbox_bytes_per_node, 3600, len(raw)))
        if kind == "listing":
            uses.append(Use("node-listings", origin, c.node_listings_per_hour, 3600))
        elif kind == "key-bundle":
            uses.append(Use("node-bundles", origin, c.node_bundles_per_hour, 3600))
        await self._limiter.hit_all(uses, now)


class Gauges(Protocol):
    """Open-socket counts every process of the node sees (store/gauges.py)."""

    async def take(self, capped: Sequence[tuple[str, str, int]]) -> int: ...

    async def give(self, subjects: Sequence[tuple[str, str]]) -> None: ...


class Ticket(NamedTuple):
    """What one socket was counted on, and whether in the shared counts (to give it back there)."""

    subjects: tuple[tuple[str, str], ...]
    shared: bool


class LiveSockets:
    """Open live WebSockets, per address, per peer and in all (spec §13.5, Live mailbox).

    A process counts its own in memory. On a database other processes may serve, the caps are
    the node's: every socket is counted in the shared gauges too, and refused there at a cap
    whichever process holds the others. While the gauges cannot be reached, each process holds
    to the caps alone (logged once). An address the gauges refused is refused here for
    REFUSED_FOR seconds without asking them again, so a caller at its cap who keeps knocking
    costs no statement per knock."""

    REFUSED_FOR = 1.0  # seconds
    MAX_REFUSED = 10_000  # addresses remembered as refused, the oldest forgotten first

    def __init__(self) -> None:
        self._by_address: dict[str, int] = {}
        self.total = 0
        # The sockets themselves, so a stopping node can close each with "going away" (1001)
        # instead of waiting on readers that never hang up (spec §13.5, Live mailbox).
        self.open: set[Any] = set()
        self._shared: Gauges | None = None
        self._away = False
        self._refused: OrderedDict[str, float] = OrderedDict()  # address: until (monotonic)
        self._pending: set[asyncio.Future[Any]] = set()  # asks and give-backs under way

    def share(self, gauges: Gauges | None) -> None:
        """Count in ``gauges`` as well as in memory (None: in memory only)."""
        self._shared = gauges

    async def take(self, address: str, *, per_address: int, total: int) -> Ticket | None:
        """Count one more socket from ``address``: what to give back, or None (nothing counted)
        past either cap."""
        held = self._by_address.get(address, 0)
        if held >= per_address or self.total >= total:  # this process alone is at a cap
            return None
        if self._refused.get(address, 0.0) > time.monotonic():
            return None
        self._by_address[address] = held + 1  # held while the gauges are asked
        self.total += 1
        subjects = (("address", address), ("all", ""))
        try:
            taken = await self._take_shared((("address", address, per_address), ("all", "", total)))
        except BaseException:
            self._forget(subjects)
            raise
        if taken is None:
            self._forget(subjects)
            self._refused[address] = time.monotonic() + self.REFUSED_FOR
            self._refused.move_to_end(address)
            while len(self._refused) > self.MAX_REFUSED:
                self._refused.popitem(last=False)
            return None
        return Ticket(subjects, taken)

    async def take_reader(self, peer: str, per_peer: int) -> Ticket | None:
        """Count one more live reader of ``peer`` (hex) in the shared gauges; None at the cap.
        (Each process also holds a peer's readers to the cap itself: mailbox.add_reader.)"""
        taken = await self._take_shared((("peer", peer, per_peer),))
        return None if taken is None else Ticket((("peer", peer),), taken)

    async def _take_shared(self, capped: tuple[tuple[str, str, int], ...]) -> bool | None:
        """True if counted in the shared gauges, False if there are none or they are away, None
        if one of them is at its cap."""
        if self._shared is None:
            return False
        asked = asyncio.ensure_future(self._shared.take(capped))
        self._pending.add(asked)
        asked.add_done_callback(self._pending.discard)
        try:
            place = await asyncio.shield(asked)
        except asyncio.CancelledError:  # the caller went away: what the gauges counted goes back
            asked.add_done_callback(lambda done: self._undo(done, capped))
            raise
        except UnavailableError as exc:  # the database is away (StorageError): never refuse all
            if not self._away:
                self._away = True
                log.warning("live connections are capped by this process alone meanwhile: %s", exc)
            return False
        if self._away:
            log.info("live connections are capped by the node's processes together again")
        self._away = False
        return None if place else True

    def _undo(self, done: asyncio.Future[int], capped: tuple[tuple[str, str, int], ...]) -> None:
        if not done.cancelled() and done.exception() is None and done.result() == 0:
            self._give_shared(tuple((scope, subject) for scope, subject, _ in capped))

    def give_back(self, ticket: Ticket) -> None:
        """One socket fewer where ``ticket`` was counted (the shared gauges' part in the background)."""
        self._forget(ticket.subjects)
        if ticket.shared:
            self._give_shared(ticket.subjects)

    def _forget(self, subjects: tuple[tuple[str, str], ...]) -> None:
        for scope, subject in subjects:
            if scope == "address":
                held = self._by_address.pop(subject, 0) - 1
                if held > 0:
                    self._by_address[subject] = held
            elif scope == "all":
                self.total = max(0, self.total - 1)

    def _give_shared(self, subjects: tuple[tuple[str, str], ...]) -> None:
        if self._shared is None:
            return
        task = asyncio.ensure_future(self._gave(self._shared, subjects))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    @staticmethod
    async def _gave(gauges: Gauges, subjects: tuple[tuple[str, str], ...]) -> None:
        # Away, the gauges still know what this process holds and count it once they are back.
        with contextlib.suppress(UnavailableError):
            await gauges.give(subjects)

    async def settle(self) -> None:
        """Wait until every ask and give-back under way has reached the gauges (a stopping
        node's last step before it closes them)."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    def held(self, address: str) -> int:
        return self._by_address.get(address, 0)
