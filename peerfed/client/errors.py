"""The client's own error: something about this device's state (spec §10 names only wire codes).

Its codes start with ``local.`` and never travel: no identity yet, an unknown or ambiguous id,
a damaged database. ``peerfed.client.state`` re-exports it, where callers have always found it.
"""

from __future__ import annotations

from peerfed.protocol.errors import LocalError

__all__ = ["ClientError", "Undelivered"]


class ClientError(LocalError):
    """Something about this device's own state: no identity yet, an unknown or ambiguous id."""

    def __init__(self, message: str, code: str = "local.error") -> None:
        super().__init__(message)
        self.code = code


class Undelivered(ClientError):
    """A message was signed and kept on this device as a draft, but could not be delivered now."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "local.undelivered")
