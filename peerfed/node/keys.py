"""The node's signing key (spec §13.2 keys): made on first run, kept in a 0600 file, rotatable.

The key file holds the 32-byte Ed25519 seed in hex. Previous public keys stay listed in the
node document for a week after a rotation (spec §13.2), so requests signed just before a
rotation still verify.
"""

from __future__ import annotations

import os
from pathlib import Path

import nacl.utils

from peerfed.protocol import Identity
from peerfed.protocol.errors import LocalError

__all__ = ["KEY_FILE", "KeyFileError", "load_or_create_key", "rotate_key"]

KEY_FILE = "node.key"


class KeyFileError(LocalError):
    """The key file exists but cannot be used."""


def _write_secret(path: Path, seed: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, seed.hex().encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def load_or_create_key(data: Path) -> tuple[Identity, bool]:
    """The node identity from ``data/node.key``, created (mode 0600) if missing. True if new."""
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data / KEY_FILE
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise KeyFileError(f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
        try:
            seed = bytes.fromhex(path.read_text(encoding="ascii").strip())
            return Identity(seed), False
        except (ValueError, UnicodeDecodeError) as exc:
            raise KeyFileError(f"{path} does not hold a 32-byte hex seed") from exc
    seed = nacl.utils.random(32)
    _write_secret(path, seed)
    return Identity(seed), True


def rotate_key(data: Path) -> tuple[Identity, Identity]:
    """Replace the node key; returns (old, new). The caller records the old key's validity."""
    old, _ = load_or_create_key(data)
    new = Identity(nacl.utils.random(32))
    _write_secret(data / KEY_FILE, new.seed)
    return old, new
