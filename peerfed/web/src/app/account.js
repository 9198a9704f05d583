// Joining a node with keys made on this device (spec §4, §13.4): a fresh identity seed and a first
// X25519 key in the keyring shape of spec §9.6, then sign in and publish the key bundle. No DOM
// and no storage here, so the same code runs under Node in the cross-tests.

import { identityFromSeed, peerIdText, randomBytes } from '../protocol/index.js';
import { publishBundle, signIn } from './node.js';

/** The CLI's key lifetime: an encryption key is renewed before 60 days are out. */
export const KEY_LIFETIME = 60 * 86_400;

/** A new identity and its first encryption key, valid from `now` (Unix seconds). */
export function newKeys(now) {
  return { seed: randomBytes(32), encryption: [{ secret: randomBytes(32), createdAt: now, expiresAt: now + KEY_LIFETIME }] };
}

/** Renewal starts this long before the current key's end, as the CLI's (60-day bundles, 20 days). */
export const KEY_RENEW = 20 * 86_400;
// An old secret is kept for 30 days past its end, to open mail sealed to it late.
const KEY_KEPT = 30 * 86_400;

/**
 * Add a new encryption key to `keys` when the current one ends within KEY_RENEW of `now`, and
 * drop secrets that ended more than 30 days ago. Returns true when it renewed (the caller keeps
 * the keyring and publishes the new bundle).
 */
export function renewKeysIfDue(keys, now) {
  if (currentKey(keys).expiresAt - now > KEY_RENEW) return false;
  keys.encryption.push({ secret: randomBytes(32), createdAt: now, expiresAt: now + KEY_LIFETIME });
  keys.encryption = keys.encryption.filter((k) => k.expiresAt > now - KEY_KEPT);
  return true;
}

/** The newest encryption key of a keyring. */
export function currentKey(keys) {
  return keys.encryption.reduce((a, b) => (b.createdAt > a.createdAt ? b : a));
}

/** The text form of the keyring's peer id (spec §4.2). */
export function peerOf(keys) {
  return peerIdText(identityFromSeed(keys.seed).publicKey);
}

/**
 * Sign in to `url` with `keys` and publish the key bundle; returns the session
 * `{ token, peer, expiresAt, bundle }` (bundle: the signed key bundle's bytes, carried in reach-outs). Throws NodeError (e.g. code auth.invite, auth.pending, auth.moved) or ProtocolError.
 * `prekeyFor` (sessions.js) puts a signed pre-key in the bundle; without it the bundle has none.
 */
export async function join(url, keys, { name, invite, device, takeOver, prekeyFor = null } = {}) {
  const session = await signIn(url, keys.seed, { invite, device, takeOver });
  const bundle = await publishBundle(url, session.token, keys.seed, currentKey(keys), name, prekeyFor);
  return { ...session, bundle };
}
