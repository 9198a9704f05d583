"""Federated nodes, their keys and health, this node's own keys, request nonces (spec §13.2, §13.3, §13.7, §13.9)."""

from __future__ import annotations

from collections.abc import Sequence

from .db import Conn, Database
from .rows import FederatedNode, NodeStatus, OwnKey

__all__ = ["NodesMixin"]


class NodesMixin(Database):
    """Every call raises StorageError if the database fails."""

    # --- this node's keys ------------------------------------------------------------------

    async def own_keys(self) -> list[OwnKey]:
        """Every key this node has signed with, current and previous."""
        return [
            OwnKey(bytes(r[0]), r[1], r[2])
            for r in await self._all("SELECT key, valid_from, valid_until FROM own_keys")
        ]

    async def record_own_key(self, key: bytes, valid_from: int, valid_until: int) -> None:
        await self._write(
            "INSERT INTO own_keys VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET valid_until=excluded.valid_until",
            (key, valid_from, valid_until),
        )

    # --- other nodes -----------------------------------------------------------------------

    async def node(self, url: str) -> FederatedNode | None:
        row = await self._one(
            "SELECT url, status, added_at, last_ok, last_error, failures, breaker_until, pull_cursor,"
            " document_expires, last_error_code, last_error_at FROM nodes WHERE url=?",
            (url,),
        )
        if row is None:
            return None
        return FederatedNode(
            url=row[0],
            status=NodeStatus(row[1]),
            added_at=row[2],
            last_ok=row[3],
            last_error=row[4],
            failures=row[5],
            breaker_until=row[6],
            pull_cursor=row[7],
            document_expires=row[8],
            last_error_code=row[9],
            last_error_at=row[10],
        )

    async def nodes(self, status: str | None = None) -> list[FederatedNode]:
        """Every known node, or those with ``status``, by URL."""
        rows = await self._all(
            "SELECT url FROM nodes" + (" WHERE status=?" if status else "") + " ORDER BY url",
            (status,) if status else (),
        )
        found = [await self.node(r[0]) for r in rows]
        return [n for n in found if n is not None]

    async def node_statuses(self) -> list[tuple[str, NodeStatus]]:
        """Every known node's URL and status, in one query (the follower caps count them)."""
        rows = await self._all("SELECT url, status FROM nodes")
        return [(row[0], NodeStatus(row[1])) for row in rows]

    async def set_node_status(self, url: str, status: str, now: int) -> None:
        """Record ``url`` with ``status`` (a NodeStatus). Raises ValueError for any other status.

        Only an active node's document and keys are kept (spec §13.9): any other status, blocking
        above all, drops them in the same transaction.
        """
        value = NodeStatus(status).value

        def job(db: Conn) -> None:
            db.execute(
                "INSERT INTO nodes (url, status, added_at) VALUES (?, ?, ?) ON CONFLICT(url) DO UPDATE SET"
                " status=excluded.status",
                (url, value, now),
            )
            if value != NodeStatus.ACTIVE:
                db.execute("DELETE FROM node_keys WHERE url=?", (url,))
                db.execute("UPDATE nodes SET document=NULL, document_expires=0 WHERE url=?", (url,))

        await self._writer.run(job)

    async def set_node_document(
        self, url: str, document: bytes, expires: int, keys: Sequence[tuple[bytes, int, int]]
    ) -> None:
        """Keep an active node's document and replace its keys with ``keys`` (key, valid_from, valid_until).

        Nothing is kept for a node that is not active.
        """

        def job(db: Conn) -> None:
            kept = db.execute(
                "UPDATE nodes SET document=?, document_expires=? WHERE url=? AND status='active'",
                (document, expires, url),
            ).rowcount
            db.execute("DELETE FROM node_keys WHERE url=?", (url,))
            if kept:
                db.executemany("INSERT INTO node_keys VALUES (?, ?, ?, ?)", [(url, *k) for k in keys])

        await self._writer.run(job)

    async def node_key_valid(self, url: str, key: bytes, when: int) -> bool:
        """Whether the stored, unexpired document of the active node ``url`` lists ``key`` as valid at ``when``.

        Asked by (node, key), never by key alone: a key listed by another node's document says
        nothing about ``url`` (spec §13.3).
        """
        row = await self._one(
            "SELECT 1 FROM node_keys k JOIN nodes n ON n.url = k.url WHERE k.url=? AND k.key=?"
            " AND k.valid_from <= ? AND k.valid_until > ? AND n.status='active' AND n.document_expires > ?",
            (url, key, when, when, when),
        )
        return row is not None

    async def node_keys(self, url: str) -> list[bytes]:
        """The keys stored for ``url`` (none unless it is active)."""
        return [bytes(r[0]) for r in await self._all("SELECT key FROM node_keys WHERE url=?", (url,))]

    async def node_result(
        self, url: str, ok: bool, now: int, error: str | None, breaker_until: float, code: str | None = None
    ) -> None:
        """Record a pushed batch's outcome: success resets the failures and the breaker; a failure
        counts one more and keeps ``error``, its ``code`` and the time. Each keeps the other's record."""
        if ok:
            await self._write(
                "UPDATE nodes SET last_ok=?, failures=0, breaker_until=0 WHERE url=?",
                (now, url),
            )
        else:
            await self._write(
                "UPDATE nodes SET failures=failures+1, last_error=?, last_error_code=?, last_error_at=?,"
                " breaker_until=? WHERE url=?",
                (error, code, now, breaker_until, url),
            )

    async def node_exchange(self, url: str, now: int, error: str | None = None, code: str | None = None) -> None:
        """Record a pull or a follow with ``url``: a success (no ``error``) or a failure with its code.

        Neither touches the failures in a row or the breaker, which belong to deliveries.
        """
        if error is None:
            await self._write("UPDATE nodes SET last_ok=? WHERE url=?", (now, url))
        else:
            await self._write(
                "UPDATE nodes SET last_error=?, last_error_code=?, last_error_at=? WHERE url=?",
                (error[:300], code, now, url),
            )

    async def set_pull_cursor(self, url: str, cursor: int) -> None:
        await self._write("UPDATE nodes SET pull_cursor=? WHERE url=?", (cursor, url))

    async def use_nonce(self, nonce: bytes, expires_at: int) -> bool:
        """True the first time a node-request nonce is seen; False for a replay."""
        return (
            await self._write("INSERT INTO nonces VALUES (?, ?) ON CONFLICT(nonce) DO NOTHING", (nonce, expires_at))
            == 1
        )
