"""The outbound sender through a fake transport: each batch outcome, its rows' states, no sockets.

The fake stands where ``NodeClient`` stands (the transport seam, as httpx's MockTransport does):
per destination it takes a batch, refuses it, asks to retry, is unreachable or answers garbage.
Every assertion is about what the store holds afterwards and what the fake was asked.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from peerfed.node.config import Config
from peerfed.node.federation.sender import (
    BATCH_PATH,
    MAX_WORK_BITS,
    PIPELINE,
    BatchOutcome,
    BatchResult,
    Sender,
)
from peerfed.node.federation.transport import TransportError
from peerfed.node.retry import next_attempt
from peerfed.node.store import OutboxState, Store
from peerfed.protocol import (
    EncryptionSecret,
    Identity,
    Message,
    RemoteError,
    parse_sealed,
    seal,
    sign,
    unpack,
)
from peerfed.protocol.work import work_bits
from tests.backends import database_for

from .harness import Clock

GOOD = "https://good.example"
OTHER = "https://other.example"
Answer = Callable[[list[Any]], Any]


def takes(items: list[Any]) -> Any:
    return {"results": [{"status": "ok"} for _ in items]}


def refuses(code: str) -> Answer:
    def answer(items: list[Any]) -> Any:
        raise RemoteError(f"refused with {code}", code)

    return answer


def unreachable(items: list[Any]) -> Any:
    raise TransportError("good.example unreachable: connection refused")


class FakeTransport:
    """Answers each destination by its rule and records every call; batches in flight are counted."""

    def __init__(self, rules: dict[str, Answer]) -> None:
        self.rules = rules
        self.calls: list[tuple[str, str, list[Any]]] = []
        self.events: list[tuple[str, int]] = []  # ("start" | "end", call number)
        self.in_flight = 0
        self.most_in_flight = 0

    async def send(self, url: str, path: str, body: bytes) -> Any:
        number = len(self.calls)
        items = unpack(body)
        assert isinstance(items, list)  # a batch is an array of items (spec §13.7)
        self.calls.append((url, path, items))
        self.events.append(("start", number))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # a turn of the loop, as a network answer is: other batches may start
            return self.rules[url](items)
        finally:
            self.in_flight -= 1
            self.events.append(("end", number))


Body = Callable[[Store, Clock], Awaitable[None]]


def run(tmp_path: Path, body: Body) -> None:
    async def scenario() -> None:
        store = await Store.open(database_for(tmp_path) or tmp_path / "node.sqlite3", synchronous="NORMAL")
        try:
            await body(store, Clock(1_700_000_000))
        finally:
            await store.close()

    asyncio.run(scenario())


def sender(store: Store, clock: Clock, fake: FakeTransport, **settings: Any) -> Sender:
    config = Config(data=Path("unused"), public_url="https://here.example", **settings)
    return Sender(config, store, fake, clock, random.Random(5))


async def queue(store: Store, clock: Clock, destination: str, count: int, start: int = 0) -> list[int]:
    """``count`` sealed items queued for ``destination`` (an active node); their outbox seqs."""
    await store.set_node_status(destination, "active", int(clock()))
    for n in range(start, start + count):
        await store.forward_sealed(
            sealed_id=hashlib.blake2b(destination.encode(), digest_size=8).digest() + n.to_bytes(24, "big"),
            seen_until=int(clock()) + 86_400,
            destination=destination,
            raw=b"sealed bytes %d" % n,
            now=clock(),
        )
    return [r.seq for r in await store.due(clock(), 1000) if r.destination == destination][-count:]


def outcomes(result: BatchResult) -> list[OutboxState]:
    return [outcome for _, outcome in result.items]


def test_a_destination_that_takes_the_batch_has_every_row_finished(tmp_path: Path) -> None:
    async def body(store: Store, clock: Clock) -> None:
        seqs = await queue(store, clock, GOOD, 3)
        fake = FakeTransport({GOOD: takes})
        results = await sender(store, clock, fake).send_round()
        [result] = results[GOOD]
        assert result.outcome is BatchOutcome.DONE
        assert result.items == tuple((s, OutboxState.DONE) for s in seqs)
        assert [(url, path) for url, path, _ in fake.calls] == [(GOOD, BATCH_PATH)]
        assert fake.calls[0][2] == [["sealed", b"sealed bytes %d" % n] for n in range(3)]
        assert (await store.outbox_stats())[GOOD] == {"done": 3}
        node = await store.node(GOOD)
        assert node is not None and node.failures == 0 and node.last_ok == int(clock())

    run(tmp_path, body)


def test_a_batch_refused_for_a_final_code_is_rejected_whole(tmp_path: Path) -> None:
    async def body(store: Store, clock: Clock) -> None:
        await queue(store, clock, GOOD, 2)
        fake = FakeTransport({GOOD: refuses("request.invalid")})
        [result] = (await sender(store, clock, fake).send_round())[GOOD]
        assert result.outcome is BatchOutcome.REJECTED
        assert outcomes(result) == [OutboxState.REJECTED] * 2
        assert result.error == "request.invalid: refused with request.invalid"
        assert (await store.outbox_stats())[GOOD] == {"rejected": 2}
        assert [g.last_error for g in await store.gave_up()] == [result.error] * 2  # kept for the operator
        node = await store.node(GOOD)
        assert node is not None and node.failures == 0  # it answered: not a failure to reach it
        assert await sender(store, clock, fake).deliver_due() == 0  # and nothing is sent again
        assert len(fake.calls) == 1

    run(tmp_path, body)


def test_a_retryable_refusal_reschedules_the_batch_by_the_retry_policy(tmp_path: Path) -> None:
    async def body(store: Store, clock: Clock) -> None:
        [seq] = await queue(store, clock, GOOD, 1)
        fake = FakeTransport({GOOD: refuses("federation.refused")})
        [result] = (await sender(store, clock, fake).send_round())[GOOD]
        assert result.outcome is BatchOutcome.RETRY
        assert result.items == ((seq, OutboxState.PENDING),)
        assert (await store.outbox_stats())[GOOD] == {"pending": 1}
        expected = next_attempt(1, clock(), base=10.0, cap=3600.0, jitter=random.Random(5).random())
        assert await store.next_due() == expected
        assert await store.due(expected - 0.001, 10) == []
        [row] = await store.due(expected, 10)
        assert row.seq == seq and row.attempts == 1
        node = await store.node(GOOD)
        assert node is not None and node.failures == 1 and node.breaker_until == 0  # below the threshold

    run(tmp_path, body)


def test_items_the_receiver_asks_to_retry_wait_and_the_rest_are_finished(tmp_path: Path) -> None:
    def mixed(items: list[Any]) -> Any:
        return {
            "results": [
                {"status": "ok"},
                {"status": "duplicate"},
                {"status": "error", "code": "rate.limited", "message": "the mailbox is full"},
                {"status": "error", "code": "schema.invalid", "message": "not a sealed message"},
                "not a result",
            ]
        }

    async def body(store: Store, clock: Clock) -> None:
        seqs = await queue(store, clock, GOOD, 5)
        fake = FakeTransport({GOOD: mixed})
        [result] = (await sender(store, clock, fake).send_round())[GOOD]
        assert result.outcome is BatchOutcome.DONE
        assert result.items == tuple(
            zip(
                seqs,
                [OutboxState.DONE, OutboxState.DONE, OutboxState.PENDING, OutboxState.REJECTED, OutboxState.REJECTED],
                strict=True,
            )
        )
        assert (await store.outbox_stats())[GOOD] == {"done": 2, "pending": 1, "rejected": 2}
        reasons = sorted(g.last_error or "" for g in await store.gave_up())
        assert reasons == ["malformed result", "schema.invalid: not a sealed message"]
        expected = next_attempt(1, clock(), base=10.0, cap=3600.0, jitter=random.Random(5).random())
        assert await store.next_due() == expected

    run(tmp_path, body)


def test_an_unreachable_destination_opens_the_breaker_and_gets_nothing_more_this_round(tmp_path: Path) -> None:
    async def body(store: Store, clock: Clock) -> None:
        await queue(store, clock, GOOD, 6)
        await queue(store, clock, OTHER, 4)
        fake = FakeTransport({GOOD: unreachable, OTHER: takes})
        send = sender(store, clock, fake, batch_size=2, breaker_threshold=1)
        results = await send.send_round()
        [result] = results[GOOD]  # one batch tried, the other two not sent
        assert result.outcome is BatchOutcome.FAILED and result.ends_round
        assert outcomes(result) == [OutboxState.PENDING] * 2
        assert [r.outcome for r in results[OTHER]] == [BatchOutcome.DONE] * 2  # the others are not held up
        assert [url for url, _, _ in fake.calls].count(GOOD) == 1
        node = await store.node(GOOD)
        assert node is not None and node.failures == 1 and node.breaker_until > clock()
        assert "unreachable" in (node.last_error or "")
        assert (await store.outbox_stats())[GOOD] == {"pending": 6}
        # Its rows are due again before the breaker closes; until then no round sends it anything...
        calls = len(fake.calls)
        clock.now = node.breaker_until - 1
        assert len(await store.due(clock.now, 100)) == 0
        assert await send.send_round() == {}
        assert len(fake.calls) == calls
        # ...and then one batch probes it (half-open): still down, so only that one.
        clock.now = node.breaker_until
        [probe] = (await send.send_round())[GOOD]
        assert probe.outcome is BatchOutcome.FAILED
        assert [url for url, _, _ in fake.calls[calls:]] == [GOOD]

    run(tmp_path, body)


def test_a_malformed_answer_is_a_failure_and_the_batch_waits(tmp_path: Path) -> None:
    def short(items: list[Any]) -> Any:
        return {"results": [{"status": "ok"}] * (len(items) - 1)}

    async def body(store: Store, clock: Clock) -> None:
        await queue(store, clock, GOOD, 4)
        fake = FakeTransport({GOOD: short})
        [result] = (await sender(store, clock, fake, batch_size=2).send_round())[GOOD]
        assert result.outcome is BatchOutcome.FAILED
        assert result.error == f"{GOOD} answered a batch with a malformed result"
        assert len(fake.calls) == 1  # the second batch waits for the next round
        assert (await store.outbox_stats())[GOOD] == {"pending": 4}
        node = await store.node(GOOD)
        assert node is not None and node.failures == 1 and node.last_error == result.error

    run(tmp_path, body)


def test_once_the_first_batch_is_taken_the_rest_are_pipelined(tmp_path: Path) -> None:
    async def body(store: Store, clock: Clock) -> None:
        await queue(store, clock, GOOD, 12)
        fake = FakeTransport({GOOD: takes})
        results = (await sender(store, clock, fake, batch_size=2).send_round())[GOOD]
        assert [r.outcome for r in results] == [BatchOutcome.DONE] * 6
        assert fake.events[:2] == [("start", 0), ("end", 0)]  # the first batch went alone
        assert fake.most_in_flight == PIPELINE  # then PIPELINE at once, never more
        assert sorted(raw for _, _, items in fake.calls for _, raw in items) == sorted(
            b"sealed bytes %d" % n for n in range(12)
        )
        assert (await store.outbox_stats())[GOOD] == {"done": 12}

    run(tmp_path, body)


def test_rows_past_the_give_up_bound_are_given_up_unsent(tmp_path: Path) -> None:
    async def body(store: Store, clock: Clock) -> None:
        [old] = await queue(store, clock, GOOD, 1)
        clock.advance(3 * 86_400 - 10)
        [fresh] = await queue(store, clock, GOOD, 1, start=1)
        clock.advance(10)
        fake = FakeTransport({GOOD: takes})
        [result] = (await sender(store, clock, fake).send_round())[GOOD]
        assert result.outcome is BatchOutcome.DONE
        assert result.items == ((old, OutboxState.GAVE_UP), (fresh, OutboxState.DONE))
        assert fake.calls[0][2] == [["sealed", b"sealed bytes 1"]]  # only the fresh one was sent
        assert (await store.outbox_stats())[GOOD] == {"done": 1, "gave_up": 1}
        assert [g.last_error for g in await store.gave_up()] == ["gave up after the retry bound"]
        # A batch of nothing but expired rows is given up without a call.
        clock.advance(3 * 86_400)
        await queue(store, clock, GOOD, 2, start=2)
        clock.advance(3 * 86_400)
        [result] = (await sender(store, clock, fake).send_round())[GOOD]
        assert result.outcome is BatchOutcome.DONE and outcomes(result) == [OutboxState.GAVE_UP] * 2
        assert len(fake.calls) == 1
        assert (await store.outbox_stats())[GOOD] == {"done": 1, "gave_up": 3}

    run(tmp_path, body)


def refuses_on_the_wire(code: str) -> Answer:
    """A refusal as ``NodeClient`` reports one: any code, a newer node's included."""

    def answer(items: list[Any]) -> Any:
        raise RemoteError.from_wire(code, f"refused with {code}", 401)

    return answer


def test_a_refusal_of_the_request_keeps_the_items_and_warns_the_operator(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Spec §13.7, Delivery: only a batch whose bytes are at fault is rejected whole. A refusal of
    the request (its key, its clock, the relation) can come from the receiver's passing trouble --
    a stale document cache, a clock being set, a document it could not fetch -- so the items stay."""

    async def body(store: Store, clock: Clock) -> None:
        codes = ["auth.invalid", "auth.replayed", "time.future", "signature.invalid", "not_found", "x.newer"]
        for n, code in enumerate(codes):
            destination = f"https://n{n}.example"
            await queue(store, clock, destination, 2, start=10 * n)
            fake = FakeTransport({destination: refuses_on_the_wire(code)})
            with caplog.at_level(logging.WARNING, logger="peerfed.node"):
                [result] = (await sender(store, clock, fake).send_round())[destination]
            assert result.outcome is BatchOutcome.RETRY, code
            assert (await store.outbox_stats())[destination] == {"pending": 2}, code
            assert any(destination in r.getMessage() and "failures" in r.getMessage() for r in caplog.records)
        assert await store.gave_up() == []
        assert len(await store.failing(1)) == 2 * len(codes)  # what 'admin federation failures' lists

    run(tmp_path, body)


# --- proof of work a receiver asks for a first sealed item into a mailbox (spec §13.5) -----------------


def sealed_for(mailbox: int, n: int) -> bytes:
    """A sealed item for the mailbox of the peer made from seed byte ``mailbox``."""
    author, recipient = Identity(bytes([n + 100]) * 32), Identity(bytes([mailbox]) * 32).peer_id
    inner = sign(
        author, Message(recipient, bytes(16), 1, f"item {n}"), created_at=1_700_000_000, expires_at=1_700_086_400
    )
    return seal(inner, EncryptionSecret(bytes([mailbox]) * 32).public).raw


def asks_work(bits: int) -> tuple[Answer, set[bytes]]:
    """A receiver that takes an item into a mailbox it knows, or with ``bits`` of work over its id."""
    known: set[bytes] = set()

    def answer(items: list[Any]) -> Any:
        results: list[dict[str, Any]] = []
        for item in items:
            sealed = parse_sealed(item[1])
            mailbox = bytes(sealed.mailbox)
            if mailbox in known or (len(item) == 3 and work_bits(sealed.id, item[2]) >= bits):
                known.add(mailbox)
                results.append({"status": "ok"})
            else:
                results.append({"status": "error", "code": "auth.work", "message": "work", "bits": bits})
        return {"results": results}

    return answer, known


async def queue_sealed(store: Store, clock: Clock, raws: list[bytes]) -> list[int]:
    await store.set_node_status(GOOD, "active", int(clock()))
    for raw in raws:
        await store.forward_sealed(
            sealed_id=parse_sealed(raw).id, seen_until=int(clock()) + 86_400, destination=GOOD, raw=raw, now=clock()
        )
    return [r.seq for r in await store.due(clock(), 1000)]


def test_a_first_item_into_a_mailbox_is_solved_once_per_mailbox_and_sent_again_at_once(tmp_path: Path) -> None:
    async def body(store: Store, clock: Clock) -> None:
        raws = [sealed_for(1, 1), sealed_for(1, 2), sealed_for(2, 3)]
        seqs = await queue_sealed(store, clock, raws)
        answer, known = asks_work(8)
        fake = FakeTransport({GOOD: answer})
        [result] = (await sender(store, clock, fake).send_round())[GOOD]
        assert result.items == tuple((s, OutboxState.DONE) for s in seqs)
        assert len(fake.calls) == 2  # the batch, then the refused items again with their work
        resent = fake.calls[1][2]
        assert [item[1] for item in resent] == [raws[0], raws[2], raws[1]]  # the worked items go first
        assert [len(item) for item in resent] == [3, 3, 2]  # one proof per mailbox, not per item
        assert len(known) == 2
        assert (await store.outbox_stats())[GOOD] == {"done": 3}

    run(tmp_path, body)


def test_a_receiver_asking_too_much_work_has_the_item_refused_unsolved(tmp_path: Path) -> None:
    async def body(store: Store, clock: Clock) -> None:
        seqs = await queue_sealed(store, clock, [sealed_for(1, 1)])
        answer, _ = asks_work(MAX_WORK_BITS + 1)
        fake = FakeTransport({GOOD: answer})
        [result] = (await sender(store, clock, fake).send_round())[GOOD]
        assert result.items == ((seqs[0], OutboxState.REJECTED),)
        assert len(fake.calls) == 1

    run(tmp_path, body)


def test_a_receivers_answer_holding_nul_characters_is_recorded_and_nothing_wedges(tmp_path: Path) -> None:
    """A hostile node's error messages with U+0000 in them (PostgreSQL text cannot hold it): the
    items are still finished and its words kept for the operator, on both back-ends."""

    def refuses_with_nul(items: list[Any]) -> Any:
        raise RemoteError("no\x00pe", "request.invalid")

    def hostile(items: list[Any]) -> Any:
        return {"results": [{"status": "error", "code": "schema.invalid", "message": "bad\x00\x00ly"} for _ in items]}

    async def body(store: Store, clock: Clock) -> None:
        await queue(store, clock, GOOD, 2)
        await queue(store, clock, OTHER, 1)
        fake = FakeTransport({GOOD: hostile, OTHER: refuses_with_nul})
        results = await sender(store, clock, fake).send_round()
        assert [r.outcome for r in results[OTHER]] == [BatchOutcome.REJECTED]
        assert (await store.outbox_stats()) == {GOOD: {"rejected": 2}, OTHER: {"rejected": 1}}
        reasons = sorted(g.last_error or "" for g in await store.gave_up())
        kept = "\ufffd" if database_for(tmp_path) else "\x00"
        assert reasons == [f"request.invalid: no{kept}pe", *[f"schema.invalid: bad{kept * 2}ly"] * 2]
        assert await sender(store, clock, fake).deliver_due() == 0  # nothing left to send again

    run(tmp_path, body)
