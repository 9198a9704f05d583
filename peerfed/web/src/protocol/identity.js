// Identities and the text form of a peer id (spec §4.1, §4.2).

import { blake2b256, concat, ed25519Public, equalBytes, isValidEd25519Point, Person, x25519Public } from './crypto.js';
import { ProtocolError } from './errors.js';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const PREFIX = 'pf1';
const PREFIX_BYTES = new TextEncoder().encode(PREFIX);
const TEXT_CHARS = 58; // base32 of 36 bytes, unpadded

function checksum(key) {
  return blake2b256(concat(PREFIX_BYTES, key), Person.PEER_ID).subarray(0, 4);
}

function base32(bytes) {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(acc << (5 - bits)) & 31];
  return out;
}

/** The text form of a 32-byte peer id: "pf1" + lowercase base32 of key || checksum (spec §4.2). */
export function peerIdText(key) {
  return PREFIX + base32(concat(key, checksum(key)));
}

/**
 * Parse a peer id's text form (spec §4.2). Throws ProtocolError(schema.invalid) for a wrong prefix
 * or length, a character outside the alphabet, non-zero unused bits, a wrong checksum or a key that
 * is not a valid key encoding (§4.1).
 */
export function parsePeerId(text) {
  const bad = (why) => new ProtocolError('schema.invalid', `not a peer id: ${why}`);
  if (typeof text !== 'string' || !text.startsWith(PREFIX)) throw bad('it must start with pf1');
  const body = text.slice(PREFIX.length);
  if (body.length !== TEXT_CHARS) throw bad(`it has ${TEXT_CHARS + PREFIX.length} characters`);
  const out = new Uint8Array(36);
  let acc = 0;
  let bits = 0;
  let at = 0;
  for (const ch of body) {
    // Case folds over ASCII only: toLowerCase of a non-ASCII letter could land in the alphabet.
    const code = ch.charCodeAt(0);
    const lower = code >= 0x41 && code <= 0x5a ? String.fromCharCode(code + 32) : ch;
    const v = ALPHABET.indexOf(lower);
    if (v < 0 || ch.length !== 1) throw bad('a character is outside the base32 alphabet');
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out[at++] = (acc >> (bits - 8)) & 0xff;
      bits -= 8;
      acc &= (1 << bits) - 1;
    }
  }
  if (acc !== 0) throw bad('the unused final bits are not zero');
  const key = out.subarray(0, 32);
  if (!equalBytes(checksum(key), out.subarray(32))) throw bad('the checksum does not match');
  if (!isValidEd25519Point(key)) throw bad('the key is not a valid Ed25519 key encoding');
  return key.slice();
}

/** A peer's identity from its 32-byte seed: { seed, publicKey }. */
export function identityFromSeed(seed) {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new Error('a seed is 32 bytes');
  return { seed, publicKey: ed25519Public(seed) };
}

/** The X25519 public key of a 32-byte secret. */
export function encryptionPublic(secret) {
  return x25519Public(secret);
}
