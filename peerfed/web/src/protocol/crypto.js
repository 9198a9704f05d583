// Primitives composed as spec §3 says, each from an audited library; nothing here is a primitive.
//
// - Ed25519 (RFC 8032) from @noble/curves, in strict mode, plus the explicit key and R checks
//   libsodium's crypto_core_ed25519_is_valid_point makes (spec §3, §4.1): canonical, on the curve,
//   not of small order, in the prime-order subgroup.
//   With the key and R both of prime order and S reduced, noble's cofactored verification
//   equation accepts exactly what libsodium's cofactorless one accepts.
// - X25519 from @noble/curves: a low-order public key (all-zero shared secret) throws.
// - BLAKE2b-256, unkeyed, 16 zero bytes of salt, a 16-byte personalisation (spec §3.1), from @noble/hashes.
// - XChaCha20-Poly1305-IETF from @noble/ciphers.

import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { blake2b } from '@noble/hashes/blake2.js';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { randomBytes as nobleRandom } from '@noble/hashes/utils.js';
import { ProtocolError } from './errors.js';

export const KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
export const NONCE_BYTES = 24;
export const TAG_BYTES = 16;

const ASCII = new TextEncoder();

/** The 16-byte personalisation for an ASCII label (spec §3.1): the label, then zero bytes. */
export function person(label) {
  const bytes = ASCII.encode(label);
  if (bytes.length > 16) throw new Error(`personalisation label too long: ${label}`);
  const out = new Uint8Array(16);
  out.set(bytes);
  return out;
}

export const Person = Object.freeze({
  ID: person('peerfed/id/v1'),
  PEER_ID: person('peerfed/peer-id'),
  SEAL: person('peerfed/seal/v1'),
  BODY: person('peerfed/body/v1'),
  WORK: person('peerfed/work/v1'),
  ERASED: person('peerfed/erased'),
  SEALED_ID: person('peerfed/sealed'),
  SESSION: person('peerfed/session'),
  // Sealing scheme 2 (spec §14): the outer key, the agreement, and the ratchet's keyed chains.
  SEAL_V2: person('peerfed/seal/v2'),
  AGREE: person('peerfed/agree/v2'),
  ROOT: person('peerfed/root/v2'),
  CHAIN: person('peerfed/chain/v2'),
});

const SALT = new Uint8Array(16);

/** BLAKE2b-256 of `data` under a 16-byte personalisation (spec §3, §3.1). */
export function blake2b256(data, personalisation) {
  return blake2b(data, { dkLen: 32, salt: SALT, personalization: personalisation });
}

/** Keyed BLAKE2b-256 (a MAC or PRF) under a personalisation: the ratchet's chains (spec §14.3). */
export function blake2b256Keyed(data, key, personalisation) {
  return blake2b(data, { dkLen: 32, key, salt: SALT, personalization: personalisation });
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function randomBytes(n) {
  return nobleRandom(n);
}

/**
 * True when 32 bytes are a valid Ed25519 key encoding (spec §4.1), as
 * crypto_core_ed25519_is_valid_point decides: y < p, on the curve, not x = 0 with the sign bit
 * set, not of small order, and of prime order (no small-order component).
 */
export function isValidEd25519Point(bytes) {
  if (!(bytes instanceof Uint8Array) || bytes.length !== KEY_BYTES) return false;
  let point;
  try {
    point = ed25519.Point.fromBytes(bytes, false); // strict: refuses y >= p and x = 0 with sign 1
  } catch {
    return false;
  }
  return !point.isSmallOrder() && point.isTorsionFree();
}

/** The public key of a 32-byte RFC 8032 seed. */
export function ed25519Public(seed) {
  return ed25519.getPublicKey(seed);
}

export function ed25519Sign(seed, message) {
  return ed25519.sign(message, seed);
}

/**
 * Verify a detached signature as spec §3 requires. Throws ProtocolError(signature.invalid).
 * The key and R must be valid key encodings; S must be below the group order (noble checks it).
 */
export function ed25519Verify(publicKey, message, signature) {
  if (signature.length !== SIGNATURE_BYTES || !isValidEd25519Point(publicKey) ||
      !isValidEd25519Point(signature.subarray(0, 32))) {
    throw new ProtocolError('signature.invalid', 'the signature does not verify');
  }
  let ok = false;
  try {
    ok = ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    ok = false;
  }
  if (!ok) throw new ProtocolError('signature.invalid', 'the signature does not verify');
}

export function x25519Public(secret) {
  return x25519.getPublicKey(secret);
}

/** X25519(secret, public). Throws ProtocolError(seal.decrypt_failed) for a low-order public key. */
export function x25519Shared(secret, publicKey) {
  try {
    return x25519.getSharedSecret(secret, publicKey);
  } catch {
    throw new ProtocolError('seal.decrypt_failed', 'a low-order key gives no shared secret');
  }
}

export function aeadEncrypt(key, nonce, plaintext, aad) {
  return xchacha20poly1305(key, nonce, aad).encrypt(plaintext);
}

/** Throws ProtocolError(seal.decrypt_failed) when the tag does not verify. */
export function aeadDecrypt(key, nonce, ciphertext, aad) {
  try {
    return xchacha20poly1305(key, nonce, aad).decrypt(ciphertext);
  } catch {
    throw new ProtocolError('seal.decrypt_failed', 'the message does not decrypt');
  }
}

export function toHex(bytes) {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** Lowercase or uppercase hex to bytes; throws Error on anything else. */
export function fromHex(hex) {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new Error('not hex');
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
