"""What the node counts for its operator's Prometheus (spec §13.1, Metrics): operational, not protocol.

Every node has its own ``CollectorRegistry``, never the library's global one, so several nodes
in one process (the tests) keep their counts apart. Counters move as work happens: requests by
route template and status, their latency, refusals by error code, federation deliveries per
destination node. Gauges that mirror stored state (outbox depth and oldest item per destination,
rows per table, the database's size on disk, live sockets) are read when the page is scraped.

No metric or label names a peer: routes are the templates (``/v1/listings/{id}``), never the
path asked for; destinations are node URLs, which are public; everything else is a count.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .federation.sender import BatchOutcome, BatchResult
from .limits import LiveSockets
from .store import OutboxState, Store

__all__ = ["LATENCY_BUCKETS", "Metrics"]

# Seconds: most requests answer in milliseconds; a slow database or a big batch shows in the tail.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Tables whose row counts are shown: how much a node holds, never whose.
COUNTED_TABLES = ("members", "listings", "mailbox", "key_bundles", "prekeys", "outbox", "nodes", "reports")


class Metrics:
    """One node's metrics. ``bind`` gives it the store and sockets once the node has started."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "peerfed_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "peerfed_http_request_duration_seconds",
            "Time to answer an HTTP request (WebSockets excluded), by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.refusals = Counter(
            "peerfed_refusals", "Requests refused, by error code (spec §10).", ["code"], registry=registry
        )
        self.deliveries = Counter(
            "peerfed_federation_deliveries",
            "Batches sent to another node, by destination node and result (ok: answered item by item).",
            ["destination", "result"],
            registry=registry,
        )
        self.delivered_items = Counter(
            "peerfed_federation_items",
            "Outbox items after a send, by destination node and state (pending: to be retried).",
            ["destination", "state"],
            registry=registry,
        )
        self.outbox_items = Gauge(
            "peerfed_outbox_pending_items",
            "Items waiting to be sent, by destination node.",
            ["destination"],
            registry=registry,
        )
        self.outbox_oldest = Gauge(
            "peerfed_outbox_oldest_item_age_seconds",
            "How long the oldest item waiting for a destination node has waited.",
            ["destination"],
            registry=registry,
        )
        self.rows = Gauge("peerfed_stored_rows", "Rows held, by table.", ["table"], registry=registry)
        self.database_bytes = Gauge(
            "peerfed_database_bytes", "The database's size on disk (with its write-ahead log).", registry=registry
        )
        self.live_sockets = Gauge("peerfed_live_sockets", "Live WebSockets open now.", registry=registry)
        self._store: Store | None = None
        self._sockets: LiveSockets | None = None
        self._clock: Callable[[], float] | None = None

    def bind(self, store: Store, sockets: LiveSockets, clock: Callable[[], float]) -> None:
        """Read stored state from ``store`` and ``sockets`` when scraped, ages by ``clock``."""
        self._store, self._sockets, self._clock = store, sockets, clock

    def unbind(self) -> None:
        """The store is closing: scrapes from now on show only the counters."""
        self._store = None

    def answered(self, method: str, route: str, status: int, seconds: float | None) -> None:
        """Count one answered request; ``seconds`` is None for a WebSocket (its life is not latency)."""
        self.requests.labels(method, route, str(status)).inc()
        if seconds is not None:
            self.latency.labels(route).observe(seconds)

    def refused(self, code: str) -> None:
        self.refusals.labels(code).inc()

    def delivered(self, destination: str, result: BatchResult) -> None:
        """Count one batch's outcome and its items' states (the sender calls it per batch)."""
        ok = result.outcome is BatchOutcome.DONE
        self.deliveries.labels(destination, "ok" if ok else "failed").inc()
        for _, state in result.items:
            self.delivered_items.labels(destination, OutboxState(state).value).inc()

    async def render(self) -> bytes:
        """The Prometheus text page, with stored state read now. Raises StorageError."""
        store = self._store
        if store is not None and self._clock is not None:
            now = self._clock()
            depths = await store.outbox_depths()
            counts = await store.counts()
            # Cleared first: a destination with nothing waiting any more leaves the page.
            self.outbox_items.clear()
            self.outbox_oldest.clear()
            for depth in depths:
                self.outbox_items.labels(depth.destination).set(depth.items)
                self.outbox_oldest.labels(depth.destination).set(max(0.0, now - depth.oldest_created_at))
            for table in COUNTED_TABLES:
                self.rows.labels(table).set(counts.get(table, 0))
            self.database_bytes.set(await store.size_bytes())
        if self._sockets is not None:
            self.live_sockets.set(self._sockets.total)
        return generate_latest(self.registry)
