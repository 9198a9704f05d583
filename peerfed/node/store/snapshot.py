"""A consistent copy of a node's database, and the check a copy must pass (spec §13.9, what a node stores).

``snapshot`` uses SQLite's online backup API: the whole copy is made in one step, inside one read
transaction on the source, so it is exactly the database as it stood at one commit. In WAL mode a
reader never blocks the writer, so a serving node goes on taking writes while it runs, and it
needs neither the node's data-folder lock nor anything from the node. ``check`` runs
``PRAGMA integrity_check`` on a copy before it is trusted. sqlite's errors become StorageError
here, as everywhere in the store.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from .db import StorageError

__all__ = ["check", "snapshot"]

BUSY_TIMEOUT_MS = 5000  # as the node's own connections: wait out a checkpoint rather than fail


def snapshot(source: Path, target: Path) -> int:
    """Copy the database at ``source`` into the new file ``target``; its schema version.

    The copy is self-contained (rollback journal, not WAL: one file) and has passed
    ``check``. Raises StorageError if the source cannot be read or the copy is not sound.
    """
    try:
        with closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as src:
            src.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            with closing(sqlite3.connect(target, isolation_level=None)) as dst:
                # pages=-1: every page in one step, so one read snapshot of the source (a
                # page-by-page copy would restart each time the node committed meanwhile).
                src.backup(dst, pages=-1)
                dst.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as exc:
        raise StorageError(f"cannot copy the database at {source}: {exc}") from exc
    return check(target)


def check(path: Path) -> int:
    """Run ``PRAGMA integrity_check`` on the database at ``path``; its schema version.

    Raises StorageError if it is not a sound SQLite database holding a node's tables.
    """
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            found = [str(row[0]) for row in db.execute("PRAGMA integrity_check(20)")]
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            tables = {str(row[0]) for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as exc:
        raise StorageError(f"the database fails SQLite's integrity check: {exc}") from exc
    if found != ["ok"]:
        raise StorageError(f"the database fails SQLite's integrity check: {'; '.join(found[:3])}")
    if version < 1 or not {"members", "nodes", "listings"} <= tables:
        raise StorageError("the database is not a peerfed node's")
    return version
