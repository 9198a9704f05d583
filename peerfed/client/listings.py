"""Listings from this side: publish, withdraw, browse, and the peers met there (spec §6, §4.3, §13.5).

Publishing signs a listing (spec §6.2) or a withdrawal (spec §6.3) and hands it to the home
node. Browsing asks the node's directory and trusts none of its answer: every listing and every
key bundle (spec §4.3) returned is verified here (spec §5.5), bundles are remembered for
sealing to their authors later, and listings by blocked peers are not shown. A topic search is
checked with the protocol's own rule (spec §6.4) before it is sent, and every listing answered
must meet it: a node cannot slip other listings into a search.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from peerfed.protocol import Context, Envelope, KeyBundle, Listing, PeerId, RemoteError, Withdrawal, open_signed, unpack
from peerfed.protocol.envelope import HEADER_BYTES
from peerfed.protocol.topics import listing_matches, query_words

from .device import Device, one_match
from .views import listing_card_json, own_listing_json

__all__ = ["Listings"]


class Listings:
    """This peer's listings, the directory, and the key bundles learnt from it."""

    def __init__(self, device: Device) -> None:
        self.device = device

    async def post(self, listing: Listing, expires_in: int) -> dict[str, Any]:
        """Publish ``listing`` for ``expires_in`` seconds; raises InvalidValue, RemoteError, NodeUnreachable."""
        device = self.device
        env = device.sign(listing, expires_in)
        await device.call(lambda: device.api.publish(env.raw))
        await device.state.put_listing(env.id, env.raw, bytes(device.id), None, True, env.expires_at, device.now())
        return {"id": env.id.hex(), "kind": listing.kind.value, "expires_at": env.expires_at}

    async def mine(self) -> list[dict[str, Any]]:
        """This peer's own listings, oldest first, live, expired or withdrawn."""
        now = self.device.now()
        return [own_listing_json(row, _own_listing(row.raw), now) for row in await self.device.state.my_listings()]

    async def withdraw(self, prefix: str) -> dict[str, Any]:
        """Withdraw one of this peer's listings from every node that has it (spec §6.3, §13.6)."""
        device = self.device
        listing_id = await self.resolve(prefix, mine=True)
        row = await device.state.listing(listing_id)
        assert row is not None
        env = device.sign(Withdrawal(listing_id), until=max(row.expires_at, device.now() + 60))
        await device.call(lambda: device.api.publish(env.raw))
        await device.state.mark_withdrawn(listing_id)
        return {"id": listing_id.hex(), "status": "withdrawn"}

    async def browse(self, topic: str | Sequence[str] | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Search the home node's directory; verify every listing and key bundle returned.

        ``topic`` is one query by words or several, each to be met (spec §6.4). Raises
        RequestError (request.invalid) for a query without words or with too many, before
        asking the node; RemoteError, NodeUnreachable.
        """
        device = self.device
        topics = [topic] if isinstance(topic, str) else list(topic or ())
        queries = query_words(topics)
        if topics:
            filters["topic"] = topics
        page = await device.call(lambda: device.api.directory(**filters))
        results = []
        now = device.now()
        for item in page.get("listings", []):
            try:
                env = open_signed(base64.b64decode(item["listing"]), context=Context.ENVELOPE, now=now)
            except (RemoteError, ValueError, KeyError):
                continue  # a node that serves a bad listing does not get it shown
            listing = env.body
            if not isinstance(listing, Listing) or not listing_matches(listing.topics, queries):
                continue  # not what was asked for, whatever the node says
            if item.get("key_bundle"):
                await self.remember_bundle(base64.b64decode(item["key_bundle"]), env.author)
            peer = await device.state.peer(bytes(env.author))
            if peer and peer.blocked:
                continue
            await device.state.put_listing(
                env.id, env.raw, bytes(env.author), item.get("origin"), env.author == device.id, env.expires_at, now
            )
            results.append(listing_card_json(env, listing, name=peer.name if peer else None, origin=item.get("origin")))
        return results

    async def remember_bundle(self, raw: bytes, author: PeerId) -> KeyBundle | None:
        """Verify and keep ``author``'s key bundle unless a newer one is held (spec §4.3).

        Returns the bundle now held for ``author``; None if ``raw`` does not verify or is someone else's.
        """
        device = self.device
        try:
            env = open_signed(raw, context=Context.KEY_BUNDLE, now=device.now())
        except RemoteError:
            return None
        if env.author != author:
            return None
        bundle = env.body
        assert isinstance(bundle, KeyBundle)
        held = await device.state.peer(bytes(author))
        if held and held.bundle and held.bundle_expires > device.now():
            kept = open_signed(held.bundle, context=Context.KEY_BUNDLE, now=device.now())
            # The newest bundle is the one created last; on a tie the one held stays (spec §4.3).
            if kept.created_at >= env.created_at:
                assert isinstance(kept.body, KeyBundle)
                return kept.body
        await device.state.put_peer(bytes(author), raw, env.expires_at, bundle.home, bundle.pseudonym)
        return bundle

    async def bundle_for(self, peer: PeerId) -> KeyBundle:
        """``peer``'s key bundle: the one kept, unless it nears expiry, else the node's.

        Raises RemoteError (``not_found``; ``signature.invalid`` if the node's does not verify).
        """
        body = (await self.signed_bundle_for(peer)).body
        assert isinstance(body, KeyBundle)
        return body

    async def signed_bundle_for(self, peer: PeerId) -> Envelope:
        """``peer``'s key bundle as the signed object (a scheme-2 session starts from it, spec §14.2)."""
        device = self.device
        row = await device.state.peer(bytes(peer))
        if row and row.bundle and row.bundle_expires > device.now() + 60:
            return open_signed(row.bundle, context=Context.KEY_BUNDLE, now=device.now())
        answer = await device.call(lambda: device.api.keys(peer.text))
        if await self.remember_bundle(base64.b64decode(answer["key_bundle"]), peer) is None:
            raise RemoteError("the node served a key bundle that does not verify", "signature.invalid")
        held = await device.state.peer(bytes(peer))
        assert held is not None and held.bundle is not None
        return open_signed(held.bundle, context=Context.KEY_BUNDLE, now=device.now())

    async def resolve(self, prefix: str, *, mine: bool = False) -> bytes:
        """The listing id ``prefix`` names; raises ClientError (``local.not_found``, ``local.ambiguous``)."""
        state = self.device.state
        found = await state.prefix("listings", prefix)
        if mine:
            rows = [await state.listing(f) for f in found]
            found = [f for f, r in zip(found, rows, strict=True) if r and r.mine]
        return one_match(found, prefix, "listing", "run peerfed browse (or peerfed listings) first")

    async def resolve_peer(self, text: str) -> PeerId:
        """The peer a full ``pf1...`` id or a prefix of a known one names; raises ClientError or SchemaError."""
        if len(text) == 61:
            return PeerId.from_text(text)
        matches = [p.peer for p in await self.device.state.peers() if PeerId(p.peer).text.startswith(text)]
        return PeerId(one_match(matches, text, "peer", "use the full pf1... id"))


def _own_listing(raw: bytes) -> Listing:
    # Signed here and stored as sent: decode the body without verifying our own signature again.
    payload = unpack(raw[HEADER_BYTES:])
    return Listing.from_wire(payload[3])  # type: ignore[index]
