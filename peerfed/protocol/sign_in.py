"""Checking a sign-in proof as a node does (spec §13.4): the proof opens, and names this node.

What bytes alone can show. The rest of §13.4 (the proof of work of a joining peer, the challenge
being live and unused, the registration policy) needs the node's state, and follows this check.
"""

from __future__ import annotations

from .envelope import Context, Envelope, open_signed
from .errors import RequestError
from .node_bodies import ClientAuth

__all__ = ["open_sign_in"]


def open_sign_in(proof: bytes, *, node: str, now: int) -> tuple[ClientAuth, Envelope]:
    """The client-auth body of ``proof`` and the opened object, for the node whose URL is ``node``.

    Raises RemoteError: the codes of opening a signed object under ``peerfed/v1/client-auth``
    (§5.5), then auth.invalid for another object of that context (a move) or a proof naming
    another node.
    """
    env = open_signed(proof, context=Context.CLIENT_AUTH, now=now)
    auth = env.body
    if not isinstance(auth, ClientAuth):
        raise RequestError("send a client-auth proof", "auth.invalid")
    if auth.node != node:
        raise RequestError(f"the proof is for {auth.node}, not this node", "auth.invalid")
    return auth, env
