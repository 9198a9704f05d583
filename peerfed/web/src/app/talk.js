// Reaching out and talking (spec §8, §9, §13.5): every sealed message is signed and sealed in this
// page, first contact carries proof of work solved in a Web Worker, and mail arrives live over
// /api/v1/live, where talk_receive.js opens and applies it. Conversations are kept sealed on this
// device (talk_state.js). No DOM here.

import {
  Connection, decodeVerified, equalBytes, identityFromSeed, initiateSession, openSigned, peerIdText, randomBytes, reacherBundle,
  seal, seal2, sign, toHex,
} from '../protocol/index.js';
import { loadState, saveState } from './keystore.js';
import { base64, call, NodeError } from './node.js';
import { openLive } from './live.js';
import { secretsFor } from './sessions.js';
import { receive } from './talk_receive.js';
import { eraseWords, forgetDue, openState, sealState, seqFloor, seqToSend, stateKey } from './talk_state.js';
import { agreementItems } from './terms.js';

const DAY = 86_400;
const REACH_OUT_LIFETIME = 7 * DAY; // as the CLI's
const MESSAGE_LIFETIME = 14 * DAY; // as the CLI's
const MAX_WORK_BITS = 24; // the reference client refuses more (spec §13.5)
// Unanswered reach-outs kept at once, in all and from one peer, as the reference client (spec §13.5).
export { PENDING_PER_SENDER_CAP, PENDING_REACH_OUTS_CAP } from './talk_receive.js';

/**
 * The key bundle of `author` from its signed bytes: { encryptionKey, home, name }, and `bundle`,
 * the opened envelope (a session starts from it, §14.7). Throws ProtocolError.
 */
export function openBundle(raw, author, now) {
  const env = openSigned(raw, { context: 'peerfed/v1/key-bundle', now, maxBytes: 1024 });
  if (!equalBytes(env.author, author)) throw new NodeError('seal.wrong_sender', "a key bundle signed by another peer");
  return { encryptionKey: env.body.encryptionKey, home: env.body.home, name: env.body.pseudonym, bundle: env };
}

// The nonce for `challenge` with `bits` zero bits, solved in a worker (main thread if none starts).
function solve(challenge, bits) {
  return new Promise((resolve, reject) => {
    let worker;
    try {
      worker = new Worker('assets/work.js', { type: 'module' });
    } catch {
      import('../protocol/work.js').then((w) => resolve(w.solveWork(challenge, bits)), reject);
      return;
    }
    worker.onmessage = (event) => {
      worker.terminate();
      resolve(event.data);
    };
    worker.onerror = (event) => {
      worker.terminate();
      reject(new NodeError('auth.work', event.message || 'the proof of work did not finish'));
    };
    worker.postMessage({ challenge, bits });
  });
}

/** Everything one signed-in person has going on: conversations by connection id (hex). */
export class Talk {
  constructor(ctx) {
    this.ctx = ctx;
    this.me = identityFromSeed(ctx.keys.seed).publicKey;
    this.conversations = new Map();
    this.blocked = new Set(); // peer ids (hex) whose mail is dropped unread
    this.listeners = new Set();
    this.live = null;
    this.key = stateKey(ctx.keys.seed);
    this.saving = Promise.resolve();
    this.secrets = null; // sessions.js: pre-key secrets and scheme-2 sessions, once restored
    this.seqFloor = 0; // the lowest seq sent from, set when this device took the identity over
  }

  /** Bring back this device's conversations (talk_state.js); a state that does not open is left alone. */
  async restore() {
    this.secrets = await secretsFor(this.ctx.keys.seed);
    const bytes = await loadState().catch(() => null);
    if (bytes instanceof Uint8Array) {
      try {
        openState(this, this.key, bytes);
      } catch {
        // another identity's state, or damaged: kept as it is, not shown
      }
    }
    this.forgetLapsed();
    this.forgetDue();
  }

  /**
   * Delete the messages whose agreed time to be forgotten has come (spec §9.7), seal the rest again
   * and tell the watchers of each conversation that changed, so an open screen drops them too.
   */
  forgetDue(now = this.ctx.now()) {
    const gone = [...this.conversations.values()].filter((c) => forgetDue(c, now));
    for (const c of gone) this.changed(c); // seals the state again: what went is gone at rest too
    return gone.length > 0;
  }

  /** Reach-outs waiting for this person's answer, unexpired at `now` (spec §13.5). */
  pending(now = this.ctx.now()) {
    return [...this.conversations.values()].filter((c) => !c.mine && c.state.state === 'reached-out' && c.state.reachOutExpires > now);
  }

  /** Forget unanswered reach-outs that expired: they stop counting against the caps (spec §13.5). */
  forgetLapsed(now = this.ctx.now()) {
    for (const [id, c] of this.conversations) {
      if (!c.mine && c.state.state === 'reached-out' && c.state.reachOutExpires <= now) this.conversations.delete(id);
    }
  }

  /** Seal and keep the state after the writes before it; resolves once it is stored. */
  persist() {
    const secrets = this.secrets?.save().catch(() => {});
    this.saving = this.saving.then(() => saveState(sealState(this, this.key))).then(() => secrets).catch(() => {});
    return this.saving;
  }

  /**
   * This device took the identity over at `at` (spec §9.5): every connection numbers its messages
   * from the floor that time gives on (R-9.5-5). With `sessions`, a take-over without a backup,
   * every scheme-2 session is marked stale, since another device may have moved its ratchet on
   * (R-9.5-6, §14.6): it still opens what it can, but the next message on its connection is sealed
   * with scheme 1 and the session goes then (`seal`). Resolves once stored.
   */
  async tookOver(at, { sessions = false } = {}) {
    this.seqFloor = Math.max(this.seqFloor, seqFloor(at));
    if (sessions) {
      this.secrets ??= await secretsFor(this.ctx.keys.seed);
      for (const id of this.secrets.sessions.keys()) this.secrets.stale.add(id);
      await this.secrets.save();
    }
    return this.persist();
  }

  // The connection's session ends with it, or when the other side went back to scheme 1 (spec
  // §14.5 R-14.5-2, §9.4): from then on only scheme 1 is used on it.
  dropSession(id) {
    this.secrets?.stale.delete(id);
    if (this.secrets?.sessions.delete(id)) this.secrets.save().catch(() => {});
  }

  /** Call `listener(conversation)` after every change; returns a function that stops it. */
  watch(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  changed(conversation) {
    this.persist();
    for (const listener of this.listeners) listener(conversation);
  }

  get unread() {
    let n = 0;
    for (const c of this.conversations.values()) n += c.unread;
    return n;
  }

  // Seal `inner` to `other` and hand it to our node. A reach-out or an answer is almost always
  // the first item into that mailbox, so it carries the proof the node document asks for; any
  // other refused for want of it is sent once more with it (spec §13.5).
  async deliver(inner, other, firstContact = false) {
    const sealed = await this.seal(inner, other);
    const headers = { 'Content-Type': 'application/octet-stream' };
    if (other.home) headers['X-Peerfed-Destination'] = other.home;
    const bits = this.ctx.doc.limits.get('first-contact-work-bits') ?? 16;
    const prove = async () => {
      if (bits > MAX_WORK_BITS) throw new NodeError('auth.work', `the node asks for ${bits} bits of proof of work`);
      if (bits > 0) headers['X-Peerfed-Work'] = toHex(await solve(sealed.id, bits));
    };
    const send = () => call(this.ctx.url, '/api/v1/send', { method: 'POST', body: sealed.raw, headers, token: this.ctx.token });
    if (firstContact) await prove();
    try {
      return await send();
    } catch (error) {
      if (error.code !== 'auth.work' || firstContact) throw error;
      await prove();
      return send();
    }
  }

  // Scheme 2 on a connection with a session (spec §14.7), the moved session stored before the
  // bytes leave (§14.4); scheme 1 otherwise.
  async seal(inner, other) {
    const id = toHex(inner.body.connection);
    if (this.secrets?.stale.has(id)) {
      // Taken back without a backup: this message tells the other side to go on with scheme 1 (R-9.5-6).
      this.secrets.stale.delete(id);
      this.secrets.sessions.delete(id);
      await this.secrets.save();
    }
    const session = this.secrets?.sessions.get(id);
    if (session === undefined) return seal(inner, other.encryptionKey);
    const { sealed, session: after } = seal2(inner, session, other.encryptionKey);
    this.secrets.sessions.set(id, after);
    await this.secrets.save();
    return sealed;
  }

  // Start the session a reach-out or the author's response begins when the other side's bundle
  // names a signed pre-key (spec §14.7), with one of their one-time pre-keys if the claim gives
  // one (§13.5: null, a limit, an older node or no answer all leave the signed pre-key alone,
  // which §14.1 allows). The session is stored before anything is sealed in it. Returns whether
  // one started; a bundle it cannot start from leaves scheme 1.
  async startSession(bundle, connection) {
    if (!this.secrets || !bundle || bundle.body.prekey === null) return false;
    let oneTime = null;
    try {
      const answer = await call(this.ctx.url, '/api/v1/prekeys/claim', {
        method: 'POST',
        body: JSON.stringify({ peer: peerIdText(bundle.author) }),
        headers: { 'Content-Type': 'application/json' },
        token: this.ctx.token,
      });
      if (typeof answer?.prekey === 'string') oneTime = base64(answer.prekey);
      if (oneTime !== null && oneTime.length !== 32) oneTime = null;
    } catch {
      oneTime = null;
    }
    const start = (key) => initiateSession(bundle, connection, key, { seed: this.ctx.keys.seed, now: this.ctx.now() });
    let session;
    try {
      session = start(oneTime);
    } catch {
      try {
        // A key no agreement can use costs only the one-time pre-key's extra secrecy (§14.1).
        session = oneTime === null ? null : start(null);
      } catch {
        session = null;
      }
    }
    if (session === null) return false;
    this.secrets.sessions.set(toHex(connection), session);
    await this.secrets.save();
    return true;
  }

  signInner(type, body, lifetime) {
    const at = this.ctx.now();
    return sign(this.ctx.keys.seed, type, body, { createdAt: at, expiresAt: at + lifetime });
  }

  /** Reach out about a verified directory `listing` with `hello`; returns the new conversation. Throws NodeError, ProtocolError. */
  async reachOut(listing, hello) {
    const raw = listing.keyBundle;
    if (!raw) throw new NodeError('not_found', 'this listing came without its author’s key');
    const other = openBundle(raw, listing.author, this.ctx.now());
    const connection = randomBytes(16);
    const inner = this.signInner('reach-out', [listing.author, connection, listing.idBytes, hello, null, this.ctx.bundle], REACH_OUT_LIFETIME);
    await this.startSession(other.bundle, connection);
    try {
      await this.deliver(inner, other, true);
    } catch (error) {
      this.dropSession(toHex(connection)); // no connection came of it
      throw error;
    }
    const conversation = {
      id: toHex(connection), state: Connection.start(inner), events: [inner.raw], other, peer: listing.author, mine: true,
      hello, reply: null, topics: listing.topics, messages: [], unread: 0, nextSeq: 1,
    };
    this.conversations.set(conversation.id, conversation);
    this.changed(conversation);
    return conversation;
  }

  async step(conversation, type, rest) {
    const inner = this.signInner(type, [conversation.peer, conversation.state.id, ...rest], MESSAGE_LIFETIME);
    const next = conversation.state.apply(inner); // refuses a step the state machine does not allow
    if (type === 'response' && !conversation.mine && !this.secrets?.sessions.has(conversation.id)) {
      await this.startSession(this.reacherBundle(conversation), conversation.state.id);
    }
    await this.deliver(inner, conversation.other, type === 'response');
    conversation.state = next;
    conversation.events.push(inner.raw);
    if (next.state === 'ended' || next.state === 'declined') this.dropSession(conversation.id);
    return inner;
  }

  /** Accept (with an optional `reply`) or decline an incoming reach-out. Throws NodeError, ProtocolError. */
  async respond(conversation, accept, reply) {
    await this.step(conversation, 'response', [accept, accept && reply ? reply : null]);
    conversation.reply = accept && reply ? reply : null;
    this.changed(conversation);
  }

  /**
   * Propose `terms` (a wire array, spec §8.3) as the next round, or, with `terms` null, countersign
   * the other side's proposal with the same version and identical terms (§9.3). Throws NodeError,
   * ProtocolError, or an Error with code local.not_allowed when there is nothing to countersign.
   */
  async agree(conversation, terms = null) {
    await this.step(conversation, 'agreement', agreementItems(conversation, terms, this.ctx.now()));
    this.changed(conversation);
  }

  /** Send `text` in an accepted conversation. Throws NodeError, ProtocolError. */
  async send(conversation, text) {
    const seq = seqToSend(conversation, this.seqFloor);
    const inner = await this.step(conversation, 'message', [seq, null, text]);
    conversation.nextSeq = seq + 1;
    conversation.messages.push({ mine: true, seq, text, createdAt: inner.createdAt });
    this.changed(conversation);
  }

  /**
   * End a conversation, alone and without a reason (spec §9.4); with `erase`, ask the other side to
   * delete their copy, and delete this page's copy too. Throws NodeError, ProtocolError.
   */
  async end(conversation, erase) {
    await this.step(conversation, 'end', [erase]);
    if (erase) eraseWords(conversation);
    this.changed(conversation);
  }

  /**
   * Block the other side of `conversation` (on this device, as the CLI does): their mail is dropped
   * from now on and their unanswered reach-outs are forgotten, without a word to them.
   */
  block(conversation) {
    this.blocked.add(toHex(conversation.peer));
    conversation.blocked = true;
    for (const [id, c] of this.conversations) {
      if (equalBytes(c.peer, conversation.peer) && !c.mine && c.state.state === 'reached-out') this.conversations.delete(id);
    }
    this.changed(conversation);
  }

  /** Hear from `peerHex` (a blocked peer id, hex) again from now on; what was dropped stays gone. */
  unblock(peerHex) {
    this.blocked.delete(peerHex);
    for (const c of this.conversations.values()) if (toHex(c.peer) === peerHex) c.blocked = false;
    this.changed(null);
  }

  /** Open and apply one sealed mailbox item; anything that does not open or apply is dropped (talk_receive.js). */
  receive(sealedBytes, viewing) {
    receive(this, sealedBytes, viewing);
  }

  // The reacher's key bundle, from the reach-out this device keeps; null when it does not open.
  reacherBundle(conversation) {
    try {
      return reacherBundle(decodeVerified(conversation.events[0], { context: 'peerfed/v1/sealed-inner' }));
    } catch {
      return null;
    }
  }

  /**
   * Listen on /api/v1/live, reconnecting when the socket drops (live.js); mail is opened as it
   * comes. `viewing()` names the conversation on screen; `options` are live.js's (status, renew).
   */
  listen(viewing, options = {}) {
    if (this.live) this.live.stop();
    this.live = openLive(this, viewing, options);
  }

  /** Stop listening: nothing more is fetched or acknowledged from this page. */
  stop() {
    if (this.live) this.live.stop();
    this.live = null;
  }
}
