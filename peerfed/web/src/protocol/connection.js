// The support connection (spec §9): a state machine both peers run over the same opened messages.
// A Connection is immutable: apply() returns the next one, so a refused step changes nothing.

import { equalBytes, toHex } from './crypto.js';
import { ProtocolError } from './errors.js';

const BOTH = ['reacher', 'author'];
// {state: {"step/side": next}}; a response is the step "accept" or "decline" (spec §9.1).
const TRANSITIONS = {
  'reached-out': { 'accept/author': 'accepted', 'decline/author': 'declined', 'end/reacher': 'ended', 'end/author': 'ended' },
  accepted: Object.fromEntries(BOTH.flatMap((s) => [[`agreement/${s}`, 'accepted'], [`message/${s}`, 'accepted'], [`end/${s}`, 'ended']])),
  agreed: Object.fromEntries(BOTH.flatMap((s) => [[`agreement/${s}`, 'agreed'], [`message/${s}`, 'agreed'], [`end/${s}`, 'ended']])),
  declined: {},
  ended: {},
};

const refused = (message, code = 'connection.not_allowed') => new ProtocolError(code, message);

export class Connection {
  constructor(fields) {
    Object.assign(this, fields);
    Object.freeze(this);
  }

  /** The connection a verified reach-out (an opened sealed-inner object) starts. Throws connection.not_allowed. */
  static start(reachOut) {
    if (reachOut.context !== 'peerfed/v1/sealed-inner' || reachOut.type !== 'reach-out') {
      throw refused('a connection starts with a reach-out');
    }
    if (equalBytes(reachOut.body.recipient, reachOut.author)) throw refused('a peer cannot reach out to themself');
    return new Connection({
      id: reachOut.body.connection,
      reacher: reachOut.author,
      author: reachOut.body.recipient,
      listing: reachOut.body.listing,
      reachOutExpires: reachOut.expiresAt,
      state: 'reached-out',
      round: 0,
      roundTerms: [], // [[side, hex of the terms' encoding]]
      inForce: null, // { version, terms }
      endedBy: null,
      eraseRequested: false,
      seen: new Set([toHex(reachOut.id)]),
      seqs: new Set(),
    });
  }

  get live() {
    return this.state !== 'declined' && this.state !== 'ended';
  }

  sideOf(peer) {
    if (equalBytes(peer, this.reacher)) return 'reacher';
    if (equalBytes(peer, this.author)) return 'author';
    return null;
  }

  /** The steps `side` may take now. */
  allowed(side) {
    return Object.keys(TRANSITIONS[this.state]).filter((k) => k.endsWith(`/${side}`)).map((k) => k.split('/')[0]);
  }

  with(changes) {
    return new Connection({ ...this, ...changes });
  }

  /**
   * The next state after an opened message (spec §9.2, checked in order). Throws ProtocolError:
   * connection.not_allowed, connection.duplicate, connection.closed.
   */
  apply(env) {
    const body = env.body;
    if (env.context !== 'peerfed/v1/sealed-inner' || env.type === 'reach-out') {
      throw refused('only responses, agreements, messages and ends continue a connection');
    }
    if (!equalBytes(body.connection, this.id)) throw refused('the message belongs to another connection');
    const side = this.sideOf(env.author);
    if (side === null || !equalBytes(body.recipient, side === 'reacher' ? this.author : this.reacher)) {
      throw refused("the message is not between this connection's two peers");
    }
    const id = toHex(env.id);
    if (this.seen.has(id)) throw refused('this message was already applied', 'connection.duplicate');
    if (!this.live) throw refused(`the connection is ${this.state}; nothing more is accepted`, 'connection.closed');
    const step = env.type === 'response' ? (body.accept ? 'accept' : 'decline') : env.type;
    const following = TRANSITIONS[this.state][`${step}/${side}`];
    if (following === undefined) throw refused(`the ${side} may not send ${step} while ${this.state}`);
    const seen = new Set(this.seen).add(id);
    if (env.type === 'response') {
      if (env.createdAt > this.reachOutExpires) throw refused('the reach-out expired before this response');
      return this.with({ state: following, seen });
    }
    if (env.type === 'end') return this.with({ state: following, seen, endedBy: side, eraseRequested: body.erase });
    if (env.type === 'message') {
      const key = `${side}/${body.seq}`;
      if (this.seqs.has(key)) throw refused(`sequence number ${body.seq} was already used`, 'connection.duplicate');
      return this.with({ state: following, seen, seqs: new Set(this.seqs).add(key) });
    }
    return this.#agree(side, body, seen, following);
  }

  #agree(side, body, seen, following) {
    const terms = toHex(body.terms.encoded);
    let signed;
    if (body.version === this.round + 1) signed = [[side, terms]];
    else if (body.version === this.round) {
      if (this.roundTerms.some(([s]) => s === side)) throw refused(`the ${side} already signed version ${body.version}`);
      signed = [...this.roundTerms, [side, terms]];
    } else throw refused(`agreement version ${body.version} is out of turn`);
    const next = { state: following, seen, round: body.version, roundTerms: signed };
    if (signed.length === 2 && signed[0][1] === signed[1][1]) {
      return this.with({ ...next, state: 'agreed', inForce: { version: body.version, terms: body.terms } });
    }
    return this.with(next);
  }
}
