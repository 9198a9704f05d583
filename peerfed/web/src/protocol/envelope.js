// Signed objects: layout, signature, id, and opening them in the order spec §5.5 fixes.
//
//   object  = version (0x01) || author (32) || signature (64) || payload
//   payload = canonical msgpack [type, created_at, expires_at, body]
//   signed  = context || 0x00 || version || author || payload
//   id      = BLAKE2b-256(signed, personalisation "peerfed/id/v1")

import { blake2b256, concat, ed25519Public, ed25519Sign, ed25519Verify, Person } from './crypto.js';
import { isInt, pack, unpack } from './encoding.js';
import { ProtocolError } from './errors.js';
import { BODIES } from './bodies.js';

export const FRAMING_VERSION = 1;
export const MAX_OBJECT_BYTES = 65_536;
export const HEADER_BYTES = 97;
export const CLOCK_SKEW = 300;
const MAX_TIMESTAMP = 2 ** 40 - 1;

/** Signature contexts and the types each allows (spec §3.2, §5.4). */
export const CONTEXT_TYPES = Object.freeze({
  'peerfed/v1/envelope': ['listing', 'withdrawal', 'erasure'],
  'peerfed/v1/key-bundle': ['key-bundle'],
  'peerfed/v1/sealed-inner': ['reach-out', 'response', 'agreement', 'message', 'end'],
  'peerfed/v1/node-document': ['node-document'],
  'peerfed/v1/node-request': ['node-request'],
  'peerfed/v1/client-auth': ['client-auth', 'move', 'prekeys'],
});

const ASCII = new TextEncoder();

function signedBytes(context, author, payload) {
  if (!(context in CONTEXT_TYPES)) throw new Error(`unknown context ${context}`);
  return concat(ASCII.encode(context), new Uint8Array([0, FRAMING_VERSION]), author, payload);
}

function contextOf(type) {
  for (const [context, types] of Object.entries(CONTEXT_TYPES)) if (types.includes(type)) return context;
  throw new ProtocolError('schema.unknown_type', `no context signs ${type}`);
}

const PREKEY_BUNDLE_LIFETIME = 60 * 86400; // a bundle with a signed pre-key, at most (spec §4.3, §14.1)

function checkTimes(createdAt, expiresAt, type, body) {
  for (const t of [createdAt, expiresAt]) {
    if (!isInt(t) || typeof t !== 'number' || t < 0 || t > MAX_TIMESTAMP) {
      throw new ProtocolError('schema.invalid', `times are integers from 0 to ${MAX_TIMESTAMP}`);
    }
  }
  const lifetime = expiresAt - createdAt;
  const limit = type === 'key-bundle' && body.prekey !== null ? PREKEY_BUNDLE_LIFETIME : BODIES[type].maxLifetime;
  if (lifetime <= 0 || lifetime > limit) {
    throw new ProtocolError('time.lifetime', `a ${type} must expire within ${limit} s after creation`);
  }
}

function decode(data, context, signed) {
  const decoded = unpack(data.subarray(HEADER_BYTES));
  if (!Array.isArray(decoded) || decoded.length !== 4 || typeof decoded[0] !== 'string') {
    throw new ProtocolError('schema.invalid', 'a payload is [type, created_at, expires_at, body]');
  }
  const [type, createdAt, expiresAt, wire] = decoded;
  if (!CONTEXT_TYPES[context].includes(type)) {
    throw new ProtocolError('schema.unknown_type', `type ${type} is not signed under ${context}`);
  }
  const body = BODIES[type].parse(wire);
  checkTimes(createdAt, expiresAt, type, body);
  return {
    context,
    type,
    author: data.slice(1, 33),
    signature: data.slice(33, HEADER_BYTES),
    createdAt,
    expiresAt,
    body,
    payload: decoded,
    id: blake2b256(signed, Person.ID),
    raw: data,
  };
}

/**
 * Verify and decode a signed object from outside (spec §5.5), checking in the spec's order:
 * size, length, version, signature, encoding, shape, type, body, times, future, expiry.
 * Throws ProtocolError with the first failure's code.
 */
export function openSigned(data, { context, now, maxBytes = MAX_OBJECT_BYTES }) {
  if (!(data instanceof Uint8Array)) throw new ProtocolError('encoding.malformed', 'a signed object is bytes');
  if (data.length > maxBytes) throw new ProtocolError('size.too_large', `a signed object is at most ${maxBytes} bytes`);
  if (data.length <= HEADER_BYTES) throw new ProtocolError('encoding.malformed', 'too short to be a signed object');
  if (data[0] !== FRAMING_VERSION) throw new ProtocolError('version.unsupported', `framing version ${data[0]}`);
  const author = data.subarray(1, 33);
  const signed = signedBytes(context, author, data.subarray(HEADER_BYTES));
  ed25519Verify(author, signed, data.subarray(33, HEADER_BYTES));
  const env = decode(data, context, signed);
  if (env.createdAt > now + CLOCK_SKEW) throw new ProtocolError('time.future', 'created too far in the future');
  if (env.expiresAt <= now) throw new ProtocolError('time.expired', 'expired');
  return env;
}

/**
 * Decode a signed object this program verified before it stored it: no signature or clock check.
 * Throws ProtocolError for bytes that are not a well-formed signed object.
 */
export function decodeVerified(data, { context }) {
  if (!(data instanceof Uint8Array) || data.length <= HEADER_BYTES) {
    throw new ProtocolError('encoding.malformed', 'too short to be a signed object');
  }
  if (data[0] !== FRAMING_VERSION) throw new ProtocolError('version.unsupported', `framing version ${data[0]}`);
  return decode(data, context, signedBytes(context, data.subarray(1, 33), data.subarray(HEADER_BYTES)));
}

/**
 * Sign a body (its wire array) as the holder of `seed`; the context follows from the type.
 * The body and times are checked as a receiver would check them; throws ProtocolError otherwise.
 */
export function sign(seed, type, wireBody, { createdAt, expiresAt }) {
  const context = contextOf(type);
  checkTimes(createdAt, expiresAt, type, BODIES[type].parse(wireBody));
  const payload = pack([type, createdAt, expiresAt, wireBody]);
  const author = ed25519Public(seed);
  const signed = signedBytes(context, author, payload);
  const raw = concat(new Uint8Array([FRAMING_VERSION]), author, ed25519Sign(seed, signed), payload);
  if (raw.length > MAX_OBJECT_BYTES) throw new ProtocolError('size.too_large', 'a signed object is at most 65,536 bytes');
  return decode(raw, context, signed);
}
