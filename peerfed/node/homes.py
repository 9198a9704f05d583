"""The home a key bundle names, its signature checks remembered (spec §13.7, Home; §3.1; §5.5).

A message sent without a destination goes to the home its recipient signed into their key
bundle, and a listing another node pushes is taken only from its author's home: the same bundle
is asked about again and again, so what depends on its bytes alone is checked once.
"""

from __future__ import annotations

from collections import OrderedDict

from peerfed.protocol import CLOCK_SKEW, Context, KeyBundle, RemoteError, verify_kept
from peerfed.protocol.crypto import Person, blake2b_256

__all__ = ["BUNDLE_HOMES", "signed_home"]

BUNDLE_HOMES = 4096  # key bundles whose checked signature is remembered: about 1 MB at most
_BUNDLES: OrderedDict[bytes, tuple[str | None, int, int] | None] = OrderedDict()  # by digest, newest last


def signed_home(raw: bytes, now: int) -> str | None:
    """The ``home`` a key bundle's author signed into it; None if it names none or is not a live bundle.

    The same answer as opening ``raw`` with ``open_signed`` at ``now``. The checks that depend on
    the bytes alone are remembered for the latest ``BUNDLE_HOMES`` bundles, because the same
    bundle is asked about for every message sent to its author without a destination and every
    listing of its author another node pushes; the clock's two checks (spec §5.5) are made every
    time. What is remembered is keyed by a digest of the bytes (personalisation
    ``peerfed/verdict``, spec §3.1), so neither a stranger's junk nor a bundle whose author was
    erased since stays in memory, and the verdict itself holds no more than the signed home.
    Called on the event loop only.
    """
    if type(raw) is not bytes:
        return None  # what open_signed answers for anything else (encoding.malformed)
    digest = blake2b_256(raw, Person.VERDICT)
    if digest in _BUNDLES:
        _BUNDLES.move_to_end(digest)
        found = _BUNDLES[digest]
    else:
        found = _bundle_home(raw)
        _BUNDLES[digest] = found
        while len(_BUNDLES) > BUNDLE_HOMES:
            _BUNDLES.popitem(last=False)
    if found is None:
        return None
    home, created_at, expires_at = found
    if created_at > now + CLOCK_SKEW or expires_at <= now:
        return None
    return home


def _bundle_home(raw: bytes) -> tuple[str | None, int, int] | None:
    """A key bundle's signed home, created_at and expires_at; None if ``raw`` is not a signed key bundle."""
    try:
        env = verify_kept(raw, context=Context.KEY_BUNDLE)
    except RemoteError:
        return None
    if not isinstance(env.body, KeyBundle):
        return None
    return env.body.home, env.created_at, env.expires_at
