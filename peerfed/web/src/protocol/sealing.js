// Sealing scheme 1 and padding (spec §7): a node carries sealed bytes and learns only the routing.
//
//   E = X25519(e, 9); shared = X25519(e, R); key = BLAKE2b-256(shared || E || R, "peerfed/seal/v1")
//   head = 0x01 || R || E; aad = "peerfed/v1/seal" || 0x00 || mailbox || u64be(hour) || head
//   payload = head || nonce || XChaCha20-Poly1305(key, nonce, pad(inner), aad)
//   sealed = msgpack [1, mailbox, hour, payload]; sealed_id = BLAKE2b-256(sealed, "peerfed/sealed")

import {
  aeadDecrypt, aeadEncrypt, blake2b256, concat, equalBytes, NONCE_BYTES, Person, randomBytes, TAG_BYTES,
  x25519Public, x25519Shared,
} from './crypto.js';
import { isInt, pack, unpack } from './encoding.js';
import { ProtocolError } from './errors.js';
import { MAX_BUNDLE_BYTES } from './bodies.js';
import { MAX_OBJECT_BYTES, openSigned } from './envelope.js';

export const ROUTING_VERSION = 1;
export const SCHEME_V1 = 1;
export const SCHEME_V2 = 2; // sealing scheme 2 (spec §14): the same outer layer around a ratchet frame
export const HOUR = 3600;
export const MAX_SEALED_AGE = 7 * 86_400;
export const MIN_PADDED = 256;
export const MAX_PADDED = 57_344;
const PREFIX = 4;
const HEAD = 65;
const OVERHEAD = HEAD + NONCE_BYTES + TAG_BYTES; // 105
const AAD_CONTEXT = new TextEncoder().encode('peerfed/v1/seal\u0000');

/** The bucket a plaintext of `length` bytes pads to (spec §7.2). */
export function paddedLength(length) {
  if (length <= MIN_PADDED) return MIN_PADDED;
  let p = 1;
  while (p < length) p *= 2;
  const step = p / 8;
  return Math.ceil(length / step) * step;
}

/** u32be(len) || inner || zeros. Throws ProtocolError(size.too_large) past 57,344 bytes: nothing is sent. */
export function pad(inner) {
  const total = paddedLength(PREFIX + inner.length);
  if (total > MAX_PADDED) throw new ProtocolError('size.too_large', `a sealed message holds at most ${MAX_PADDED - PREFIX} bytes`);
  const out = new Uint8Array(total);
  new DataView(out.buffer).setUint32(0, inner.length);
  out.set(inner, PREFIX);
  return out;
}

/** Throws ProtocolError(seal.bad_padding) unless `plain` is exactly pad(x); returns x. */
export function unpad(plain) {
  if (plain.length < PREFIX) throw new ProtocolError('seal.bad_padding', 'no length prefix');
  const length = new DataView(plain.buffer, plain.byteOffset, PREFIX).getUint32(0);
  const end = PREFIX + length;
  if (end > plain.length || paddedLength(end) !== plain.length) {
    throw new ProtocolError('seal.bad_padding', 'the length prefix does not fit the padded size');
  }
  if (plain.subarray(end).some((b) => b !== 0)) throw new ProtocolError('seal.bad_padding', 'padding bytes are not zero');
  return plain.slice(PREFIX, end);
}

export function aad(mailbox, hour, head) {
  const h = new Uint8Array(8);
  new DataView(h.buffer).setBigUint64(0, BigInt(hour));
  return concat(AAD_CONTEXT, mailbox, h, head);
}

export function derive(shared, ephemeral, recipientKey, scheme = SCHEME_V1) {
  return blake2b256(concat(shared, ephemeral, recipientKey), scheme === SCHEME_V2 ? Person.SEAL_V2 : Person.SEAL);
}

/** The outer seal of either scheme around an already padded plaintext (spec §7.1, §14.4). */
export function sealPadded(plain, mailbox, hour, recipientKey, { scheme, ephemeral, nonce }) {
  const ephemeralPublic = x25519Public(ephemeral);
  const key = derive(x25519Shared(ephemeral, recipientKey), ephemeralPublic, recipientKey, scheme);
  const head = concat(new Uint8Array([scheme]), recipientKey, ephemeralPublic);
  const payload = concat(head, nonce, aeadEncrypt(key, nonce, plain, aad(mailbox, hour, head)));
  const raw = pack([ROUTING_VERSION, mailbox, hour, payload]);
  return { raw, id: blake2b256(raw, Person.SEALED_ID), mailbox, hour, payload, ephemeralPublic, key };
}

/**
 * Seal a signed sealed-inner object (an envelope from sign/openSigned) to `recipientKey`.
 * `hour`, `ephemeral` and `nonce` default to the inner creation hour and fresh random bytes; they
 * are arguments only so test vectors can be reproduced. Returns { raw, id, mailbox, hour, payload, ... }.
 */
export function seal(inner, recipientKey, { hour, ephemeral = randomBytes(32), nonce = randomBytes(NONCE_BYTES) } = {}) {
  if (inner.context !== 'peerfed/v1/sealed-inner') throw new ProtocolError('schema.invalid', 'only sealed-inner objects are sealed');
  const mailbox = inner.body.recipient;
  const h = hour ?? inner.createdAt - (inner.createdAt % HOUR);
  if (!Number.isSafeInteger(h) || h < 0 || h % HOUR !== 0) throw new ProtocolError('schema.invalid', 'hour must be a whole hour');
  const ephemeralPublic = x25519Public(ephemeral);
  const shared = x25519Shared(ephemeral, recipientKey);
  const key = derive(shared, ephemeralPublic, recipientKey);
  const head = concat(new Uint8Array([SCHEME_V1]), recipientKey, ephemeralPublic);
  const ciphertext = aeadEncrypt(key, nonce, pad(inner.raw), aad(mailbox, h, head));
  const payload = concat(head, nonce, ciphertext);
  const raw = pack([ROUTING_VERSION, mailbox, h, payload]);
  return { raw, id: blake2b256(raw, Person.SEALED_ID), mailbox, hour: h, payload, ephemeralPublic, shared, key };
}

/** The routing layer, as a node checks it (spec §7.3 steps 1-5). Throws ProtocolError. */
export function parseSealed(data) {
  if (!(data instanceof Uint8Array)) throw new ProtocolError('encoding.malformed', 'a sealed message is bytes');
  if (data.length > MAX_OBJECT_BYTES) throw new ProtocolError('size.too_large', 'a sealed message is at most 65,536 bytes');
  const outer = unpack(data);
  if (!Array.isArray(outer) || outer.length === 0 || !isInt(outer[0])) {
    throw new ProtocolError('schema.invalid', 'a sealed message is [version, mailbox, hour, payload]');
  }
  if (outer[0] !== ROUTING_VERSION) throw new ProtocolError('version.unsupported', `routing version ${outer[0]}`);
  if (outer.length !== 4) throw new ProtocolError('schema.invalid', 'a sealed message is [version, mailbox, hour, payload]');
  const [, mailbox, hour, payload] = outer;
  if (!(mailbox instanceof Uint8Array) || mailbox.length !== 32) throw new ProtocolError('schema.invalid', 'mailbox must be 32 bytes');
  // The hour may be any whole hour up to 2^64-1, so it is checked as a BigInt (past 2^53 it decodes as one).
  if (!isInt(hour) || BigInt(hour) < 0n || BigInt(hour) % BigInt(HOUR) !== 0n) {
    throw new ProtocolError('schema.invalid', 'hour must be a whole hour in Unix seconds');
  }
  if (!(payload instanceof Uint8Array) || payload.length === 0) throw new ProtocolError('schema.invalid', 'payload must be non-empty binary');
  if (payload[0] !== SCHEME_V1 && payload[0] !== SCHEME_V2) throw new ProtocolError('version.unsupported', `sealing scheme ${payload[0]}`);
  const padded = payload.length - OVERHEAD;
  if (padded < MIN_PADDED || padded > MAX_PADDED || paddedLength(padded) !== padded) {
    throw new ProtocolError('schema.invalid', 'payload length is not a padding bucket');
  }
  return { raw: data, id: blake2b256(data, Person.SEALED_ID), mailbox, hour, payload };
}

/** A node's freshness rule for the routing hour (spec §7.3 step 6). */
export function checkHour(sealed, now) {
  const hour = BigInt(sealed.hour);
  if (hour > BigInt(now + 300)) throw new ProtocolError('time.future', 'sealed in the future');
  if (hour + BigInt(MAX_SEALED_AGE) < BigInt(now)) throw new ProtocolError('time.expired', 'sealed too long ago');
}

/**
 * Open sealed bytes as `recipient` (its 32-byte peer id) holding X25519 `secrets` (spec §7.3,
 * steps 1-5 and 7-12). Returns { sealed, inner, bundle } (bundle: the reacher's opened key bundle,
 * for a reach-out). Throws ProtocolError with the first failure's code.
 */
export function openSealed(data, { recipient, secrets, now }) {
  const sealed = parseSealed(data);
  if (sealed.payload[0] !== SCHEME_V1) throw new ProtocolError('version.unsupported', 'a scheme-2 message is opened with its session (spec §14.5)');
  if (!equalBytes(sealed.mailbox, recipient)) throw new ProtocolError('seal.wrong_recipient', 'not addressed to this mailbox');
  const rkey = sealed.payload.subarray(1, 33);
  const secret = secrets.find((s) => equalBytes(x25519Public(s), rkey));
  if (secret === undefined) throw new ProtocolError('seal.wrong_recipient', 'sealed to a key this peer does not hold');
  const ephemeral = sealed.payload.subarray(33, HEAD);
  const nonce = sealed.payload.subarray(HEAD, HEAD + NONCE_BYTES);
  const key = derive(x25519Shared(secret, ephemeral), ephemeral, rkey);
  const plain = aeadDecrypt(key, nonce, sealed.payload.subarray(HEAD + NONCE_BYTES), aad(sealed.mailbox, sealed.hour, sealed.payload.subarray(0, HEAD)));
  const inner = openSigned(unpad(plain), { context: 'peerfed/v1/sealed-inner', now });
  if (!equalBytes(inner.body.recipient, recipient)) {
    throw new ProtocolError('seal.wrong_recipient', 'the signed message names another recipient');
  }
  const bundle = inner.type === 'reach-out' ? reacherBundle(inner) : null;
  return { sealed, inner, bundle, paddedLength: plain.length };
}

/**
 * The key bundle a reach-out carries, opened under the key-bundle context with the reach-out's
 * created_at as now (spec §7.3 step 12). Throws its own codes, schema.invalid for a reach-out
 * without one, or seal.wrong_sender when another peer signed it.
 */
export function reacherBundle(inner) {
  if (inner.body.bundle === null) throw new ProtocolError('schema.invalid', "a reach-out must carry its author's key bundle");
  const bundle = openSigned(inner.body.bundle, { context: 'peerfed/v1/key-bundle', now: inner.createdAt, maxBytes: MAX_BUNDLE_BYTES });
  if (!equalBytes(bundle.author, inner.author)) throw new ProtocolError('seal.wrong_sender', "the reach-out carries another peer's key bundle");
  return bundle;
}
