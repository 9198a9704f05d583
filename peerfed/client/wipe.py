"""Deleting this device's copy after an erasure (spec §13.6): identity, keys and conversations."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ClientError

__all__ = ["DEVICE_FILES", "wipe_home"]

DEVICE_FILES = ("peer.sqlite3", "peer.sqlite3-wal", "peer.sqlite3-shm")


def wipe_home(home: Path) -> str:
    """Delete this device's database from ``home`` (its identity, keys and conversations), each file
    overwritten with zeros first; the database must be closed. Returns ``"wiped"``. Overwriting is
    best effort: a copy-on-write file system or an SSD may keep old blocks (spec §12).
    Raises ClientError (``local.storage``)."""
    try:
        for name in DEVICE_FILES:
            path = home / name
            if not path.exists():
                continue
            with open(path, "r+b") as f:
                f.write(bytes(path.stat().st_size))
                f.flush()
                os.fsync(f.fileno())
            path.unlink()
    except OSError as exc:
        raise ClientError(f"cannot delete this device's copy in {home}: {exc}", "local.storage") from exc
    return "wiped"
