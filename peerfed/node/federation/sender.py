"""The outbound sender: one queue per destination node, its batches, retries and breaker (spec §13.7, Delivery).

Shaped like Synapse's federation sender. Each round reads the due items from the durable outbox
and gives each destination's to a ``DestinationQueue``; the queues run at once, so one slow node
does not hold up the others. A queue sends its first batch alone and, unless that batch failed,
the rest with PIPELINE batches in flight. Every batch ends in a typed ``BatchResult``: the queue
has already recorded it (items finished or rescheduled by ``retry.py``, the destination's health
and breaker), and the round decides from the first batch's outcome alone whether to go on.

The queue is made afresh each round: what it owns between rounds (attempts, the breaker) lives in
the store, so a restart loses nothing. The transport is injected: anything with
``send(url, path, body) -> answer`` that raises TransportError or RemoteError as ``NodeClient`` does.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from peerfed.protocol import RemoteError, pack, parse_sealed
from peerfed.protocol.work import solve_work

from ..config import Config
from ..retry import breaker_until, gives_up, next_attempt
from ..store import OutboxRow, OutboxState, Store
from .transport import TransportError

__all__ = [
    "BATCH_PATH",
    "FINAL_BATCH_CODES",
    "RETRYABLE_ITEM_CODES",
    "PIPELINE",
    "BatchOutcome",
    "BatchResult",
    "DestinationQueue",
    "Sender",
    "Transport",
]

log = logging.getLogger("peerfed.node")

BATCH_PATH = "/federation/v1/batch"
PIPELINE = 4  # batches in flight to one destination once it has taken one
ROUND_BATCHES = 20  # batches' worth of due items read per round
# An item's own result is final unless its code says the receiver could not take it *now*.
RETRYABLE_ITEM_CODES = frozenset({"node.unavailable", "rate.limited", "federation.refused", "node.internal"})
# A batch refused as a whole is final only when its bytes are at fault. Every other refusal is
# about the request (its key, its signature, the clocks, the nodes' relation) or the receiver's
# state, and a receiver's passing trouble can produce it: a stale document cache, a clock being
# set, a document it could not fetch, an operator still approving. The items are not at fault,
# so they are kept and retried on the schedule, and the operator is told (spec §13.7, Delivery).
FINAL_BATCH_CODES = frozenset(
    {
        "request.invalid",
        "size.too_large",
        "encoding.malformed",
        "encoding.non_canonical",
        "encoding.trailing_bytes",
        "encoding.forbidden_type",
        "encoding.too_deep",
    }
)


# A receiver may ask for proof of work on a first sealed item into a mailbox (spec §13.5); more
# than this many bits would cost this node minutes per item, so such an item is refused for good.
MAX_WORK_BITS = 24


class Transport(Protocol):
    """How a batch reaches another node; ``NodeClient`` in a node, a fake in tests."""

    async def send(self, url: str, path: str, body: bytes) -> Any:
        """POST ``body`` to ``url + path`` signed; the decoded answer. Raises TransportError or RemoteError."""


class BatchOutcome(enum.Enum):
    """How one batch ended, as a whole."""

    DONE = "done"  # answered item by item (or nothing was left to send): see each item's outcome
    REJECTED = "rejected"  # refused as a whole for a code retrying cannot fix: every item rejected
    RETRY = "retry"  # refused as a whole with a retryable code: every item rescheduled
    FAILED = "failed"  # unreachable, timed out, 5xx or 429, or a malformed answer: every item rescheduled


@dataclass(frozen=True)
class BatchResult:
    """One batch's outcome, its items' outcomes by outbox seq (in the batch's order), and the error if any."""

    outcome: BatchOutcome
    items: tuple[tuple[int, OutboxState], ...]  # PENDING: rescheduled by the retry policy
    error: str | None = None

    @property
    def finished(self) -> int:
        """Items that will not be sent again."""
        return sum(1 for _, item in self.items if item is not OutboxState.PENDING)

    @property
    def ends_round(self) -> bool:
        """The destination did not take the batch: send it nothing more this round."""
        return self.outcome in (BatchOutcome.RETRY, BatchOutcome.FAILED)


class DestinationQueue:
    """One destination's due items for one round: batches, their outcomes, its health and breaker."""

    def __init__(
        self,
        destination: str,
        *,
        config: Config,
        store: Store,
        transport: Transport,
        rng: random.Random,
        work: dict[int, bytes] | None = None,
    ) -> None:
        self.destination = destination
        self._config = config
        self._store = store
        self._transport = transport
        self._rng = rng
        # Proofs of work solved for sealed items a receiver asked them for, by outbox seq. Kept
        # in memory only: after a restart a receiver asks again and the item is solved again.
        self._work = work if work is not None else {}

    async def run(self, rows: list[OutboxRow], now: float) -> list[BatchResult]:
        """Send ``rows`` in batches: the first alone, then, unless it failed, the rest pipelined."""
        size = self._config.batch_size
        batches = [rows[start : start + size] for start in range(0, len(rows), size)]
        first = await self.send(batches[0], now)
        if len(batches) == 1 or first.ends_round:
            return [first]
        gate = asyncio.Semaphore(PIPELINE)

        async def send(batch: list[OutboxRow]) -> BatchResult:
            async with gate:
                return await self.send(batch, now)

        return [first, *await asyncio.gather(*(send(b) for b in batches[1:]))]

    async def send(self, rows: list[OutboxRow], now: float, *, solve: bool = True) -> BatchResult:
        """Send one batch and record its outcome in the store. Sealed items the receiver asks
        proof of work for are solved and sent again at once, when ``solve``. Storage errors raise."""
        expired = [r for r in rows if gives_up(r.created_at, now, self._config.give_up_after)]
        if expired:
            await self._store.outbox_finish(
                [r.seq for r in expired], OutboxState.GAVE_UP, int(now), "gave up after the retry bound"
            )
            log.warning(
                "gave up delivering %d items to %s after %d s; see: peerfed admin federation failures",
                len(expired),
                self.destination,
                self._config.give_up_after,
            )
        gave_up = tuple((r.seq, OutboxState.GAVE_UP) for r in expired)
        rows = [r for r in rows if r not in expired]
        if not rows:
            return BatchResult(BatchOutcome.DONE, gave_up)
        body = pack([self._item(r) for r in rows])
        try:
            answer = await self._transport.send(self.destination, BATCH_PATH, body)
            results = answer.get("results") if isinstance(answer, dict) else None
            if not isinstance(results, list) or len(results) != len(rows):
                raise TransportError(f"{self.destination} answered a batch with a malformed result")
        except RemoteError as exc:
            if exc.code not in FINAL_BATCH_CODES:
                return await self._failed(BatchOutcome.RETRY, rows, gave_up, exc, now)
            # The whole batch was refused for a reason retrying cannot fix.
            error = f"{exc.code}: {exc}"
            await self._store.outbox_finish([r.seq for r in rows], OutboxState.REJECTED, int(now), error)
            await self._store.node_exchange(self.destination, int(now), error, exc.code)
            log.warning("%s refused a batch of %d: %s", self.destination, len(rows), exc)
            return BatchResult(
                BatchOutcome.REJECTED, gave_up + tuple((r.seq, OutboxState.REJECTED) for r in rows), error
            )
        except TransportError as exc:
            return await self._failed(BatchOutcome.FAILED, rows, gave_up, exc, now)
        first, unsolved = await self._answered(rows, results, gave_up, now, solve)
        if not unsolved:
            return first
        again = await self.send(await self._solve(unsolved), now, solve=False)
        redone = dict(again.items)
        return BatchResult(first.outcome, tuple((seq, redone.get(seq, state)) for seq, state in first.items))

    def _item(self, row: OutboxRow) -> list[Any]:
        work = self._work.get(row.seq)
        return [row.kind, row.raw] if work is None else [row.kind, row.raw, work]

    async def _solve(self, rows: list[tuple[OutboxRow, int]]) -> list[OutboxRow]:
        """Solve proof of work over the sealed id of the first item for each mailbox, off the event
        loop; those go first, so the receiver knows the mailbox before the items after them."""
        solved: list[OutboxRow] = []
        rest: list[OutboxRow] = []
        mailboxes: set[bytes] = set()
        for row, bits in rows:
            sealed = parse_sealed(row.raw)
            if bytes(sealed.mailbox) in mailboxes:
                rest.append(row)
                continue
            mailboxes.add(bytes(sealed.mailbox))
            self._work[row.seq] = await asyncio.to_thread(solve_work, sealed.id, bits)
            solved.append(row)
        return solved + rest

    async def _answered(
        self,
        rows: list[OutboxRow],
        results: list[Any],
        gave_up: tuple[tuple[int, OutboxState], ...],
        now: float,
        solve: bool,
    ) -> tuple[BatchResult, list[tuple[OutboxRow, int]]]:
        """The destination answered item by item: finish, reject or reschedule each. Returns the
        result and the sealed items to solve proof of work for and send again (with their bits)."""
        await self._store.node_result(self.destination, True, int(now), None, 0)
        items: list[tuple[int, OutboxState]] = []
        done, rejected, retry = [], [], []
        unsolved: list[tuple[OutboxRow, int]] = []
        for row, result in zip(rows, results, strict=True):
            status = result.get("status") if isinstance(result, dict) else None
            bits = _work_asked(row, result)
            if status in ("ok", "duplicate"):
                done.append(row.seq)
                items.append((row.seq, OutboxState.DONE))
            elif bits is not None:
                if solve:
                    unsolved.append((row, bits))
                else:
                    retry.append(row)
                items.append((row.seq, OutboxState.PENDING))
            elif isinstance(result, dict) and result.get("code") in RETRYABLE_ITEM_CODES:
                retry.append(row)
                items.append((row.seq, OutboxState.PENDING))
            else:
                if isinstance(result, dict):
                    rejected.append((row.seq, f"{result.get('code')}: {result.get('message', '')}"))
                else:
                    rejected.append((row.seq, "malformed result"))
                items.append((row.seq, OutboxState.REJECTED))
        if done:
            await self._store.outbox_finish(done, OutboxState.DONE, int(now))
            if any(r.kind == "erasure" for r in rows):
                await self._store.checkpoint()  # an erasure's bytes leave the WAL once it is delivered
        for seq, reason in rejected:
            await self._store.outbox_finish([seq], OutboxState.REJECTED, int(now), reason[:300])
        if retry:
            await self._retry_later(retry, now, "the receiver asked to retry")
        for seq, state in items:
            if state is not OutboxState.PENDING:
                self._work.pop(seq, None)
        return BatchResult(BatchOutcome.DONE, gave_up + tuple(items)), unsolved

    async def _failed(
        self,
        outcome: BatchOutcome,
        rows: list[OutboxRow],
        gave_up: tuple[tuple[int, OutboxState], ...],
        exc: Exception,
        now: float,
    ) -> BatchResult:
        """The destination did not take the batch: count a failure, maybe open the breaker, retry later.

        A refusal with a code, and a destination that keeps failing, are logged as warnings: the
        operator sees them there and in ``peerfed admin federation failures``.
        """
        code = getattr(exc, "code", None)
        error = (f"{code}: {exc}" if isinstance(exc, RemoteError) else str(exc))[:300]
        node = await self._store.node(self.destination)
        failures = (node.failures if node else 0) + 1
        until = breaker_until(failures, now, threshold=self._config.breaker_threshold)
        if node:
            await self._store.node_result(self.destination, False, int(now), error, until, code)
        await self._retry_later(rows, now, error)
        refused = outcome is BatchOutcome.RETRY and code not in ("rate.limited", "node.unavailable")
        if refused or failures == self._config.breaker_threshold:
            log.warning(
                "delivery of %d items to %s failed %d times in a row (%s); will retry;"
                " see: peerfed admin federation failures",
                len(rows),
                self.destination,
                failures,
                error,
            )
        else:
            log.info("delivery to %s failed (%s); will retry", self.destination, exc)
        return BatchResult(outcome, gave_up + tuple((r.seq, OutboxState.PENDING) for r in rows), error)

    async def _retry_later(self, rows: list[OutboxRow], now: float, error: str) -> None:
        """Schedule each row's next attempt by the retry policy (spec §13.7)."""
        config = self._config
        await self._store.outbox_retry(
            [
                (
                    r.seq,
                    next_attempt(
                        r.attempts + 1, now, base=config.retry_base, cap=config.retry_cap, jitter=self._rng.random()
                    ),
                )
                for r in rows
            ],
            error,
        )


class Sender:
    """Rounds over the outbox: every due item, batched per destination, all destinations at once."""

    def __init__(
        self,
        config: Config,
        store: Store,
        transport: Transport | None,
        clock: Callable[[], float],
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self.transport = transport
        self._clock = clock
        self._rng = rng or random.Random()
        self._work: dict[int, bytes] = {}
        # Told each batch's outcome, per destination, after the round (the node's metrics).
        self.observe: Callable[[str, BatchResult], None] | None = None

    async def send_round(self) -> dict[str, list[BatchResult]]:
        """One round: each destination's batch results, in the order they were sent. Storage errors raise."""
        if self.transport is None:
            return {}
        now = self._clock()
        rows = await self._store.due(now, self._config.batch_size * ROUND_BATCHES)
        by_destination: dict[str, list[OutboxRow]] = defaultdict(list)
        for row in rows:
            by_destination[row.destination].append(row)
        transport = self.transport
        queues = [
            DestinationQueue(
                d, config=self._config, store=self._store, transport=transport, rng=self._rng, work=self._work
            )
            for d in by_destination
        ]
        results = await asyncio.gather(*(q.run(by_destination[q.destination], now) for q in queues))
        if self.observe is not None:
            for queue, batches in zip(queues, results, strict=True):
                for batch in batches:
                    self.observe(queue.destination, batch)
        return {q.destination: r for q, r in zip(queues, results, strict=True)}

    async def deliver_due(self) -> int:
        """Send every due outbox item; returns how many were finished (taken, rejected or given up)."""
        return sum(r.finished for results in (await self.send_round()).values() for r in results)


def _work_asked(row: OutboxRow, result: Any) -> int | None:
    """The bits of proof of work a receiver asks for a sealed item (``auth.work`` with a sane
    ``bits``), else None: any other answer, or more than MAX_WORK_BITS, is judged as usual."""
    if row.kind != "sealed" or not isinstance(result, dict) or result.get("code") != "auth.work":
        return None
    bits = result.get("bits")
    return bits if isinstance(bits, int) and not isinstance(bits, bool) and 0 < bits <= MAX_WORK_BITS else None
