"""Sealed messages taken a burst at a time (spec §7.3, §13.5, §13.7, §13.9).

Into members' mailboxes, or queued for the node of their recipient, in one write.

A sealed message is taken once: its id is remembered in ``seen_sealed`` in the same write that
delivers or queues it. ``deliver_mail`` and ``forward_mail`` take many at once, in a few
statements for all (``many``); the group writer gives them the messages that came together. One
that comes alone goes through ``deliver_one``, as do the messages of a mailbox at its cap, where
each makes room for itself; ``forward_mail`` takes one alone as a burst of one.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from peerfed.protocol import RequestError

from .db import Conn
from .many import pieces, values
from .outbox import enqueue
from .rows import Delivery, DeliveryResult, MemberStatus, NodeStatus, OutboxItem

__all__ = ["Forward", "NewMail", "deliver_mail", "deliver_one", "forward_mail"]


class NewMail(NamedTuple):
    """A sealed message for a mailbox here (``deliver``'s arguments)."""

    sealed_id: bytes
    mailbox: bytes
    raw: bytes
    now: int
    expires_at: int
    seen_until: int
    cap: int
    source: bytes


class Forward(NamedTuple):
    """A sealed message for a member of another node (``forward_sealed``'s arguments)."""

    sealed_id: bytes
    seen_until: int
    destination: str
    raw: bytes
    now: float


def _member(status: str | None, moved_to: str | None) -> DeliveryResult | None:
    """MOVED or ABSENT for a mailbox whose member is not here; None for a member."""
    if status == MemberStatus.MOVED and moved_to:
        return DeliveryResult(Delivery.MOVED, moved_to=str(moved_to))
    if status != MemberStatus.MEMBER:
        return DeliveryResult(Delivery.ABSENT)
    return None


def deliver_one(db: Conn, item: NewMail) -> DeliveryResult:
    """One sealed message, checked and delivered in the caller's write."""
    member = db.execute("SELECT status, moved_to FROM members WHERE peer=?", (item.mailbox,)).fetchone()
    elsewhere = _member(None, None) if member is None else _member(member[0], member[1])
    if elsewhere is not None:
        return elsewhere
    cursor = db.execute(
        "INSERT INTO seen_sealed VALUES (?, ?) ON CONFLICT(id) DO NOTHING", (item.sealed_id, item.seen_until)
    )
    if cursor.rowcount != 1:
        return DeliveryResult(Delivery.DUPLICATE)
    waiting = db.execute("SELECT COUNT(*) FROM mailbox WHERE mailbox=?", (item.mailbox,)).fetchone()[0]
    for _ in range(waiting - item.cap + 1):  # once a mailbox is at its cap: one out, one in
        db.execute(
            "DELETE FROM mailbox WHERE seq = (SELECT seq FROM mailbox WHERE mailbox=? AND source IS"
            " (SELECT source FROM mailbox WHERE mailbox=? GROUP BY source ORDER BY COUNT(*) DESC,"
            " MIN(seq) LIMIT 1) ORDER BY seq LIMIT 1)",
            (item.mailbox, item.mailbox),
        )
    cursor = db.execute(
        "INSERT INTO mailbox (id, mailbox, raw, received_at, expires_at, source) VALUES (?, ?, ?, ?, ?, ?)",
        (item.sealed_id, item.mailbox, item.raw, item.now, item.expires_at, item.source),
    )
    return DeliveryResult(Delivery.DELIVERED, seq=int(cursor.lastrowid or 0))


def deliver_mail(db: Conn, items: list[NewMail]) -> list[tuple[bool, Any]]:
    """Deliver sealed messages in one write, a few statements for all of them: (True, its
    DeliveryResult) each, as ``deliver_one`` would give it in the same order. Raises the
    driver's error if a statement fails: the group writer then delivers each alone."""
    firsts: dict[bytes, int] = {}
    for i, item in enumerate(items):
        firsts.setdefault(item.sealed_id, i)
    checks = [
        db.execute(
            "SELECT v.column1, m.status, m.moved_to, (SELECT 1 FROM seen_sealed WHERE id = v.column2),"
            " (SELECT COUNT(*) FROM mailbox WHERE mailbox = v.column3)"
            f" FROM (VALUES {values(3, len(span))}) v LEFT JOIN members m ON m.peer = v.column3",
            [x for i in span for x in (i, items[i].sealed_id, items[i].mailbox)],
        )
        for span in pieces(range(len(items)))
    ]
    results: list[DeliveryResult | None] = [None] * len(items)
    waiting: dict[bytes, int] = {}
    for cursor in checks:  # read after every piece is sent: one wait for all on PostgreSQL
        for i, status, moved_to, seen, count in cursor.fetchall():
            results[i] = _member(status, moved_to) or (DeliveryResult(Delivery.DUPLICATE) if seen else None)
            waiting[items[i].mailbox] = int(count)
    new = [i for i, result in enumerate(results) if result is None and firsts[items[i].sealed_id] == i]
    for i in new:
        waiting[items[i].mailbox] += 1
    # A message a second time in the burst is told what it would be told after the first; its
    # mailbox, and one this burst would take past its cap, take their messages one at a time,
    # in the order they came, as alone.
    later = [i for i, item in enumerate(items) if firsts[item.sealed_id] != i]
    again = {items[i].mailbox for i in later}
    full = {i for i in new if waiting[items[i].mailbox] > items[i].cap or items[i].mailbox in again}
    fits = [items[i] for i in new if i not in full]
    for rows in pieces(fits):
        db.execute(
            f"INSERT INTO seen_sealed (id, expires_at) VALUES {values(2, len(rows))}",
            [x for item in rows for x in (item.sealed_id, item.seen_until)],
        )
        db.execute(
            f"INSERT INTO mailbox (id, mailbox, raw, received_at, expires_at, source) VALUES {values(6, len(rows))}",
            [x for m in rows for x in (m.sealed_id, m.mailbox, m.raw, m.now, m.expires_at, m.source)],
        )
    numbered = [
        db.execute(
            f"SELECT b.id, b.seq FROM (VALUES {values(1, len(rows))}) v JOIN mailbox b ON b.id = v.column1",
            [item.sealed_id for item in rows],
        )
        for rows in pieces(fits)
    ]
    seqs = {bytes(sealed_id): int(seq) for cursor in numbered for sealed_id, seq in cursor.fetchall()}
    for i in new:
        if i not in full:
            results[i] = DeliveryResult(Delivery.DELIVERED, seq=seqs[items[i].sealed_id])
    for i in sorted(full.union(later)):
        results[i] = deliver_one(db, items[i])
    return [(True, result) for result in results]


def forward_mail(db: Conn, items: list[Forward]) -> list[tuple[bool, Any]]:
    """Queue sealed messages for active federated nodes, once each, in one write: (True, whether
    it was queued: False if seen already) or (False, RequestError ``federation.refused``) for a
    destination that is not an active node. Raises the driver's error if a statement fails."""
    places = sorted({item.destination for item in items})
    known = [
        db.execute(
            f"SELECT v.column1, n.status FROM (VALUES {values(1, len(urls))}) v JOIN nodes n ON n.url = v.column1",
            list(urls),
        )
        for urls in pieces(places)
    ]
    seen = [
        db.execute(
            f"SELECT s.id FROM (VALUES {values(1, len(span))}) v JOIN seen_sealed s ON s.id = v.column1",
            [items[i].sealed_id for i in span],
        )
        for span in pieces(range(len(items)))
    ]
    active = {url for cursor in known for url, status in cursor.fetchall() if status == NodeStatus.ACTIVE}
    taken = {bytes(row[0]) for cursor in seen for row in cursor.fetchall()}
    outcomes: list[tuple[bool, Any]] = []
    new: list[Forward] = []
    for item in items:
        if item.destination not in active:
            refused = RequestError(f"this node does not federate with {item.destination}", "federation.refused")
            outcomes.append((False, refused))
        elif item.sealed_id in taken:
            outcomes.append((True, False))  # seen already, or taken earlier in this burst
        else:
            taken.add(item.sealed_id)  # (a copy refused for its destination was not taken)
            new.append(item)
            outcomes.append((True, True))
    for rows in pieces(new):
        db.execute(
            f"INSERT INTO seen_sealed (id, expires_at) VALUES {values(2, len(rows))}",
            [x for item in rows for x in (item.sealed_id, item.seen_until)],
        )
    if new:
        queue = [OutboxItem(item.destination, "sealed", item.sealed_id, item.raw) for item in new]
        enqueue(db, queue, max(item.now for item in new))
    return outcomes
