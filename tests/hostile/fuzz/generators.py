"""Every generator by endpoint, and the groups of endpoints a test (or ``fuzz_long.py``) draws from."""

from __future__ import annotations

from collections.abc import Callable

from .cases import Case
from .client_api import (
    gen_ack,
    gen_challenge,
    gen_directory,
    gen_erase,
    gen_get_keys,
    gen_get_listing,
    gen_get_reports,
    gen_live,
    gen_mailbox,
    gen_misc,
    gen_move,
    gen_post_listing,
    gen_post_report,
    gen_put_keys,
    gen_send,
    gen_session,
    gen_well_known,
)
from .federation_api import gen_batch, gen_federation_auth, gen_federation_keys, gen_follow, gen_pull
from .prekeys_api import gen_claim_prekey, gen_federation_claim, gen_get_prekeys, gen_post_prekeys
from .sources import Source
from .world import World

__all__ = ["GENERATORS", "GROUPS", "generate"]


GENERATORS: dict[str, Callable[[Source, World], Case]] = {
    "POST /api/v1/challenge": gen_challenge,
    "POST /api/v1/session": gen_session,
    "PUT /api/v1/keys": gen_put_keys,
    "GET /api/v1/keys/{peer}": gen_get_keys,
    "POST /api/v1/listings": gen_post_listing,
    "GET /api/v1/listings/{id}": gen_get_listing,
    "GET /api/v1/directory": gen_directory,
    "POST /api/v1/send": gen_send,
    "GET /api/v1/mailbox": gen_mailbox,
    "POST /api/v1/mailbox/ack": gen_ack,
    "GET /api/v1/live": gen_live,
    "POST /api/v1/move": gen_move,
    "POST /api/v1/erase": gen_erase,
    "POST /api/v1/reports": gen_post_report,
    "GET /api/v1/reports": gen_get_reports,
    "GET /.well-known/peerfed": gen_well_known,
    "misc": gen_misc,
    "POST /federation/v1/follow": gen_follow,
    "POST /federation/v1/batch": gen_batch,
    "GET /federation/v1/listings": gen_pull,
    "GET /federation/v1/keys/{peer}": gen_federation_keys,
    "federation signatures": gen_federation_auth,
    "POST /api/v1/prekeys": gen_post_prekeys,
    "GET /api/v1/prekeys": gen_get_prekeys,
    "POST /api/v1/prekeys/claim": gen_claim_prekey,
    "POST /federation/v1/prekeys/claim": gen_federation_claim,
    "federation pre-key claim signatures": lambda src, w: gen_federation_claim(src, w, True),
}
GROUPS: dict[str, tuple[str, ...]] = {
    "joining": ("POST /api/v1/challenge", "POST /api/v1/session"),
    "keys": ("PUT /api/v1/keys", "GET /api/v1/keys/{peer}"),
    "listings": ("POST /api/v1/listings", "GET /api/v1/listings/{id}", "GET /api/v1/directory"),
    "mailbox": ("POST /api/v1/send", "GET /api/v1/mailbox", "POST /api/v1/mailbox/ack"),
    "live": ("GET /api/v1/live",),
    "leaving": ("POST /api/v1/move", "POST /api/v1/erase", "POST /api/v1/reports", "GET /api/v1/reports"),
    "other": ("GET /.well-known/peerfed", "misc"),
    "federation-signatures": ("federation signatures",),
    "federation-bodies": (
        "POST /federation/v1/follow",
        "POST /federation/v1/batch",
        "GET /federation/v1/listings",
        "GET /federation/v1/keys/{peer}",
    ),
    "prekeys": (
        "POST /api/v1/prekeys",
        "POST /api/v1/prekeys",
        "GET /api/v1/prekeys",
        "POST /api/v1/prekeys/claim",
        "POST /api/v1/prekeys/claim",
        "POST /federation/v1/prekeys/claim",
        "federation pre-key claim signatures",
    ),
}


def generate(group: str, src: Source, w: World) -> Case:
    return GENERATORS[src.pick(GROUPS[group])](src, w)
