"""The support connection: a state machine both peers run over the same messages (spec §9).

Rules, in one place:

1. A connection starts with a reach-out about a listing. Its id is the reach-out's
   connection id; the peer who reached out is the *reacher*, the listing's author the *author*.
   The two words say who spoke first, nothing more.
2. Until the author accepts, the reacher can send nothing but an end (a withdrawal of the
   reach-out). The author answers with one response: accept or decline. A response created
   after the reach-out expired is refused.
3. Once accepted, either peer may talk, propose terms and end.
4. Terms are in force only when both peers have signed the same version with identical
   terms (byte for byte). A proposal is version n+1 of the latest round n; a countersignature
   repeats version n. Each peer signs a round once. A new round that comes into force
   supersedes the old one; until then the old terms stay in force.
5. Either peer can end from any live state, alone, without a reason. DECLINED and ENDED are
   final: nothing more is accepted.
6. The same message twice, or the same sequence number twice from one sender, is refused
   as a duplicate.

``Connection`` is immutable: ``receive`` and ``send`` return the next state, so a refused
step cannot leave anything half-changed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from .encoding import pack
from .envelope import Context, Envelope
from .errors import ConnectionStateError, IllegalSend
from .identity import PeerId
from .messages import Agreement, End, Message, ReachOut, Response, Terms

__all__ = ["TRANSITIONS", "Connection", "Side", "State"]


class State(enum.StrEnum):
    REACHED_OUT = "reached-out"
    ACCEPTED = "accepted"
    AGREED = "agreed"
    DECLINED = "declined"
    ENDED = "ended"


class Side(enum.StrEnum):
    REACHER = "reacher"
    AUTHOR = "author"


_BOTH = (Side.REACHER, Side.AUTHOR)

# {state: {(step, side): next state}}. A step is a message type, with a response split into
# "accept" and "decline". An agreement that puts terms in force moves ACCEPTED to AGREED.
TRANSITIONS: dict[State, dict[tuple[str, Side], State]] = {
    State.REACHED_OUT: {
        ("accept", Side.AUTHOR): State.ACCEPTED,
        ("decline", Side.AUTHOR): State.DECLINED,
        **{("end", s): State.ENDED for s in _BOTH},
    },
    State.ACCEPTED: {
        **{("agreement", s): State.ACCEPTED for s in _BOTH},
        **{("message", s): State.ACCEPTED for s in _BOTH},
        **{("end", s): State.ENDED for s in _BOTH},
    },
    State.AGREED: {
        **{("agreement", s): State.AGREED for s in _BOTH},
        **{("message", s): State.AGREED for s in _BOTH},
        **{("end", s): State.ENDED for s in _BOTH},
    },
    State.DECLINED: {},
    State.ENDED: {},
}


class _Refused(Exception):
    def __init__(self, message: str, code: str = "connection.not_allowed") -> None:
        super().__init__(message)
        self.code = code


def _step_name(envelope: Envelope) -> str:
    body = envelope.body
    if isinstance(body, Response):
        return "accept" if body.accept else "decline"
    return body.type_name


@dataclass(frozen=True)
class Connection:
    """One support connection as both peers see it. Build with ``start``."""

    id: bytes
    reacher: PeerId
    author: PeerId
    listing: bytes
    reach_out_expires: int
    state: State = State.REACHED_OUT
    round: int = 0
    round_terms: tuple[tuple[Side, bytes], ...] = ()
    in_force: tuple[int, Terms] | None = None
    ended_by: Side | None = None
    erase_requested: bool = False
    seen: frozenset[bytes] = field(default_factory=frozenset)
    seqs: frozenset[tuple[Side, int]] = field(default_factory=frozenset)

    @classmethod
    def start(cls, reach_out: Envelope) -> Connection:
        """The connection a verified reach-out opens. Raises ConnectionStateError otherwise."""
        body = reach_out.body
        if reach_out.context is not Context.SEALED or not isinstance(body, ReachOut):
            raise ConnectionStateError("a connection starts with a reach-out")
        if body.recipient == reach_out.author:
            raise ConnectionStateError("a peer cannot reach out to themself")
        return cls(
            id=body.connection,
            reacher=reach_out.author,
            author=body.recipient,
            listing=body.listing,
            reach_out_expires=reach_out.expires_at,
            seen=frozenset({reach_out.id}),
        )

    @property
    def live(self) -> bool:
        return self.state not in (State.DECLINED, State.ENDED)

    def side_of(self, peer: PeerId) -> Side | None:
        if peer == self.reacher:
            return Side.REACHER
        if peer == self.author:
            return Side.AUTHOR
        return None

    def allowed(self, side: Side) -> frozenset[str]:
        """The steps ``side`` may take now (for a user interface)."""
        return frozenset(step for (step, s) in TRANSITIONS[self.state] if s is side)

    def receive(self, envelope: Envelope) -> Connection:
        """The next state after a verified message from the other peer (or an echo of ours).

        Raises ConnectionStateError (connection.not_allowed, .duplicate, .closed).
        """
        try:
            return self._step(envelope)
        except _Refused as exc:
            raise ConnectionStateError(str(exc), exc.code) from None

    def send(self, envelope: Envelope) -> Connection:
        """The next state after a message this peer signed; raises IllegalSend if not allowed."""
        try:
            return self._step(envelope)
        except _Refused as exc:
            raise IllegalSend(str(exc), exc.code) from None

    def _step(self, envelope: Envelope) -> Connection:
        body = envelope.body
        if envelope.context is not Context.SEALED or isinstance(body, ReachOut):
            raise _Refused("only responses, agreements, messages and ends continue a connection")
        assert isinstance(body, (Response, Agreement, Message, End))
        if body.connection != self.id:
            raise _Refused("the message belongs to another connection")
        side = self.side_of(envelope.author)
        if side is None or body.recipient != (self.author if side is Side.REACHER else self.reacher):
            raise _Refused("the message is not between this connection's two peers")
        if envelope.id in self.seen:
            raise _Refused("this message was already applied", "connection.duplicate")
        if not self.live:
            raise _Refused(
                f"the connection is {self.state.value}; nothing more is accepted",
                "connection.closed",
            )
        step = _step_name(envelope)
        following = TRANSITIONS[self.state].get((step, side))
        if following is None:
            raise _Refused(f"the {side.value} may not send {step} while {self.state.value}")
        seen = self.seen | {envelope.id}

        if isinstance(body, Response):
            if envelope.created_at > self.reach_out_expires:
                raise _Refused("the reach-out expired before this response")
            return replace(self, state=following, seen=seen)
        if isinstance(body, End):
            return replace(self, state=following, seen=seen, ended_by=side, erase_requested=body.erase)
        if isinstance(body, Message):
            if (side, body.seq) in self.seqs:
                raise _Refused(f"sequence number {body.seq} was already used", "connection.duplicate")
            return replace(self, state=following, seen=seen, seqs=self.seqs | {(side, body.seq)})
        return self._agree(side, body, seen, following)

    def _agree(self, side: Side, body: Agreement, seen: frozenset[bytes], following: State) -> Connection:
        terms = pack(body.terms.to_wire())
        if body.version == self.round + 1:
            signed: tuple[tuple[Side, bytes], ...] = ((side, terms),)
        elif body.version == self.round:
            if any(s is side for s, _ in self.round_terms):
                raise _Refused(f"the {side.value} already signed version {body.version}")
            signed = (*self.round_terms, (side, terms))
        else:
            expected = f"{self.round} or {self.round + 1}" if self.round else "1"
            raise _Refused(f"agreement version {body.version} is out of turn (expected {expected})")
        nxt = replace(self, state=following, seen=seen, round=body.version, round_terms=signed)
        if len(signed) == 2 and signed[0][1] == signed[1][1]:
            return replace(nxt, state=State.AGREED, in_force=(body.version, body.terms))
        return nxt
