"""Reports from peers to the moderators, and their outcomes (spec §13.5 "Reports", §13.9)."""

from __future__ import annotations

from typing import Any

from .db import Conn, Database
from .rows import Report, ReportStatus, ReportTarget

__all__ = ["ReportsMixin"]


class ReportsMixin(Database):
    """Every call raises StorageError if the database fails."""

    async def add_report(
        self, reporter: bytes, target_kind: str, target: bytes, reason: str, disclosed: bytes | None, now: int
    ) -> int:
        """Record an open report; returns its id. Raises ValueError if ``target_kind`` is not a ReportTarget."""
        kind = ReportTarget(target_kind).value

        def job(db: Conn) -> int:
            cursor = db.execute(
                "INSERT INTO reports (reporter, target_kind, target, reason, disclosed, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (reporter, kind, target, reason, disclosed, now),
            )
            return int(cursor.lastrowid or 0)

        return await self._writer.run(job)

    async def reports(self, *, reporter: bytes | None = None, status: str | None = None) -> list[Report]:
        """Reports by ``reporter`` and with ``status``, each filter if given, oldest first."""
        where: list[str] = []
        params: list[Any] = []
        if reporter is not None:
            where.append("reporter=?")
            params.append(reporter)
        if status is not None:
            where.append("status=?")
            params.append(status)
        sql = "SELECT id, reporter, target_kind, target, reason, disclosed, created_at, status, outcome FROM reports"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = await self._all(sql + " ORDER BY id", params)
        return [
            Report(
                id=r[0],
                reporter=bytes(r[1]),
                target_kind=ReportTarget(r[2]),
                target=None if r[3] is None else bytes(r[3]),
                reason=r[4],
                disclosed=None if r[5] is None else bytes(r[5]),
                created_at=r[6],
                status=ReportStatus(r[7]),
                outcome=r[8],
            )
            for r in rows
        ]

    async def resolve_report(self, report_id: int, outcome: str, now: int) -> bool:
        """Close an open report with the operator's outcome; False if there is no open report with that id."""
        return (
            await self._write(
                "UPDATE reports SET status='resolved', outcome=?, resolved_at=? WHERE id=? AND status='open'",
                (outcome, now, report_id),
            )
            == 1
        )
