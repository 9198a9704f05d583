"""A peer's own tools against abuse: blocking a peer, reporting to moderators (spec §13.5, §12).

A block lives on this device only: the blocked key's reach-outs and messages are dropped
whatever node they come from, its unanswered reach-outs are forgotten, and its listings are
not shown. A report goes to the home node's
moderators and discloses only what the reporting peer chooses: the other peer's signed
messages in one connection, which the moderators can verify (spec §12: no deniability).
"""

from __future__ import annotations

from typing import Any

from .conversations import Conversations
from .device import Device
from .listings import Listings

__all__ = ["Safety"]


class Safety:
    """Blocking and reporting."""

    def __init__(self, device: Device, listings: Listings, conversations: Conversations) -> None:
        self.device = device
        self.listings = listings
        self.conversations = conversations

    async def block(self, text: str) -> dict[str, Any]:
        """Never hear from the peer ``text`` names again; raises ClientError or SchemaError."""
        peer = await self.listings.resolve_peer(text)
        await self.device.state.block(bytes(peer))
        # Their unanswered reach-outs go too, without a word to them (spec §13.5): nothing to look up.
        dropped = await self.conversations.drop_pending(bytes(peer))
        return {"peer": peer.text, "blocked": True, "dropped": dropped}

    async def report(self, target: str, reason: str, disclose: str | None = None) -> dict[str, Any]:
        """Report a listing or a peer; ``disclose`` names a connection whose other side's messages go along."""
        device = self.device
        if target.startswith("pf1"):
            resolved = (await self.listings.resolve_peer(target)).text
        else:
            resolved = (await self.listings.resolve(target)).hex()
        disclosed: list[bytes] = []
        if disclose:
            connection = await self.conversations.resolve(disclose)
            me = bytes(device.id)
            disclosed = [e.raw for e in await device.state.events(connection) if e.author != me]
        answer = await device.call(lambda: device.api.report(resolved, reason, disclosed))
        return {"id": answer["id"], "status": answer["status"], "disclosed": len(disclosed)}

    async def reports(self) -> dict[str, Any]:
        """This peer's own reports with their status and the moderators' outcome (spec §13.5 ``GET /reports``).

        Raises RemoteError with the node's code, or NodeUnreachable.
        """
        device = self.device
        answer = await device.call(device.api.reports)
        return {"reports": list(answer.get("reports", []))}
