"""A fault-injecting stand-in for a node's federation client (the transport seam).

Rules per destination URL: down (nothing answers), error (5xx), slow (times out), cut (the
request is delivered but the answer is lost), flap (every other request fails). Nothing sleeps:
a timeout is reported as the client would report it after waiting.
"""

from __future__ import annotations

from typing import Any

from peerfed.node.federation import NodeClient, TransportError


class FaultyClient:
    def __init__(self, real: NodeClient) -> None:
        self.real = real
        self.rules: dict[str, str] = {}
        self.calls: dict[str, int] = {}
        self._flip: dict[str, bool] = {}

    def set(self, url: str, rule: str | None) -> None:
        if rule is None:
            self.rules.pop(url, None)
        else:
            self.rules[url] = rule

    def _before(self, url: str) -> str | None:
        self.calls[url] = self.calls.get(url, 0) + 1
        rule = self.rules.get(url)
        if rule == "flap":
            self._flip[url] = not self._flip.get(url, False)
            rule = "down" if self._flip[url] else None
        if rule == "down":
            raise TransportError(f"{url} unreachable: connection refused (injected)")
        if rule == "error":
            raise TransportError(f"{url} answered 503 (injected)")
        if rule == "slow":
            raise TransportError(f"{url} unreachable: timed out after 15 s (injected)")
        return rule

    async def request(self, method: str, url: str, path: str, body: bytes = b"", content_type: str = "") -> Any:
        rule = self._before(url)
        answer = await self.real.request(method, url, path, body, content_type)
        if rule == "cut":
            raise TransportError(f"{url}: connection reset before the answer (injected)")
        return answer

    async def send(self, url: str, path: str, body: bytes) -> Any:
        rule = self._before(url)
        answer = await self.real.send(url, path, body)
        if rule == "cut":
            raise TransportError(f"{url}: connection reset before the answer (injected)")
        return answer

    async def fetch_document(self, url: str) -> Any:
        self._before(url)
        return await self.real.fetch_document(url)


def install(node: Any) -> FaultyClient:
    """Put a FaultyClient between ``node`` (a TestNode) and the network."""
    faulty = FaultyClient(node.node.client)
    node.node.client = faulty
    return faulty
