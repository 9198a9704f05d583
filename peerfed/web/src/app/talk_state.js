// Conversations at rest on this device (spec §9.5, §12): each conversation is kept as the signed
// inner objects both sides sent, replayed through the state machine when the page opens, all of it
// sealed with XChaCha20-Poly1305 under a key derived from the identity seed, which is itself sealed
// under the passphrase. So nothing a peer wrote is readable at rest when a passphrase is set.

import {
  aeadDecrypt, aeadEncrypt, blake2b256, concat, Connection, decodeVerified, equalBytes, NONCE_BYTES, pack, person,
  randomBytes, toHex, unpack,
} from '../protocol/index.js';

const VERSION = 1;
const AAD = new TextEncoder().encode('peerfed/web/talk-state/v1');
const INNER = { context: 'peerfed/v1/sealed-inner' };

/** The key that seals this device's conversations, derived from the identity `seed`. */
export function stateKey(seed) {
  return blake2b256(seed, person('peerfed/webstate'));
}

function row(c) {
  const o = c.other;
  return [c.id, c.mine, c.peer, o.encryptionKey, o.home ?? null, o.name ?? null, c.topics ?? null, c.unread, Boolean(c.erased),
    c.state.endedBy ?? null, c.state.state, c.erased ? [] : c.events, c.nextSeq ?? 1];
}

// The take-over's floor counts seconds from this moment (spec §9.5, R-9.5-5), so it stays far
// below any limit on seq while every later take-over numbers above an earlier one.
export const SEQ_EPOCH = 1_700_000_000;

/** The lowest seq a device that took the identity over at `at` (Unix seconds) sends from (R-9.5-5). */
export function seqFloor(at) {
  return Math.max(1, at - SEQ_EPOCH);
}

/**
 * The seq `c`'s next message carries: its highest own seq + 1, or the device's take-over `floor`
 * when that is larger, so a seq the device taken over from used meanwhile is not used again.
 */
export function seqToSend(c, floor = 0) {
  return Math.max(c.nextSeq ?? 1, floor);
}

/**
 * Seal the conversations and blocks of `talk` into bytes, with `talk.seqFloor` (0 when it never
 * took the identity over), which a reload must keep as it keeps each conversation's next seq.
 */
export function sealState(talk, key, nonce = randomBytes(NONCE_BYTES)) {
  const plain = pack([VERSION, [...talk.blocked], [...talk.conversations.values()].map(row), talk.seqFloor ?? 0]);
  return concat(nonce, aeadEncrypt(key, nonce, plain, AAD));
}

// A conversation whose words were deleted keeps only how it ended.
const ENDED = (id, endedBy) => ({ id, state: 'ended', endedBy, live: false });

/**
 * One conversation from its stored row (the fields `row` writes), replayed through the state
 * machine. Throws ProtocolError when its history does not replay.
 */
export function rebuild(me, fields) {
  // The 13th field, the next seq to send, is kept because forgotten messages (spec §9.7) no longer
  // say which were used; a row stored before it had 12 fields and counts from its messages.
  const [id, mine, peer, encryptionKey, home, name, topics, unread, erased, endedBy, state, events, nextSeq = 1] = fields;
  const c = { id, mine, peer, other: { encryptionKey, home, name }, topics, unread, erased, events: [...events], messages: [], hello: null, reply: null, nextSeq: 1 };
  if (erased || events.length === 0) return { ...c, state: ENDED(id, endedBy ?? state) };
  const envs = events.map((raw) => decodeVerified(raw, INNER));
  c.state = Connection.start(envs[0]);
  c.hello = envs[0].body.hello;
  c.offered = envs[0].body.terms; // informational only (spec §9.3)
  for (const env of envs.slice(1)) {
    c.state = c.state.apply(env);
    if (env.type === 'response') c.reply = env.body.reply;
    if (env.type === 'message') {
      const own = equalBytes(env.author, me);
      c.messages.push({ mine: own, seq: env.body.seq, text: env.body.text, createdAt: env.createdAt });
      if (own) c.nextSeq = Math.max(c.nextSeq, env.body.seq + 1);
    }
  }
  c.nextSeq = Math.max(c.nextSeq, nextSeq);
  return c;
}

/**
 * Keep the promise of terms in force that say `forget` (spec §9.7): drop from `c` every message
 * sent `forget` seconds or more before `now`, its signed bytes and its shown text. The reach-out,
 * response, agreements and end stay; so does `nextSeq`, so no seq is used twice. Returns whether
 * anything went (the caller then seals the state again, which is what removes it at rest).
 */
export function forgetDue(c, now) {
  const forget = c.erased ? null : c.state?.inForce?.terms?.forget ?? null;
  if (forget === null) return false;
  const due = (createdAt) => createdAt + forget <= now;
  const kept = c.events.filter((raw) => {
    const env = decodeVerified(raw, INNER);
    return env.type !== 'message' || !due(env.createdAt);
  });
  if (kept.length === c.events.length) return false;
  c.events = kept;
  c.messages = c.messages.filter((m) => !due(m.createdAt));
  return true;
}

const FORGET_CHECK_MS = 60_000; // how often an open screen looks for messages due to be forgotten

/**
 * While a conversation or the list is on screen, ask `talk` every `every` ms to forget what came
 * due (spec §9.7; Talk.forgetDue tells the screen), so a message leaves the open screen without any
 * input. `timers` gives setInterval and clearInterval (a test passes its own). Returns the stop.
 */
export function keepForgetting(talk, { every = FORGET_CHECK_MS, timers = globalThis } = {}) {
  const id = timers.setInterval(() => talk.forgetDue(), every);
  return () => timers.clearInterval(id);
}

/** Fill `talk` from sealed `bytes`. Throws ProtocolError when they do not open under `key`. */
export function openState(talk, key, bytes) {
  const plain = aeadDecrypt(key, bytes.subarray(0, NONCE_BYTES), bytes.subarray(NONCE_BYTES), AAD);
  // A state stored before take-overs kept a floor has three fields: no floor, as it never took over.
  const [version, blocked, rows, floor = 0] = unpack(plain);
  if (version !== VERSION) return;
  talk.seqFloor = Math.max(talk.seqFloor ?? 0, Number(floor));
  for (const peer of blocked) talk.blocked.add(peer);
  for (const fields of rows) {
    const c = rebuild(talk.me, fields);
    c.blocked = talk.blocked.has(toHex(c.peer));
    talk.conversations.set(c.id, c);
  }
}

// Delete a conversation's words from this page, keeping only that it existed and how it ended.
export function eraseWords(conversation) {
  conversation.messages = [];
  conversation.hello = null;
  conversation.reply = null;
  conversation.erased = true;
  conversation.events = [];
  // Every copy of its terms goes too (spec §9.4): only that it ended, and by which side, stays.
  const { id, endedBy } = conversation.state;
  conversation.state = { id, state: 'ended', endedBy, live: false };
}
