"""The node's store: what a node stores, and for how long (spec §13.9), on SQLite or PostgreSQL.

One mixin per table group, composed here into ``Store``; the database plumbing (the group
writer, the reader, sqlite's errors) is in ``db``, the schema and its migrations in ``schema``,
and every row and status the store returns in ``rows``. sqlite's errors are translated in this
package, and only here, into StorageError. PostgreSQL (``pg``, ``dialect``) takes the same
statements, rewritten, and the same schema, derived.

What is stored is only what the node needs: public cards, key bundles, sealed bytes it
cannot read, routing, and moderation records. No table holds a plaintext private message.
"""

from __future__ import annotations

from pathlib import Path

from .bundles import BundlesMixin
from .db import StorageError, connect
from .erasure import ErasureMixin
from .health import HealthMixin
from .listings import ListingsMixin
from .mailbox import MailboxMixin
from .members import MembersMixin
from .nodes import NodesMixin
from .outbox import OutboxMixin
from .pg import connect_postgres, is_postgres
from .prekeys import PreKeysMixin
from .reports import ReportsMixin
from .rows import (
    Delivery,
    DeliveryResult,
    ErasedTombstone,
    FederatedNode,
    GaveUp,
    Invite,
    KeyBundleRow,
    ListingRow,
    ListingSummary,
    LocalListing,
    MailboxItem,
    Member,
    MemberStatus,
    NodeStatus,
    Outbox,
    OutboxDepth,
    OutboxItem,
    OutboxRow,
    OutboxState,
    OwnKey,
    Report,
    ReportStatus,
    ReportTarget,
    SearchRow,
    SignedIn,
    WithdrawnTombstone,
)
from .schema import MIGRATIONS, SCHEMA_VERSION, migrate, require_current

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Delivery",
    "DeliveryResult",
    "ErasedTombstone",
    "FederatedNode",
    "GaveUp",
    "Invite",
    "KeyBundleRow",
    "ListingRow",
    "ListingSummary",
    "LocalListing",
    "MailboxItem",
    "Member",
    "MemberStatus",
    "NodeStatus",
    "Outbox",
    "OutboxDepth",
    "OutboxItem",
    "OutboxRow",
    "OutboxState",
    "OwnKey",
    "Report",
    "ReportStatus",
    "ReportTarget",
    "SearchRow",
    "SignedIn",
    "StorageError",
    "Store",
    "WithdrawnTombstone",
]


class Store(
    ErasureMixin,
    MailboxMixin,
    MembersMixin,
    BundlesMixin,
    PreKeysMixin,
    ListingsMixin,
    OutboxMixin,
    NodesMixin,
    ReportsMixin,
    HealthMixin,
):
    """Open with ``await Store.open(path)``; close with ``await store.close()``."""

    @classmethod
    async def open(
        cls, path: Path | str, *, synchronous: str = "FULL", migrating: bool = True, readers: int = 1
    ) -> Store:
        """Open (creating or migrating) the database at ``path`` (a SQLite file, or a
        ``postgresql://`` address), with ``readers`` read connections. Raises StorageError.

        With ``migrating=False`` it does not migrate: a database at any other schema version
        than this software's raises StorageError.
        """
        if isinstance(path, str) and is_postgres(path):
            writer, readers_pg = await connect_postgres(
                path, synchronous, SCHEMA_VERSION, creating=migrating, readers=readers
            )
            return cls(writer, readers_pg, None)
        file = Path(path)
        writer, opened = await connect(file, synchronous, migrate if migrating else require_current, readers)
        return cls(writer, opened, file)
