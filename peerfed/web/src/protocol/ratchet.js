// Sealing scheme 2 (spec §14): the pre-key agreement, the double ratchet, and the frame inside
// scheme 1's outer seal. Pure: randomness comes in as arguments, states are plain objects that
// are never changed in place (every call returns a new one), so a refused message changes nothing.
//
//   SK = BLAKE2b-256(X25519(e,S) || X25519(e,R) || [X25519(e,O)] || I || mailbox || c || E || R || S || [O], "peerfed/agree/v2")
//   agreement = [I, R, S, O|nil, E, Ed25519_I("peerfed/v1/agreement" 0x00 || mailbox || c || D1 || pack([I,R,S,O,E]))]
//   KDF_RK(root, dh) = BLAKE2b(key=root, 0x01||dh), BLAKE2b(key=root, 0x02||dh)      "peerfed/root/v2"
//   KDF_CK(chain)    = BLAKE2b(key=chain, 0x01),    BLAKE2b(key=chain, 0x02)         "peerfed/chain/v2"
//   frame = [connection, [ratchet_key, pn, n, agreement|nil], nonce2 || XChaCha20-Poly1305(mk, nonce2, inner, aad2)]
//   nonce2 is random per send, so a send repeated from a rolled-back state reuses no keystream (§14.4).

import {
  aeadDecrypt, aeadEncrypt, blake2b256, blake2b256Keyed, concat, ed25519Public, ed25519Sign, ed25519Verify, equalBytes,
  NONCE_BYTES, Person, randomBytes,
  TAG_BYTES, x25519Public, x25519Shared,
} from './crypto.js';
import { isInt, pack, unpack } from './encoding.js';
import { ProtocolError } from './errors.js';
import { Connection } from './connection.js';
import { openSigned } from './envelope.js';
import { aad, derive, HOUR, pad, parseSealed, reacherBundle, SCHEME_V2, sealPadded, unpad } from './sealing.js';

export const MAX_SKIP = 100; // keys one message may make skipped in one chain (spec §14.3)
export const MAX_SKIPPED = 1000; // skipped keys a connection keeps; the oldest go first
export const MAX_RETIRED = 16; // replaced remote ratchet keys remembered
const MAX_COUNTER = 2 ** 32 - 1;
const RATCHET_CONTEXT = new TextEncoder().encode('peerfed/v1/ratchet\u0000');
const AGREEMENT_CONTEXT = new TextEncoder().encode('peerfed/v1/agreement\u0000');
const HEAD = 65;

const fail = (code, message) => new ProtocolError(code, message);
const is32 = (v) => v instanceof Uint8Array && v.length === 32;

// --- the agreement (§14.2) -------------------------------------------------------------------

function agreementSecret(dhs, mailbox, connection, [initiator, key, prekey, oneTime, ephemeral]) {
  const info = concat(initiator, mailbox, connection, ephemeral, key, prekey, oneTime ?? new Uint8Array(0));
  return blake2b256(concat(...dhs, info), Person.AGREE);
}

/** The bytes an agreement's signature covers; `firstKey` is the ratchet key of the headers carrying it (§14.2). */
export function agreementSigned(mailbox, connection, firstKey, agreement) {
  return concat(AGREEMENT_CONTEXT, mailbox, connection, firstKey, pack(agreement.slice(0, 5)));
}

/**
 * The initiator's secret and agreement [I, R, S, O|null, E, sig], signed with its identity `seed`
 * over `firstKey` (its first ratchet key). `ephemeral` is a fresh X25519 secret, not kept.
 */
export function initiate(mailbox, connection, key, prekey, oneTime, { seed, firstKey, ephemeral }) {
  const unsigned = [ed25519Public(seed), key, prekey, oneTime, x25519Public(ephemeral)];
  const agreement = [...unsigned, ed25519Sign(seed, agreementSigned(mailbox, connection, firstKey, unsigned))];
  const dhs = [x25519Shared(ephemeral, prekey), x25519Shared(ephemeral, key)];
  if (oneTime !== null) dhs.push(x25519Shared(ephemeral, oneTime));
  return { secret: agreementSecret(dhs, mailbox, connection, agreement), agreement };
}

/** The responder's secret from the secrets the agreement names (matched, and its signature checked, by the caller). */
export function respond(mailbox, connection, agreement, { key, prekey, oneTime }) {
  const theirs = agreement[4];
  const dhs = [x25519Shared(prekey, theirs), x25519Shared(key, theirs)];
  if (oneTime !== null) dhs.push(x25519Shared(oneTime, theirs));
  return agreementSecret(dhs, mailbox, connection, agreement);
}

// --- the ratchet (§14.3) ---------------------------------------------------------------------

export function kdfRoot(root, dh) {
  return [blake2b256Keyed(concat([1], dh), root, Person.ROOT), blake2b256Keyed(concat([2], dh), root, Person.ROOT)];
}

export function kdfChain(chain) {
  return [blake2b256Keyed(new Uint8Array([1]), chain, Person.CHAIN), blake2b256Keyed(new Uint8Array([2]), chain, Person.CHAIN)];
}

const EMPTY = { own: null, remote: null, send: null, ns: 0, pn: 0, recv: null, nr: 0, skipped: [], retired: [], agreement: null };

/** The initiator's state: its first sending chain is taken at once with `first`, whose key the agreement signs. */
export function startInitiator(secret, signedPrekey, agreement, first) {
  const [root, send] = kdfRoot(secret, x25519Shared(first, signedPrekey));
  return { ...EMPTY, root, own: first, remote: signedPrekey, send, agreement };
}

export function startResponder(secret, signedPrekeySecret) {
  return { ...EMPTY, root: secret, own: signedPrekeySecret };
}

const headerWire = (h) => [h.ratchetKey, h.pn, h.n, h.agreement];

/**
 * The next message: { state, header, ciphertext = nonce || AEAD }. `fresh` is used only when a new
 * sending chain starts; `nonce` is 24 random bytes.
 */
export function ratchetEncrypt(state, plaintext, context, { fresh, nonce }) {
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES) throw new Error('the message nonce is 24 bytes');
  let s = state;
  if (s.send === null) {
    if (s.remote === null) throw new Error('the responder cannot send before it has opened a message');
    const [root, send] = kdfRoot(s.root, x25519Shared(fresh, s.remote));
    s = { ...s, own: fresh, root, send, pn: s.ns, ns: 0 };
  }
  if (s.ns >= MAX_COUNTER) throw new Error('this sending chain is exhausted');
  const [mk, send] = kdfChain(s.send);
  const header = { ratchetKey: x25519Public(s.own), pn: s.pn, n: s.ns, agreement: s.agreement };
  const ciphertext = concat(nonce, aeadEncrypt(mk, nonce, plaintext, concat(context, pack(headerWire(header)))));
  return { state: { ...s, send, ns: s.ns + 1 }, header, ciphertext };
}

function skip(s, until) {
  if (s.recv === null || until <= s.nr) return s;
  if (until - s.nr > MAX_SKIP) throw fail('ratchet.too_far_ahead', `more than ${MAX_SKIP} keys would be skipped in one chain`);
  let chain = s.recv;
  const kept = [...s.skipped];
  for (let n = s.nr; n < until; n++) {
    const [mk, next] = kdfChain(chain);
    kept.push([s.remote, n, mk]);
    chain = next;
  }
  return { ...s, recv: chain, nr: until, skipped: kept.slice(-MAX_SKIPPED) };
}

function messageKey(state, header) {
  const { ratchetKey: d, n } = header;
  const at = state.skipped.findIndex(([key, number]) => number === n && equalBytes(key, d));
  if (at >= 0) return { s: { ...state, skipped: state.skipped.filter((_, i) => i !== at) }, mk: state.skipped[at][2] };
  let s = state;
  const current = s.remote !== null && equalBytes(s.remote, d);
  if (!(current && s.recv !== null)) {
    if (s.retired.some((r) => equalBytes(r, d))) throw fail('ratchet.key_used', 'that chain is closed and the key is not kept');
    if (s.own === null) throw fail('seal.decrypt_failed', 'no ratchet secret to take a new remote key with');
    s = skip(s, header.pn);
    if (n > MAX_SKIP) throw fail('ratchet.too_far_ahead', `more than ${MAX_SKIP} keys would be skipped`);
    const retired = s.remote === null ? s.retired : [...s.retired, s.remote].slice(-MAX_RETIRED);
    const [root, recv] = kdfRoot(s.root, x25519Shared(s.own, d));
    s = { ...s, root, recv, nr: 0, remote: d, send: null, own: null, retired }; // own is never needed again (§14.3 step 4)
  }
  if (n < s.nr) throw fail('ratchet.key_used', 'this message key was already used');
  s = skip(s, n);
  const [mk, recv] = kdfChain(s.recv);
  return { s: { ...s, recv, nr: n + 1 }, mk };
}

/** Open one message: { state, plaintext }; `state` itself is never changed. Throws ProtocolError. */
export function ratchetDecrypt(state, header, ciphertext, context) {
  if (ciphertext.length < NONCE_BYTES + TAG_BYTES) throw fail('schema.invalid', 'the ciphertext is a nonce and at least a tag');
  const { s, mk } = messageKey(state, header);
  const nonce = ciphertext.subarray(0, NONCE_BYTES);
  const plaintext = aeadDecrypt(mk, nonce, ciphertext.subarray(NONCE_BYTES), concat(context, pack(headerWire(header))));
  return { state: { ...s, agreement: null }, plaintext };
}

// --- the wire (§14.4, §14.5) -------------------------------------------------------------------

/**
 * A session as the initiator whose identity seed is `seed`, with the author of `bundle`: its newest
 * unexpired key bundle (spec §4.3), opened with openSigned; its key is R and its signed pre-key S.
 * Throws Error for anything else (scheme 1 is used without a signed pre-key, §14.7).
 */
export function initiateSession(bundle, connection, oneTime, { seed, now, ephemeral = randomBytes(32), first = randomBytes(32) }) {
  if (bundle.context !== 'peerfed/v1/key-bundle' || bundle.type !== 'key-bundle') throw new Error('a session starts from a key bundle');
  if (bundle.expiresAt <= now) throw new Error('that key bundle has expired: use the newest unexpired one');
  const { encryptionKey: key, prekey } = bundle.body;
  if (prekey === null) throw new Error('that key bundle has no signed pre-key: scheme 2 cannot start');
  const mailbox = bundle.author;
  const { secret, agreement } = initiate(mailbox, connection, key, prekey, oneTime, { seed, firstKey: x25519Public(first), ephemeral });
  return { connection, peer: mailbox, ephemeral: agreement[4], state: startInitiator(secret, prekey, agreement, first) };
}

const contextOf = (mailbox, connection) => concat(RATCHET_CONTEXT, mailbox, connection);

/**
 * Seal a signed sealed-inner object in its connection's session: { sealed, session }. The caller
 * MUST store `session` before it hands `sealed` to a node (spec §14.4).
 */
export function seal2(inner, session, recipientKey, {
  hour, fresh = randomBytes(32), ephemeral = randomBytes(32), nonce = randomBytes(NONCE_BYTES), innerNonce = randomBytes(NONCE_BYTES),
} = {}) {
  const mailbox = inner.body.recipient;
  if (!equalBytes(inner.body.connection, session.connection)) throw new Error('the message belongs to another connection');
  const h = hour ?? inner.createdAt - (inner.createdAt % HOUR);
  const { state, header, ciphertext } = ratchetEncrypt(session.state, inner.raw, contextOf(mailbox, session.connection), { fresh, nonce: innerNonce });
  const frame = pack([session.connection, headerWire(header), ciphertext]);
  const sealed = sealPadded(pad(frame), mailbox, h, recipientKey, { scheme: SCHEME_V2, ephemeral, nonce });
  return { sealed, session: { ...session, state } };
}

const counter = (v) => isInt(v) && Number(v) >= 0 && Number(v) <= MAX_COUNTER;

function parseFrame(plain) {
  const frame = unpack(plain);
  if (!Array.isArray(frame) || frame.length !== 3) throw fail('schema.invalid', 'a frame is [connection, header, ciphertext]');
  const [connection, h, ciphertext] = frame;
  if (!(connection instanceof Uint8Array) || connection.length !== 16) throw fail('schema.invalid', 'a connection id is 16 bytes');
  if (!(ciphertext instanceof Uint8Array) || ciphertext.length < NONCE_BYTES + TAG_BYTES) {
    throw fail('schema.invalid', 'the ciphertext is a nonce and at least a tag');
  }
  if (!Array.isArray(h) || h.length !== 4 || !is32(h[0]) || !counter(h[1]) || !counter(h[2])) {
    throw fail('schema.invalid', 'a header is [ratchet_key, pn, n, agreement]');
  }
  const a = h[3];
  const agreementShape = (v) => Array.isArray(v) && v.length === 6 && is32(v[0]) && is32(v[1]) && is32(v[2]) &&
    (v[3] === null || (is32(v[3]) && !equalBytes(v[3], v[1]) && !equalBytes(v[3], v[2]))) && is32(v[4]) &&
    v[5] instanceof Uint8Array && v[5].length === 64;
  if (a !== null && !agreementShape(a)) throw fail('schema.invalid', 'an agreement is [I, R, S, O or nil, E, signature]');
  return { connection, header: { ratchetKey: h[0], pn: Number(h[1]), n: Number(h[2]), agreement: a }, ciphertext };
}

const byPublic = (secrets, pub) => secrets.find((s) => equalBytes(x25519Public(s), pub));

function sessionFor(recipient, connection, header, sessions, { secrets, signedPrekeys, oneTimePrekeys }) {
  const agreement = header.agreement;
  const held = sessions.get(connection);
  if (held !== undefined) {
    if (agreement !== null) {
      if (!equalBytes(agreement[4], held.ephemeral)) throw fail('ratchet.no_session', 'an agreement other than the one this session began with');
      if (held.peer === null || !equalBytes(agreement[0], held.peer)) throw fail('seal.wrong_sender', 'the agreement names another initiator');
      // Every header repeating the agreement carries the signed first ratchet key (§14.2).
      ed25519Verify(agreement[0], agreementSigned(recipient, connection, header.ratchetKey, agreement), agreement[5]);
    }
    return { session: held, oneTimeUsed: null };
  }
  if (agreement === null) throw fail('ratchet.no_session', 'no session for this connection, and no agreement');
  const key = byPublic(secrets, agreement[1]);
  const prekey = byPublic(signedPrekeys, agreement[2]);
  if (key === undefined || prekey === undefined) throw fail('seal.wrong_recipient', 'the agreement names keys this peer does not hold');
  ed25519Verify(agreement[0], agreementSigned(recipient, connection, header.ratchetKey, agreement), agreement[5]);
  const oneTime = agreement[3] === null ? null : byPublic(oneTimePrekeys, agreement[3]) ?? undefined;
  if (oneTime === undefined) throw fail('ratchet.prekey_used', 'that one-time pre-key is not held: used, or never ours');
  const secret = respond(recipient, connection, agreement, { key, prekey, oneTime });
  const session = { connection, peer: agreement[0], ephemeral: agreement[4], state: startResponder(secret, prekey) };
  return { session, oneTimeUsed: oneTime === null ? null : agreement[3] };
}

/**
 * Open a scheme-2 message (spec §14.5). `sessions` is a Map from a connection id's hex to its
 * session; the would-be session `pending` is kept only through `acceptOpened2`, and
 * `oneTimeUsed`'s secret is deleted once the message is applied. Throws ProtocolError with the
 * first failure's code; changes nothing.
 */
export function openSealed2(data, { recipient, secrets, signedPrekeys = [], oneTimePrekeys = [], sessions, now }) {
  const sealed = parseSealed(data);
  if (sealed.payload[0] !== SCHEME_V2) throw fail('schema.invalid', 'not a scheme-2 message');
  if (!equalBytes(sealed.mailbox, recipient)) throw fail('seal.wrong_recipient', 'not addressed to this mailbox');
  const p = sealed.payload;
  const rkey = p.subarray(1, 33);
  const outer = byPublic(secrets, rkey);
  if (outer === undefined) throw fail('seal.wrong_recipient', 'sealed to a key this peer does not hold');
  const ephemeral = p.subarray(33, HEAD);
  const key = derive(x25519Shared(outer, ephemeral), ephemeral, rkey, SCHEME_V2);
  const plain = aeadDecrypt(key, p.subarray(HEAD, HEAD + NONCE_BYTES), p.subarray(HEAD + NONCE_BYTES), aad(sealed.mailbox, sealed.hour, p.subarray(0, HEAD)));
  const { connection, header, ciphertext } = parseFrame(unpad(plain));
  const byHex = { get: (c) => sessions.get(Array.from(c, (b) => b.toString(16).padStart(2, '0')).join('')) };
  const { session, oneTimeUsed } = sessionFor(recipient, connection, header, byHex, { secrets, signedPrekeys, oneTimePrekeys });
  const { state, plaintext } = ratchetDecrypt(session.state, header, ciphertext, contextOf(recipient, connection));
  const inner = openSigned(plaintext, { context: 'peerfed/v1/sealed-inner', now });
  if (!equalBytes(inner.body.recipient, recipient)) throw fail('seal.wrong_recipient', 'the signed message names another recipient');
  if (inner.type === 'reach-out') reacherBundle(inner);
  if (!equalBytes(inner.body.connection, connection)) throw fail('schema.invalid', 'the signed message names another connection than its frame');
  if (session.peer !== null && !equalBytes(inner.author, session.peer)) throw fail('seal.wrong_sender', 'the session is with another peer');
  const started = byHex.get(connection) === undefined;
  return { sealed, inner, pending: { ...session, peer: inner.author, state }, oneTimeUsed, started };
}

/**
 * The connection and session to keep once the §9.2 rules take an opened scheme-2 message (spec
 * §14.5, §14.7): a new session only for a reach-out of an unknown connection (`connection` null)
 * or a response from the connection's author. Throws ProtocolError (ratchet.no_session, or the
 * rules' connection.* code); changes nothing.
 */
export function acceptOpened2(opened, connection) {
  const { inner } = opened;
  const noSession = () => fail('ratchet.no_session', 'a session starts only with a reach-out or its response');
  if (connection === null) {
    if (inner.type !== 'reach-out') throw opened.started ? noSession() : fail('connection.not_allowed', 'no connection holds this message');
    return { connection: Connection.start(inner), session: opened.pending };
  }
  if (opened.started && !(inner.type === 'response' && equalBytes(inner.author, connection.author))) throw noSession();
  return { connection: connection.apply(inner), session: opened.pending };
}
