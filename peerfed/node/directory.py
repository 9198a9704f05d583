"""The directory: key bundles, listings, withdrawals and search (spec §4.3, §6, §13.5, §13.6).

Publishing, taking what other nodes push, and searching. A local listing and its author's key
bundle are queued for every federated node in the write that stores them; a withdrawal leaves a
tombstone that keeps the listing from coming back. Everything from outside is checked with the
protocol core before it is stored, and taken only from the author's home: the node their signed
key bundle names (spec §13.7, Home). A node speaks for its own members, never for anyone else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from peerfed.protocol import (
    Context,
    Envelope,
    KeyBundle,
    Listing,
    PeerId,
    RequestError,
    TimeError,
    Withdrawal,
    open_signed,
)
from peerfed.protocol.node_bodies import erased_hash
from peerfed.protocol.topics import query_words, words

from .config import Config
from .federation.outbox import OutboxItem, fan_out, item_key
from .homes import signed_home
from .limits import RateLimiter, Use
from .opener import Opener
from .store import MemberStatus, Store
from .views import directory_entry

__all__ = [
    "Directory",
    "HeldListing",
    "KeyBundleHeld",
    "SearchPage",
    "SearchResult",
    "listing_facets",
    "listing_topic_words",
    "not_home",
]

log = logging.getLogger("peerfed.node")


def listing_facets(listing: Listing) -> list[tuple[str, str]]:
    """The search keys of a listing: the words of its topics (spec §6.4), languages lower-cased
    with their primary tag, vocabulary terms and formats."""
    found: dict[tuple[str, str], None] = {}
    for topic in listing.topics:
        for word in words(topic):
            found[("word", word)] = None
    for term in listing.vocab:
        found[("vocab", term)] = None
    for lang in listing.languages:
        tag = lang.lower()
        found[("lang", tag)] = None
        found[("lang", tag.split("-")[0])] = None
    for fmt in listing.formats:
        found[("format", fmt.value)] = None
    return list(found)


def listing_topic_words(listing: Listing) -> list[tuple[int, str]]:
    """Which topic holds which word: (the topic's place in the listing, word), each pair once."""
    return list(dict.fromkeys((place, word) for place, topic in enumerate(listing.topics) for word in words(topic)))


def not_home(what: str, origin: str) -> RequestError:
    """The refusal of something pushed by a node that is not its author's home (spec §13.7, Home)."""
    return RequestError(f"{origin} is not the home node of this {what}'s author", "federation.not_home")


@dataclass(frozen=True)
class KeyBundleHeld:
    """A peer's current key bundle and the node it lives on: the ``home`` its author signed into it."""

    raw: bytes
    home: str


@dataclass(frozen=True)
class HeldListing:
    """A listing held here, as signed, and the node it was published on."""

    raw: bytes
    origin: str


class SearchResult(NamedTuple):
    """One directory result: a NamedTuple, not a dataclass, because a page makes up to 100 per query."""

    seq: int
    raw: bytes
    origin: str | None  # None: published here
    entry: str  # the stored directory entry (views.directory_entry)
    key_bundle: bytes | None


@dataclass(frozen=True)
class SearchPage:
    rows: list[SearchResult]
    next: int | None  # the cursor of the following page, None on the last


class Directory:
    """Key bundles and listings: publishing, taking them from other nodes, and searching."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Callable[[], float],
        limiter: RateLimiter,
        opener: Opener,
        wake: Callable[[], None],
    ) -> None:
        self._config = config
        self._store = store
        self._clock = clock
        self._limiter = limiter
        self._opener = opener
        self._wake = wake  # the outbox has new work
        self._url = config.url

    # --- key bundles ---------------------------------------------------------------------------

    async def publish_key_bundle(self, peer: PeerId, raw: bytes, address: str = "local") -> Envelope:
        """A local peer's own bundle; raises RemoteError if refused (rate.limited past
        ``keys_per_hour`` for the peer, or four times that for the address).

        It is pushed to the federated nodes only if the peer has a live listing here (their key is
        public already); otherwise it is served on request only, so followers do not learn who
        the members are who never publish (spec §13.7, Keys on demand).
        """
        now = int(self._clock())
        per_hour = self._config.keys_per_hour
        await self._limiter.hit_all(
            [Use("keys", bytes(peer).hex(), per_hour, 3600), Use("keys-addr", address, per_hour * 4, 3600)], now
        )
        env = open_signed(raw, context=Context.KEY_BUNDLE, now=now)
        if env.author != peer:
            raise RequestError("a key bundle must be signed by the signed-in peer", "auth.forbidden")
        public = await self._store.has_live_listing(bytes(peer), now)
        outbox = await fan_out(self._store, "key-bundle", item_key(raw), raw) if public else []
        stored = await self._store.put_key_bundle(
            bytes(peer), raw, env.created_at, env.expires_at, None, outbox, self._clock()
        )
        if stored and outbox:
            self._wake()
        return env

    async def take_key_bundle(self, origin: str, raw: bytes) -> bool:
        """A bundle another node pushed or we asked for; False if not newer. Raises RemoteError:
        federation.not_home if ``origin`` is not the home the bundle names, gone (erased)."""
        now = int(self._clock())
        env = open_signed(raw, context=Context.KEY_BUNDLE, now=now)
        assert isinstance(env.body, KeyBundle)  # the context admits no other type
        if env.body.home != origin:
            raise not_home("key bundle", origin)
        if await self._store.is_erased(erased_hash(bytes(env.author)), now):
            raise RequestError("that peer was erased", "gone")
        local = await self._store.member(bytes(env.author))
        if local is not None and local.status == MemberStatus.MEMBER:
            return False  # our own peers' keys are published here, not pushed to us
        return await self._store.put_key_bundle(bytes(env.author), raw, env.created_at, env.expires_at, origin)

    async def key_bundle(self, peer: PeerId) -> KeyBundleHeld | None:
        """A peer's current key bundle if this node holds one with a home to route to (spec §13.5).

        The home is the one its author signed; a bundle published here without one lives here.
        A copy another node gave us never names that node by where it came from.
        """
        return await self._held(bytes(peer))

    async def home_of(self, author: bytes) -> str | None:
        """The home node the author's held key bundle names (this node's URL for a local bundle
        without one); None if no live bundle is held."""
        held = await self._held(author)
        return None if held is None else held.home

    async def _held(self, peer: bytes) -> KeyBundleHeld | None:
        now = int(self._clock())
        found = await self._store.key_bundle(peer, now)
        if found is None:
            return None
        home = signed_home(found.raw, now)
        if home is None and found.origin is None:
            home = self._url
        return None if home is None else KeyBundleHeld(found.raw, home)

    async def member_key_bundle(self, peer: PeerId) -> bytes:
        """The bundle of one of this node's own peers, for another node that asks; raises not_found."""
        member = await self._store.member(bytes(peer))
        found = await self._store.key_bundle(bytes(peer), int(self._clock()))
        if member is None or member.status != MemberStatus.MEMBER or found is None or found.origin is not None:
            raise RequestError("no such peer here", "not_found")
        return found.raw

    # --- listings and withdrawals ----------------------------------------------------------------

    async def publish(self, peer: PeerId, raw: bytes, address: str) -> Envelope:
        """A local peer publishes a listing or a withdrawal; queued for every federated node.

        Raises RemoteError: rate.limited, the envelope's own codes, auth.forbidden, time.lifetime,
        gone, request.invalid (an erasure, or no key bundle yet).
        """
        now = int(self._clock())
        per_hour = self._config.listings_per_hour
        await self._limiter.hit_all(
            [Use("listings", bytes(peer).hex(), per_hour, 3600), Use("listings-addr", address, per_hour * 4, 3600)], now
        )
        env = await self._opener.open(raw, Context.ENVELOPE, now)
        if env.author != peer:
            raise RequestError("a listing must be signed by the signed-in peer", "auth.forbidden")
        if isinstance(env.body, Listing):
            await self.take_listing(env, None)  # the store wakes the sender if it queued anything
            log.debug("listing %s published", env.id.hex()[:8])
        elif isinstance(env.body, Withdrawal):
            outbox = await fan_out(self._store, "withdrawal", env.id, raw)
            await self.withdraw(env, outbox)
            if outbox:
                self._wake()
        else:
            raise RequestError("send an erasure to /api/v1/erase", "request.invalid")
        return env

    async def take_listing(self, env: Envelope, origin: str | None) -> bool:
        """Store a listing once; a local one (no origin) is queued for every federated node with its
        key bundle. False if already held; raises RemoteError (time.lifetime, gone, request.invalid,
        federation.not_home: a listing from a node that the author's held bundle does not name,
        node.unavailable: no bundle of the author held yet to check it against)."""
        listing = env.body
        assert isinstance(listing, Listing)
        held = None if origin is None else await self._held(bytes(env.author))
        if origin is not None and (held is None or held.home != origin):
            if await self._store.is_erased(erased_hash(bytes(env.author)), int(self._clock())):
                raise RequestError("the author of this listing was erased", "gone")
            if held is None:
                # The author's bundle comes just before a listing; if it was refused for a passing
                # reason (a quota, a busy disk) the listing cannot be checked yet, and a final
                # refusal would lose it: the sender retries both, the bundle first (spec §13.7, Home).
                raise RequestError("no key bundle of this listing's author is held yet", "node.unavailable")
            raise not_home("listing", origin)
        if env.expires_at - env.created_at > self._config.max_listing_lifetime:
            raise TimeError(
                f"this node keeps listings at most {self._config.max_listing_lifetime // 86_400} days", "time.lifetime"
            )
        return await self._store.insert_listing(
            listing_id=env.id,
            author=bytes(env.author),
            author_hash=erased_hash(bytes(env.author)),
            kind=listing.kind.value,
            timing=listing.timing.value,
            created_at=env.created_at,
            expires_at=env.expires_at,
            origin=origin,
            raw=env.raw,
            facets=listing_facets(listing),
            topic_words=listing_topic_words(listing),
            now=self._clock(),
            bundle_key=item_key if origin is None else None,
            entry=directory_entry(env),
        )

    async def withdraw(self, env: Envelope, outbox: list[OutboxItem], origin: str | None = None) -> bool:
        """Delete the author's listing and keep a tombstone; True if a listing was deleted.

        From another node (``origin``) it is taken only from the author's home: the node the
        author's held bundle names, or the one the listing held came from; federation.not_home
        otherwise, with nothing stored. Raises auth.forbidden (a listing of someone else).
        """
        withdrawal = env.body
        assert isinstance(withdrawal, Withdrawal)
        held = await self._store.listing(withdrawal.listing)
        if held is not None and held.author != bytes(env.author):
            raise RequestError("only a listing's author can withdraw it", "auth.forbidden")
        from_its_home = origin is None or (held is not None and held.origin == origin)
        if not from_its_home and await self.home_of(bytes(env.author)) != origin:
            assert origin is not None  # a local withdrawal is always from its home
            raise not_home("withdrawal", origin)
        return await self._store.withdraw(withdrawal.listing, bytes(env.author), env.expires_at, outbox, self._clock())

    async def take_withdrawn(self, origin: str, listing_id: bytes, author: bytes, until: int) -> bool:
        """A withdrawal tombstone from a catch-up page of ``origin`` (spec §13.7, Catch-up).

        Unsigned, so it acts only on what ``origin`` speaks for: a listing held that came from it
        is deleted; with none held, the tombstone is kept if the author's bundle names ``origin``
        as home. Anything else is ignored (False), so a node cannot hide another node's listings.
        """
        held = await self._store.listing(listing_id)
        if held is not None:
            if held.author != author or held.origin != origin:
                return False
        elif await self.home_of(author) != origin:
            return False
        return await self._store.withdraw(listing_id, author, until, [], self._clock())

    async def take_erased(self, origin: str, hashes: list[bytes]) -> int:
        """Erasure tombstones (hashed peer ids) from a catch-up page of ``origin``: delete the
        listings and key bundles held that came from it and whose author's hash is one of them.
        Returns listings deleted. Nothing from another node is touched (spec §13.7, Catch-up)."""
        return await self._store.drop_erased_from(origin, set(hashes), erased_hash)

    async def take_down(self, origin: str, listing_id: bytes) -> bool:
        """Another node's operator took down a listing published there; False if not held here."""
        if len(listing_id) != 32:
            raise RequestError("a takedown names a listing id", "request.invalid")
        held = await self._store.listing(listing_id)
        if held is None:
            return False
        if held.origin != origin:
            raise RequestError("only a listing's home node can take it down", "auth.forbidden")
        await self._store.remove_listing(listing_id, [], self._clock())
        return True

    async def listing(self, listing_id: bytes) -> HeldListing:
        """One listing by id; raises gone (withdrawn), not_found, or time.expired once it lapsed."""
        held = await self._store.listing(listing_id)
        if held is None:
            if await self._store.was_withdrawn(listing_id):
                raise RequestError("that listing was withdrawn", "gone")
            raise RequestError("no such listing here", "not_found")
        open_signed(held.raw, context=Context.ENVELOPE, now=int(self._clock()))  # time.expired once it has lapsed
        return HeldListing(held.raw, held.origin or self._url)

    # --- search ------------------------------------------------------------------------------------

    async def search(
        self,
        *,
        kind: str | None = None,
        timing: str | None = None,
        topics: Sequence[str] = (),
        lang: str | None = None,
        fmt: str | None = None,
        vocab: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> SearchPage:
        """Live listings matching every filter, newest first, at most ``limit`` (1-100).

        Each of ``topics`` is a query by words that one topic of the listing must meet (spec
        §6.4); raises RequestError (request.invalid) for a query without words or too many.
        """
        queries = query_words(topics)
        facets = list(dict.fromkeys(("word", word) for query in queries for word in sorted(query)))
        together = [sorted(query) for query in queries if len(query) > 1]
        if vocab:
            facets.append(("vocab", vocab))
        if lang:
            facets.append(("lang", lang.lower()))
        if fmt:
            facets.append(("format", fmt))
        limit = max(1, min(limit, 100))
        now = int(self._clock())
        found = await self._store.search(
            now=now, kind=kind, timing=timing, facets=facets, before=before, limit=limit, together=together
        )
        rows = []
        for row in found:
            entry = row.entry
            if entry is None:  # stored before schema 2
                entry = directory_entry(open_signed(row.raw, context=Context.ENVELOPE, now=now))
            rows.append(SearchResult(row.seq, row.raw, row.origin, entry, row.key_bundle))
        return SearchPage(rows, found[-1].seq if len(found) == limit else None)
