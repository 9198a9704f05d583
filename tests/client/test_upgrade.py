"""Device homes made by the release before reach-outs carried the reacher's bundle (spec §8.2).

The fixtures are SQL dumps of two real device databases, Ana's and Ben's, written by that release
(main at d6cd831) after Ben reached out with a five-element reach-out, Ana accepted and Ben sent one
message. This release refuses such a reach-out when it arrives, but must still read it from a
device's own history, whether the saved connection state is used or rebuilt from the events.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from peerfed.client.peer import Peer

pytestmark = pytest.mark.one_backend("no node: the client's own database across releases")

FIXTURES = Path(__file__).parent / "fixtures" / "before_bundled_reach_outs"
CONNECTION = "b57587b589e9b4ed4b960eb2c7353c24"
WRITTEN_AT = 1796279938


def restore_home(home: Path, who: str, *, drop_saved_states: bool) -> None:
    home.mkdir(parents=True)
    db = sqlite3.connect(home / "peer.sqlite3")
    db.executescript((FIXTURES / f"{who}.sql").read_text())
    if drop_saved_states:
        db.execute("DELETE FROM connection_states")
        db.commit()
    db.close()


@pytest.mark.parametrize("drop_saved_states", [False, True], ids=["saved-state", "replayed"])
@pytest.mark.parametrize(
    ("who", "other", "side", "sender"), [("ana", "Ben", "author", "them"), ("ben", "Ana", "reacher", "me")]
)
def test_a_conversation_begun_before_the_upgrade_still_reads(
    tmp_path: Path, who: str, other: str, side: str, sender: str, drop_saved_states: bool
) -> None:
    restore_home(tmp_path / who, who, drop_saved_states=drop_saved_states)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            peer = await Peer.load(tmp_path / who, http, clock=lambda: WRITTEN_AT + 60)
            try:
                [connection] = await peer.connections()
                assert connection["id"] == CONNECTION
                assert (connection["name"], connection["side"], connection["state"]) == (other, side, "accepted")
                assert connection["hello"] == "hello from before the upgrade"
                shown = await peer.messages(CONNECTION[:8])
                assert shown["state"] == "accepted"
                assert [(m["from"], m["text"]) for m in shown["messages"]] == [(sender, "first message")]
            finally:
                await peer.close()

    asyncio.run(scenario())
