// Proof of work for joining a node and for first contact (spec §13.4, §13.5): the count of leading
// zero bits of BLAKE2b-256(challenge || nonce, personalisation "peerfed/work/v1").

import { blake2b256, concat, fromHex, Person } from './crypto.js';
import { ProtocolError } from './errors.js';

export const MAX_NONCE_BYTES = 32;

/** Leading zero bits of the digest, counted from the most significant bit of its first byte. */
export function workBits(challenge, nonce) {
  const digest = blake2b256(concat(challenge, nonce), Person.WORK);
  let bits = 0;
  for (const b of digest) {
    if (b === 0) {
      bits += 8;
      continue;
    }
    bits += Math.clz32(b) - 24;
    break;
  }
  return bits;
}

/** Throws ProtocolError(auth.work) unless `nonceHex` is 1-32 bytes of hex with at least `bits` zero bits. */
export function checkWork(challenge, nonceHex, bits) {
  let nonce = new Uint8Array(0);
  try {
    nonce = fromHex(nonceHex ?? '');
  } catch {
    nonce = new Uint8Array(0);
  }
  if (nonce.length < 1 || nonce.length > MAX_NONCE_BYTES || workBits(challenge, nonce) < bits) {
    throw new ProtocolError('auth.work', `this node asks for ${bits} bits of proof of work`);
  }
}

/** The first 8-byte big-endian counter whose digest has `bits` zero bits (about 2^bits tries). */
export function solveWork(challenge, bits) {
  const nonce = new Uint8Array(8);
  const view = new DataView(nonce.buffer);
  for (let counter = 0n; ; counter++) {
    view.setBigUint64(0, counter);
    if (workBits(challenge, nonce) >= bits) return nonce.slice();
  }
}
