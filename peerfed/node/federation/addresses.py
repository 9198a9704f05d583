"""Which addresses a node may reach other nodes at (spec §13.7, Discovery).

A stranger chooses the URL a node fetches a document from, so without these rules it could point
the node at the node's own loopback services, the operator's private network or a cloud metadata
address, and read which of them answer. Every outbound connection is checked:

- ``https`` only, except to loopback when this node itself runs on loopback (development and
  tests), or when the operator sets ``allow_plain_http``;
- a literal IP host is checked before any connection is tried (no resolver call is made for it);
- a name is checked on the addresses it resolves to, and only addresses that pass are handed to
  the connector, so a name cannot resolve to a public address for the check and a private one
  for the connection;
- private, link-local, shared, reserved, multicast and unspecified ranges are refused unless the
  operator sets ``allow_private_addresses``; loopback is refused unless this node's own URL is on
  loopback (or private addresses are allowed).

A refusal is a ``TransportError`` (the other node cannot be reached): nothing is sent.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from ..config import Config
from .transport import AddressRefused

__all__ = ["AddressPolicy", "GuardedResolver", "guarded_session", "host_is_loopback"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _is_loopback_name(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


def host_is_loopback(host: str | None) -> bool:
    """Whether ``host`` (a URL's host) names this machine: 127.0.0.0/8, ::1 or localhost."""
    if not host:
        return False
    ip = _literal_ip(host)
    return ip.is_loopback if ip is not None else _is_loopback_name(host.lower())


@dataclass(frozen=True)
class AddressPolicy:
    """Where this node may connect. ``allow_loopback`` is on when the node itself runs on loopback."""

    allow_private: bool = False
    allow_http: bool = False
    allow_loopback: bool = False

    @classmethod
    def for_config(cls, config: Config) -> AddressPolicy:
        return cls(
            allow_private=config.allow_private_addresses,
            allow_http=config.allow_plain_http,
            allow_loopback=host_is_loopback(urlsplit(config.url).hostname),
        )

    def address_allowed(self, ip: IPAddress) -> bool:
        """Whether a connection to ``ip`` may be made."""
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_unspecified or ip.is_multicast:
            return False
        if ip.is_loopback:
            return self.allow_loopback or self.allow_private
        if self.allow_private:
            return True
        return ip.is_global and not ip.is_reserved and not ip.is_link_local and not ip.is_private

    def check_url(self, url: str) -> None:
        """Raise AddressRefused unless ``url`` may be fetched; a literal IP is checked here, a name
        when it resolves (``GuardedResolver``)."""
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError as exc:
            raise AddressRefused("not a URL this node connects to") from exc
        if parts.scheme not in ("http", "https") or not host:
            raise AddressRefused("not a URL this node connects to")
        loopback = host_is_loopback(host)
        if parts.scheme == "http" and not (self.allow_http or loopback):
            raise AddressRefused("plain http is refused for a host that is not loopback")
        ip = _literal_ip(host)
        if ip is not None and not self.address_allowed(ip):
            raise AddressRefused("the address is in a range this node does not connect to")
        if ip is None and loopback and not (self.allow_loopback or self.allow_private):
            raise AddressRefused("the address is in a range this node does not connect to")


class GuardedResolver(AbstractResolver):
    """Resolves names with ``inner`` and keeps only the addresses ``policy`` allows."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner if inner is not None else aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The allowed addresses of ``host``; raises OSError (a connection error) if none is."""
        found = await self._inner.resolve(host, port, family)
        allowed = [r for r in found if (ip := _literal_ip(r["host"])) is not None and self._policy.address_allowed(ip)]
        if not allowed:
            raise OSError(f"{host} resolves to no address this node connects to")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def guarded_session(policy: AddressPolicy, tls: ssl.SSLContext | None = None) -> aiohttp.ClientSession:
    """The HTTP session a node reaches other nodes with: names resolved through ``GuardedResolver``,
    no proxy from the environment, no cookies kept; https checked against ``tls`` (``tls.trusting``),
    or the system's certificate authorities."""
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(policy), limit=100, ssl=tls if tls is not None else True)
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
