"""What the store returns: one frozen row type per kind of result, one enum per status (spec §13.9).

Statuses are ``StrEnum`` members whose values are the strings in the database and, where a
status is also spoken on the wire (a delivery's ``"delivered"``, ``"queued"``, ``"duplicate"``),
the strings there: a member compares equal to its string, so nothing a client or a node sees
changes. Rows carry bytes as ``bytes``, never as sqlite's buffers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
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
    "WithdrawnTombstone",
]


class MemberStatus(StrEnum):
    """A peer's standing on this node (spec §13.4, §13.5 "Moving")."""

    MEMBER = "member"
    PENDING = "pending"  # waits for an operator's approval
    MOVED = "moved"  # lives at ``moved_to`` now; its mail follows it there


class NodeStatus(StrEnum):
    """This node's relation with another (spec §13.7 "Following")."""

    REQUESTED = "requested"  # we asked it to federate
    PENDING = "pending"  # it asked us; an operator decides
    ACTIVE = "active"
    BLOCKED = "blocked"


class OutboxState(StrEnum):
    """Where an outbox item is in its delivery (spec §13.7 "Delivery")."""

    PENDING = "pending"
    DONE = "done"
    REJECTED = "rejected"  # refused for a reason retrying cannot fix, or its destination blocked
    GAVE_UP = "gave_up"  # past the retry bound


class ReportStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class ReportTarget(StrEnum):
    """What a report is about; ``erased`` once the peer it named erased itself (spec §13.6)."""

    LISTING = "listing"
    PEER = "peer"
    ERASED = "erased"


class Delivery(StrEnum):
    """A sealed message's outcome, everywhere it is spoken of (spec §13.5 ``send``).

    ``delivered``, ``queued`` and ``duplicate`` are what a client is answered; ``moved``
    and ``absent`` stay inside the node, which turns them into a forward or a quiet drop.
    """

    DELIVERED = "delivered"  # in a local member's mailbox
    QUEUED = "queued"  # in the outbox for the mailbox's node
    DUPLICATE = "duplicate"  # these sealed bytes were taken before
    MOVED = "moved"  # the member moved; forward to ``moved_to``
    ABSENT = "absent"  # no such member here


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What ``deliver`` did: ``seq`` when delivered, ``moved_to`` when moved."""

    status: Delivery
    seq: int | None = None
    moved_to: str | None = None


@dataclass(frozen=True, slots=True)
class Member:
    peer: bytes
    status: MemberStatus
    joined_at: int
    moved_to: str | None
    device: bytes | None = None  # the device its mail goes to (spec §13.4); None: not told yet
    device_at: int | None = None  # when that device signed in first or took over


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Whose session a token opens, and when another device took over from it (None: it did not)."""

    peer: bytes
    moved_at: int | None


@dataclass(frozen=True, slots=True)
class Invite:
    code_hash: bytes
    created_at: int
    expires_at: int
    uses_left: int
    revoked: bool
    note: str | None


@dataclass(frozen=True, slots=True)
class OwnKey:
    """One of this node's signing keys and when it is valid (for the node document, §13.2)."""

    key: bytes
    valid_from: int
    valid_until: int


@dataclass(frozen=True, slots=True)
class FederatedNode:
    """Another node this one knows, and its health: the last exchange (a push taken, a pull page
    had) that worked, the last that failed with its code and time, and failures in a row."""

    url: str
    status: NodeStatus
    added_at: int
    last_ok: int | None
    last_error: str | None
    failures: int
    breaker_until: float
    pull_cursor: int
    document_expires: int
    last_error_code: str | None = None
    last_error_at: int | None = None


@dataclass(frozen=True, slots=True)
class KeyBundleRow:
    """A peer's newest key bundle; ``origin`` is None for one of this node's own peers."""

    raw: bytes
    origin: str | None


@dataclass(frozen=True, slots=True)
class ListingRow:
    """A held listing; ``origin`` is None for one published here."""

    raw: bytes
    origin: str | None
    author: bytes


@dataclass(frozen=True, slots=True)
class LocalListing:
    """A listing published here, for another node's catch-up pull."""

    seq: int
    raw: bytes
    author: bytes


@dataclass(frozen=True, slots=True)
class ListingSummary:
    """A listing as the operator's list shows it."""

    id: bytes
    author: bytes
    kind: str
    origin: str | None
    expires_at: int


@dataclass(frozen=True, slots=True)
class SearchRow:
    """A directory result: the cursor, the listing, its stored entry (None before schema 2), its author's bundle."""

    seq: int
    raw: bytes
    origin: str | None
    entry: str | None
    key_bundle: bytes | None


@dataclass(frozen=True, slots=True)
class MailboxItem:
    seq: int
    id: bytes
    raw: bytes
    received_at: int


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One item to queue for one destination: ``item`` deduplicates it, ``raw`` is what is sent."""

    destination: str
    kind: str
    item: bytes
    raw: bytes


Outbox = Iterable[OutboxItem]


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A due outbox item, with its payload and its attempts so far."""

    seq: int
    destination: str
    kind: str
    item: bytes
    raw: bytes
    created_at: int
    attempts: int


@dataclass(frozen=True, slots=True)
class OutboxDepth:
    """Items still pending for one destination node, and when the oldest of them was queued."""

    destination: str
    items: int
    oldest_created_at: int


@dataclass(frozen=True, slots=True)
class GaveUp:
    """An outbox item given up, rejected, or still retried after failing, for the operator."""

    destination: str
    kind: str
    item: bytes
    created_at: int
    attempts: int
    last_error: str | None
    state: OutboxState = OutboxState.GAVE_UP  # PENDING: still being retried, and failing


@dataclass(frozen=True, slots=True)
class Report:
    id: int
    reporter: bytes
    target_kind: ReportTarget
    target: bytes | None
    reason: str
    disclosed: bytes | None
    created_at: int
    status: ReportStatus
    outcome: str | None


@dataclass(frozen=True, slots=True)
class WithdrawnTombstone:
    """A withdrawal in force of a listing by one of this node's members, for a catch-up page."""

    cursor: int
    listing: bytes
    author: bytes
    until: int


@dataclass(frozen=True, slots=True)
class ErasedTombstone:
    """An erasure in force (the hashed peer id only), for a catch-up page."""

    cursor: int
    author_hash: bytes
    until: int
