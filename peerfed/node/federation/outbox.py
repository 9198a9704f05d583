"""What a node queues for the nodes it federates with: fan-out rows and item keys (spec §13.7, Delivery).

Everything a node must send is written to the durable outbox in the same transaction as the change
that caused it; the parts build the rows here and hand them to the store's write.
"""

from __future__ import annotations

from peerfed.protocol import crypto

from ..store import NodeStatus, OutboxItem, Store

__all__ = ["OutboxItem", "fan_out", "item_key"]


def item_key(raw: bytes) -> bytes:
    """The outbox's deduplication key for an item without an id of its own (key bundles)."""
    return crypto.blake2b_256(raw, crypto.Person.ITEM)


async def fan_out(store: Store, kind: str, item: bytes, raw: bytes) -> list[OutboxItem]:
    """One outbox row per node this one federates with (status active), for one item."""
    return [OutboxItem(n.url, kind, item, raw) for n in await store.nodes(NodeStatus.ACTIVE)]
