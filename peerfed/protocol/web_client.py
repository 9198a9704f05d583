"""The web client's published hash (spec §13.10, Checking the web client): SHA-256 over a manifest.

A node serves a built web client and signs its hash into the node document (§13.2, field 14), so
a person can compare the code they were served with a release's published value. It is SHA-256,
not BLAKE2b: the point is that anyone can check it with tools they already trust (``sha256sum``),
without running peerfed's own code, which is the very thing being checked. The manifest is exactly
what ``sha256sum`` prints for the files in path order, so that check is one shell line.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from .errors import InvalidValue

__all__ = ["WEB_CLIENT_PATH", "web_client_hash", "web_client_manifest"]

# index.html, and plain names directly under assets/: the only files a node serves (§13.10).
WEB_CLIENT_PATH = re.compile(r"index\.html|assets/[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def web_client_manifest(files: Mapping[str, bytes]) -> bytes:
    """One ``sha256sum`` line per file, ``HEX␠␠PATH\\n``, ordered by the path's bytes.

    Raises InvalidValue when there is no ``index.html`` or a path is not one a node serves.
    """
    if "index.html" not in files:
        raise InvalidValue("a web client has an index.html")
    for path in files:
        if not WEB_CLIENT_PATH.fullmatch(path) or ".." in path:
            raise InvalidValue(f"{path!r} is not a file a node serves")
    ordered = sorted(files, key=lambda p: p.encode("ascii"))
    return b"".join(f"{hashlib.sha256(files[p]).hexdigest()}  {p}\n".encode("ascii") for p in ordered)


def web_client_hash(files: Mapping[str, bytes]) -> bytes:
    """SHA-256 of the manifest (32 bytes). Raises InvalidValue as ``web_client_manifest`` does."""
    return hashlib.sha256(web_client_manifest(files)).digest()
