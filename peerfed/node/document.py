"""The node document: this node's signed self-description, re-signed daily, with its previous keys (spec §13.2).

A document lives 7 days and is re-signed once a day, so one fetched just before a refresh is still
valid for most of a week. It lists the current key and up to seven earlier ones that are still
valid, so requests signed just before a key rotation still verify.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from peerfed import __version__
from peerfed.protocol import CLOCK_SKEW, Identity, sign
from peerfed.protocol.node_bodies import NodeDocument, NodeKey

from .config import Config
from .prekeys import CLAIMS_PER_HOUR, CLAIMS_PER_TARGET, STOCK_CAP, UPLOADS_PER_HOUR
from .store import OwnKey, Store

__all__ = ["DOCUMENT_LIFETIME", "DOCUMENT_REFRESH", "DocumentSigner", "SignedDocument"]

DOCUMENT_LIFETIME = 7 * 86_400
DOCUMENT_REFRESH = 86_400


@dataclass(frozen=True)
class SignedDocument:
    """The document as sent (``raw``, signed) and as built (``document``), for the summary."""

    raw: bytes
    document: NodeDocument
    signed_at: int


class DocumentSigner:
    """Builds and signs this node's document from its configuration and keys; caches it a day."""

    def __init__(
        self,
        config: Config,
        store: Store,
        identity: Identity,
        clock: Callable[[], float],
        web_client: bytes | None = None,
    ) -> None:
        self._config = config
        self._web_client = web_client  # the served client's hash, computed once at start (§13.10)
        self._store = store
        self._identity = identity
        self._clock = clock
        self._current: SignedDocument | None = None
        self._previous_keys: list[OwnKey] = []

    async def start(self) -> None:
        """Record this node's key as its own and load the previous ones still valid (storage errors raise)."""
        now = int(self._clock())
        own = bytes(self._identity.peer_id)
        await self._store.record_own_key(own, now - CLOCK_SKEW, 2**40 - 1)
        self._previous_keys = [k for k in await self._store.own_keys() if k.key != own and k.valid_until > now]

    def current(self) -> SignedDocument:
        """The signed node document, re-signed once a day."""
        now = int(self._clock())
        if self._current is not None and now - self._current.signed_at < DOCUMENT_REFRESH:
            return self._current
        c = self._config
        keys = [NodeKey(bytes(self._identity.peer_id), now - CLOCK_SKEW, now + DOCUMENT_LIFETIME + DOCUMENT_REFRESH)]
        keys += [NodeKey(k.key, k.valid_from, k.valid_until) for k in self._previous_keys[:7]]
        doc = NodeDocument(
            url=c.url,
            name=c.name,
            description=c.description,
            contact=c.contact,
            registration=c.registration,
            code_of_conduct=c.code_of_conduct,
            resources=c.resources,
            mailbox_ttl=c.mailbox_ttl,
            max_listing_lifetime=c.max_listing_lifetime,
            limits=(
                ("max-bytes", 65_536),
                ("clock-skew", CLOCK_SKEW),
                ("join-per-hour", c.join_per_hour),
                ("listings-per-hour", c.listings_per_hour),
                ("sends-per-minute", c.sends_per_minute),
                ("mailbox-cap", c.mailbox_cap),
                ("mailbox-items-per-sender", c.mailbox_items_per_sender),
                ("mailbox-items-per-node", c.mailbox_items_per_node),
                ("first-contact-work-bits", c.first_contact_work_bits),
                ("join-work-bits", c.join_work_bits),
                ("idle-timeout", int(c.idle_timeout)),
                ("batch-size", c.batch_size),
                ("keys-per-hour", c.keys_per_hour),
                ("prekeys-per-peer", STOCK_CAP),
                ("prekey-uploads-per-hour", UPLOADS_PER_HOUR),
                ("prekey-claims-per-hour", CLAIMS_PER_HOUR),
                ("prekey-claims-per-peer", CLAIMS_PER_TARGET),
                ("node-listings-per-hour", c.node_listings_per_hour),
                ("node-bundles-per-hour", c.node_bundles_per_hour),
                ("node-bytes-per-minute", c.node_bytes_per_minute),
                ("mailbox-bytes-per-node", c.mailbox_bytes_per_node),
                ("max-followers", c.max_followers),
                ("follows-per-host", c.follows_per_host),
                ("live-per-address", c.max_live_per_address),
                ("live-auth-grace", int(c.live_auth_grace)),
            ),
            protocols=("peerfed/1",),
            software=f"peerfed-py/{__version__}",
            federation=c.federation,
            keys=tuple(keys),
            vocabulary=c.vocabulary,
            web_client=self._web_client,
        )
        raw = sign(self._identity, doc, created_at=now, expires_at=now + DOCUMENT_LIFETIME).raw
        self._current = SignedDocument(raw, doc, now)
        return self._current
