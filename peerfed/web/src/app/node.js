// Talking to a node from the browser (spec §13.2, §13.4): the node document, checked as spec §13.2
// says, and signing in with a key that never leaves the page.

import { clientAuthFor, encryptionPublic, fromHex, openNodeDocument, sign, solveWork, toHex } from '../protocol/index.js';

/** A refusal or failure, with the stable code a person's screen is chosen by. */
export class NodeError extends Error {
  constructor(code, message, movedAt = null) {
    super(message);
    this.code = code;
    this.movedAt = movedAt; // for auth.moved: when the other device took this identity over (§13.4)
  }
}

// Told once any answer says auth.moved, so the whole page stops asking (spec §13.4).
let movedListener = null;

/** Call `listener(movedAt)` when a node answers auth.moved: the identity lives on another device now. */
export function whenMoved(listener) {
  movedListener = listener;
}

// Reopens the session when a node says the token ran out (auth.required); one at a time.
let renewer = null;
let renewing = null;

/** Use `renew()` (resolving to a fresh token) when a call with a token is refused auth.required. */
export function whenExpired(renew) {
  renewer = renew;
  renewing = null;
}

/** A fresh session token from the registered renewer, shared by every call waiting for one. */
export function freshToken() {
  if (!renewer) return Promise.reject(new NodeError('auth.required', 'signed out'));
  if (!renewing) renewing = renewer().finally(() => { renewing = null; });
  return renewing;
}

/** Tell the page this identity moved to another device (from an HTTP answer or a live frame). */
export function moved(movedAt) {
  if (movedListener) movedListener(Number.isInteger(movedAt) ? movedAt : null);
}

// About 16 million tries at most: seconds in a browser, and more than any node sensibly asks.
const MAX_WORK_BITS = 24;
// A key bundle lives as long as the CLI's (60 days), never past its key's own end.
const BUNDLE_LIFETIME = 60 * 86_400;
const now = () => Math.floor(Date.now() / 1000);
// An error code as spec §13.8 writes them (`auth.invite`, `rate.limited`), and a session token as a
// header can carry it: anything else from a node is refused rather than shown or sent on.
const CODE = /^[a-z][a-z0-9_-]{0,31}(?:\.[a-z][a-z0-9_.-]{0,63})?$/;
const TOKEN = /^[\x21-\x7e]{1,512}$/;

/** Bytes from the base64 text a node sent; throws NodeError(schema.invalid) for anything else. */
export function base64(text) {
  if (typeof text !== 'string') throw new NodeError('schema.invalid', 'the node sent no document');
  let raw;
  try {
    raw = atob(text);
  } catch {
    throw new NodeError('schema.invalid', 'the node sent text that is not base64');
  }
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

/**
 * One client API call (spec §13.5): the answer's JSON object, or NodeError with the node's code
 * (local.unreachable when nothing answered, schema.invalid for an answer that is not a JSON object).
 */
export async function call(url, path, options = {}) {
  try {
    return await once(url, path, options);
  } catch (error) {
    // The session ran out (spec §13.4): sign in again once, then ask again with the new token.
    if (error.code !== 'auth.required' || !options.token || !renewer) throw error;
    return once(url, path, { ...options, token: await freshToken() });
  }
}

async function once(url, path, { method = 'GET', body, headers = {}, token } = {}) {
  let response;
  try {
    response = await fetch(url + path, {
      method,
      body,
      headers: token ? { ...headers, Authorization: `Bearer ${token}` } : headers,
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
    });
  } catch {
    throw new NodeError('local.unreachable', `could not reach ${url}`);
  }
  let value;
  try {
    value = await response.json();
  } catch {
    throw new NodeError('schema.invalid', 'the node answered something that is not JSON');
  }
  if (!response.ok) {
    const error = value && typeof value === 'object' ? value.error : null;
    // The code is shown to the person when it has no plain words: only a well-formed one is kept,
    // so a node cannot put markup, escapes or bidirectional overrides on the screen through it.
    const code = error && typeof error.code === 'string' && CODE.test(error.code) ? error.code : 'node.internal';
    const movedAt = code === 'auth.moved' && Number.isInteger(error.moved_at) ? error.moved_at : null;
    if (code === 'auth.moved') moved(movedAt);
    throw new NodeError(code, error && typeof error.message === 'string' ? error.message : 'refused', movedAt);
  }
  if (!value || typeof value !== 'object') throw new NodeError('schema.invalid', 'the node answered no object');
  return value;
}

/** A node URL as a person may type it: trailing slashes removed, nothing else changed (spec §13.4). */
export function nodeUrl(typed) {
  return String(typed).trim().replace(/\/+$/, '');
}

/**
 * The node document of `url`, opened and checked (spec §13.2): its body (name, resources, ...).
 * Throws NodeError, or ProtocolError for a document that does not open or names another URL.
 */
export async function nodeDocument(url) {
  const answer = await call(url, '/.well-known/peerfed');
  return openNodeDocument(base64(answer.document), { url, now: now() }).body;
}

/**
 * Sign in to `url` with the identity `seed` (spec §13.4); returns { token, peer, expiresAt }.
 * `device` (16 bytes) names this device; `takeOver` moves the identity here from any other, and
 * is passed only when the person asked for that (importing a backup). Refuses (local.wrong_node)
 * before signing anything when the challenge names another node; NodeError(auth.moved) when
 * another device holds the identity.
 */
export async function signIn(url, seed, { invite, device, takeOver = false } = {}) {
  const challenge = await call(url, '/api/v1/challenge', { method: 'POST' });
  let value;
  try {
    value = fromHex(challenge.challenge);
  } catch {
    throw new NodeError('schema.invalid', "the node's challenge is not hex");
  }
  const body = clientAuthFor(url, challenge.node, value);
  const headers = { 'Content-Type': 'application/octet-stream' };
  if (Number.isInteger(challenge.work) && challenge.work > MAX_WORK_BITS) {
    // A node asking for more would hold the page busy for hours: refuse rather than freeze.
    throw new NodeError('auth.work', `the node asks for ${challenge.work} bits of proof of work`);
  }
  if (Number.isInteger(challenge.work) && challenge.work > 0 && !invite) {
    headers['X-Peerfed-Work'] = toHex(solveWork(value, challenge.work));
  }
  if (invite) headers['X-Peerfed-Invite'] = invite;
  if (device) headers['X-Peerfed-Device'] = toHex(device);
  if (device && takeOver) headers['X-Peerfed-Take-Over'] = '1';
  const at = now();
  const proof = sign(seed, 'client-auth', body, { createdAt: at, expiresAt: at + 300 });
  const session = await call(url, '/api/v1/session', { method: 'POST', body: proof.raw, headers });
  if (typeof session.token !== 'string' || !TOKEN.test(session.token) || !Number.isSafeInteger(session.expires_at)) {
    throw new NodeError('schema.invalid', 'the node answered the sign-in without a usable session');
  }
  return { token: session.token, peer: session.peer, expiresAt: session.expires_at };
}

/**
 * Publish this peer's key bundle (spec §4.3, §13.5 PUT /keys): its current X25519 key, its home
 * `url` and its chosen `name`, so others can write to it; returns its signed bytes. Throws NodeError or ProtocolError.
 * `prekeyFor(expiresAt)`, when given, resolves to the signed pre-key the bundle names.
 */
export async function publishBundle(url, token, seed, current, name, prekeyFor = null) {
  const at = now();
  const expiresAt = Math.min(current.expiresAt, at + BUNDLE_LIFETIME);
  const body = [encryptionPublic(current.secret), url, name || null];
  // With a signed pre-key (its secret stored first, by `prekeyFor(expiresAt)`), peers seal to
  // this device with scheme 2 (spec §14.1, §14.7).
  if (prekeyFor) body.push(await prekeyFor(expiresAt));
  const bundle = sign(seed, 'key-bundle', body, { createdAt: at, expiresAt });
  await call(url, '/api/v1/keys', {
    method: 'PUT',
    body: bundle.raw,
    headers: { 'Content-Type': 'application/octet-stream' },
    token,
  });
  return bundle.raw;
}
