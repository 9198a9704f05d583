"""Node URLs (spec §13.1): the one form a node's address takes, and the host it names.

A node is named by scheme, host and port alone, so one host cannot pose as many nodes by path.
"""

from __future__ import annotations

import re

from .errors import InvalidValue
from .fields import text

__all__ = ["check_url", "url_host"]

# scheme://host[:port] and nothing else: a DNS name or IPv4 address, or an IPv6 literal in brackets,
# and a port of 1-65535 without leading zeros (spec §13.1).
_NODE_URL = re.compile(
    r"https?://(?P<host>[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[1-9][0-9]{0,4}))?"
)


def check_url(value: object, name: str) -> str:
    """A node URL: ``http(s)://host[:port]``, with no path, query, fragment or user (spec §13.1).

    Raises InvalidValue otherwise. A path would let one host pose as any number of nodes.
    """
    url = text(value, name, 256)
    match = _NODE_URL.fullmatch(url)
    if match is None or int(match["port"] or 1) > 65_535:
        raise InvalidValue(f"{name} must be an http(s) URL with a host and at most a port: no path, query or fragment")
    return url


def url_host(url: str) -> str:
    """The host of a node URL that passed ``check_url``, lowercased: many ports on one host are one host."""
    authority = url.split("://", 1)[1]
    host = authority[: authority.index("]") + 1] if authority.startswith("[") else authority.split(":", 1)[0]
    return host.lower()
