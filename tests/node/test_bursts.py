"""Any burst ends as the same writes one at a time would (store/publish.py, store/deliver.py, spec
§13.9), on both back-ends: random bursts of listings and of sealed messages, each run together
on one store and one by one on another, every answer and every row compared."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.node import test_deliver as mail
from tests.node import test_publish as listings

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
BOXES = ["a", "b", "c", "full", "m", "nobody"]  # members, a full mailbox, moved, no such member


def answer(outcome: Any) -> Any:
    """What a caller is told: a value, an error's code, a delivery's status (its number aside)."""
    if isinstance(outcome, BaseException):
        return getattr(outcome, "code", type(outcome).__name__)
    if hasattr(outcome, "status"):
        return (outcome.status, outcome.moved_to)
    return outcome


async def one_by_one(calls: list[Any], call: Any) -> list[Any]:
    told = []
    for args in calls:
        try:
            told.append(await call(*args))
        except Exception as exc:  # what its caller would be told
            told.append(exc)
    return told


@SETTINGS
@given(
    calls=st.lists(
        st.tuples(st.sampled_from([*range(24), 500, 1000, 1001]), st.integers(1, 3)), min_size=2, max_size=40
    ),
    cap=st.sampled_from([2, 3, 12, 13]),
)
def test_any_burst_of_sealed_messages_ends_as_one_at_a_time(calls: list[tuple[int, int]], cap: int) -> None:
    # A sealed id names its mailbox (it is a digest of bytes sealed to it), so message n always
    # goes to the same one. 500 was seen already; 1000 and 1001 are in the full mailbox already.
    def home(n: int) -> str:
        return "full" if n >= 1000 else BOXES[n % len(BOXES)]

    async def scenario() -> None:
        folder = Path(tempfile.mkdtemp(prefix="peerfed-bursts-"))
        together, alone = await mail.prepared(folder / "together"), await mail.prepared(folder / "alone")
        try:

            def deliver(store: Any) -> Any:
                async def call(n: int, sender: int) -> Any:
                    return await store.deliver(
                        sealed_id=mail.sealed(n),
                        mailbox=mail.peer(home(n)),
                        raw=b"sealed %d" % n,
                        now=mail.NOW,
                        expires_at=mail.NOW + 86_400,
                        seen_until=mail.NOW + 90_000,
                        cap=cap,
                        source=mail.source(sender),
                    )

                return call

            burst = await asyncio.gather(*(deliver(together)(*c) for c in calls), return_exceptions=True)
            alone_told = await one_by_one(calls, deliver(alone))
            assert [answer(o) for o in burst] == [answer(o) for o in alone_told]
            assert await mail.mailboxes(together) == await mail.mailboxes(alone)  # each in its order
            assert await mail.seen(together) == await mail.seen(alone)
        finally:
            await together.close()
            await alone.close()

    asyncio.run(scenario())


@SETTINGS
@given(
    calls=st.lists(
        st.tuples(st.sampled_from([*range(12), 900, 901]), st.sampled_from(["a", "a", "b", "c"]), st.booleans()),
        min_size=2,
        max_size=40,
    ),
    federated=st.booleans(),
)
def test_any_burst_of_listings_ends_as_one_at_a_time(calls: list[tuple[int, str, bool]], federated: bool) -> None:
    # a holds a key bundle, b none, c was erased; 900 was withdrawn, 901 is held already.
    async def scenario() -> None:
        folder = Path(tempfile.mkdtemp(prefix="peerfed-bursts-"))
        together, alone = await listings.prepared(folder / "together"), await listings.prepared(folder / "alone")
        try:
            if federated:
                for store in (together, alone):
                    await store._writer.run(
                        lambda db: db.execute(
                            "INSERT INTO nodes (url, status, added_at) VALUES ('https://b.example', 'active', 1)"
                        )
                    )

            def publish(store: Any) -> Any:
                async def call(n: int, who: str, local: bool) -> Any:
                    return await listings.publish(store, n, who, local=local)

                return call

            burst = await asyncio.gather(*(publish(together)(*c) for c in calls), return_exceptions=True)
            alone_told = await one_by_one(calls, publish(alone))
            assert [answer(o) for o in burst] == [answer(o) for o in alone_told]
            assert await listings.tables(together) == await listings.tables(alone)
            queued = []
            for store in (together, alone):
                rows = await store._all("SELECT destination, kind, item FROM outbox ORDER BY seq")
                queued.append([(r[0], r[1], bytes(r[2])) for r in rows])
                kinds = [r[1] for r in rows]
                if "listing" in kinds:  # the author's bundle travels before their listings
                    assert kinds[0] == "key-bundle" and kinds.count("key-bundle") == 1
            assert sorted(queued[0]) == sorted(queued[1])
        finally:
            await together.close()
            await alone.close()

    asyncio.run(scenario())
